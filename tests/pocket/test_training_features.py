"""Issue #21's Pocket training features on the tiny random-weight model (mechanics only): gradient accumulation
equals one step on the whole batch, the validation loss is logged (history and TensorBoard) without changing the
training, several languages are sampled by their weights with one merged vocabulary."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nbhelpers.training import STATE_FILE


def trained(cfg, dataset, run: str):
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.pocket.train import train

    prep = prepare(cfg, dataset=dataset, run=run)
    return train(cfg, prep.tts_model, prep.train_items, paths=prep.paths, val_items=prep.val_items), prep


def weights_of(result) -> dict[str, torch.Tensor]:
    return torch.load(result.checkpoint / STATE_FILE, map_location="cpu", weights_only=False)["model"]


def test_accumulating_k_micro_batches_equals_one_step_on_k_times_the_batch(pocket_corpus, isolated_workspace,
                                                                          small_cfg):
    common = {"max_steps": 2, "distill_share": 0.5, "val_every": 0, "head_batch_multiplier": 2}
    whole, _ = trained(small_cfg(batch_size=4, grad_accum=1, **common), str(pocket_corpus), "whole")
    split, _ = trained(small_cfg(batch_size=1, grad_accum=4, **common), str(pocket_corpus), "split")
    assert split.metrics["effective_batch"] == whole.metrics["effective_batch"] == 4
    for a, b in zip(whole.history, split.history, strict=True):
        for key in ("loss", "flow", "eos", "grad_norm"):
            assert math.isclose(a[key], b[key], rel_tol=1e-4), (key, a[key], b[key])
    wa, wb = weights_of(whole), weights_of(split)
    # weights within fp noise: Adam divides each gradient by its own size, which magnifies the rounding of the
    # near-zero ones; 5e-5 is a tenth of a first-step update (lr 1e-3 at half warm-up)
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 5e-5


def test_validation_loss_is_logged_to_history_and_tensorboard_without_changing_training(pocket_corpus,
                                                                                       isolated_workspace, small_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    on, _ = trained(small_cfg(max_steps=4, val_every=2), str(pocket_corpus), "val_on")
    off, _ = trained(small_cfg(max_steps=4, val_every=0), str(pocket_corpus), "val_off")
    vals = {h["step"]: h["val_loss"] for h in on.history if "val_loss" in h}
    assert sorted(vals) == [2, 4] and all(math.isfinite(v) and v > 0 for v in vals.values())
    assert on.metrics["final_val_loss"] == vals[4]
    assert not any("val_loss" in h for h in off.history)
    # the evaluation draws from its own seeded stream: training is the same with it on or off
    wa, wb = weights_of(on), weights_of(off)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    events = EventAccumulator(str(on.paths.tensorboard))
    events.Reload()
    assert [e.step for e in events.Scalars("val/loss")] == [2, 4]
    assert [round(e.value, 5) for e in events.Scalars("val/loss")] == [round(vals[2], 5), round(vals[4], 5)]
    assert len(events.Scalars("train/loss")) == 4


def test_profile_steps_trace_training_without_changing_it(pocket_corpus, isolated_workspace, small_cfg):
    """``profile_steps``: the trainer's shared run state traces that many steps into <run>/profile/ and the
    summary (top operators, trace path) is in the metrics; the weights are those of the same run untraced."""
    traced, _ = trained(small_cfg(max_steps=4, val_every=0, profile_steps=2), str(pocket_corpus), "traced")
    plain, _ = trained(small_cfg(max_steps=4, val_every=0), str(pocket_corpus), "plain")
    import json

    m = traced.metrics
    assert m["profiled_steps"] == 2 and Path(m["profile_trace"]).is_file()
    assert Path(m["profile_trace"]) == traced.paths.run_dir / "profile" / "pocket_train.trace.json"
    top = json.loads(Path(m["profile_table"]).read_text())["top"]
    assert top and top[0]["self ms"] > 0 and "profile_table" not in plain.metrics
    wa, wb = weights_of(traced), weights_of(plain)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("schedule", ["linear", "constant"])
def test_lr_schedule_is_a_setting(schedule, pocket_corpus, isolated_workspace, small_cfg):
    from nbhelpers.pocket.train import lr_schedule

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = lr_schedule(opt, schedule, warmup=2, total=12)
    rates = []
    for _ in range(12):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert rates[:2] == [0.5, 1.0]
    if schedule == "constant":
        assert rates[2:] == [1.0] * 10
    else:  # linear: equal decrements down towards 10% of the peak
        steps = [a - b for a, b in zip(rates[2:], rates[3:], strict=False)]
        assert all(math.isclose(s, 0.09) for s in steps) and math.isclose(rates[-1], 0.19)


def test_merged_vocabulary_reads_each_language_as_its_own_tokenizer(tmp_path):
    import re

    import sentencepiece as spm

    from nbhelpers.data.corpus import SENTENCES
    from nbhelpers.pocket.tokenizer import coverage_report, merge_sentencepiece, train_sentencepiece

    kn_model = train_sentencepiece(SENTENCES["kn"], tmp_path / "kn", 200)
    bn_model = train_sentencepiece(SENTENCES["bn"], tmp_path / "bn", 150)
    merged = merge_sentencepiece([kn_model, bn_model], tmp_path / "tokenizer.model")
    kn, bn, both = (spm.SentencePieceProcessor(model_file=str(m)) for m in (kn_model, bn_model, merged))
    assert kn.vocab_size() < both.vocab_size() <= kn.vocab_size() + bn.vocab_size() - 1
    for own, texts in ((kn, SENTENCES["kn"]), (bn, SENTENCES["bn"])):
        for text in texts:
            letters = re.sub(r"[^\w\s]", "", text)  # punctuation pieces are shared by both vocabularies
            assert both.encode(letters, out_type=str) == own.encode(letters, out_type=str), text
            assert both.decode(both.encode(text)) == text
    assert coverage_report(merged, SENTENCES["kn"] + SENTENCES["bn"])["unknown_token_share"] == 0.0


def test_languages_sampled_by_weight_with_their_own_vocabularies_and_evaluated(pocket_corpus, bn_pocket_corpus,
                                                                              isolated_workspace, small_cfg):
    import json

    from nbhelpers.pocket.stage import run_stage

    languages = {"kn": {"dataset": str(pocket_corpus), "weight": 3.0, "vocab_size": 120},
                 "bn": {"dataset": str(bn_pocket_corpus), "weight": 1.0, "vocab_size": 80}}
    too_small = {**languages, "bn": {**languages["bn"], "vocab_size": 40}}
    with pytest.raises(ValueError, match=r"languages\.bn .*vocab_size 40 is too small .* at least \d+"):
        run_stage(small_cfg(languages=too_small))
    cfg = small_cfg(languages=languages, batch_size=2, max_steps=16, val_every=8, eval_items=1, sample_sentences=[])
    result, outputs = run_stage(cfg)
    # 4 batches of 2 per language and epoch; weights 3:1 -> 6 kn + 2 bn batches an epoch, each batch one language
    seen = [h["language"] for h in result.history]
    assert abs(seen.count("kn") / len(seen) - 0.75) <= 0.1, seen
    assert result.metrics["languages"]["bn"]["steps"] == seen.count("bn") > 0
    val = [h for h in result.history if "val_loss" in h]
    assert [h["step"] for h in val] == [8, 16] and all("val_loss_kn" in h and "val_loss_bn" in h for h in val)
    from nbhelpers.paths import Workspace
    from nbhelpers.records import read_records

    record = read_records(Workspace(), stage="07_pocket_tts_finetune")[-1]
    assert set(record["inputs"]["languages"]) == {"kn", "bn"}
    tokenizer = result.paths.tokenizer_dir
    assert (tokenizer / "kn" / "tokenizer.model").is_file() and (tokenizer / "bn" / "tokenizer.model").is_file()

    report = json.loads(outputs["evaluation"].read_text(encoding="utf-8"))
    assert set(report["languages"]) == {"kn", "bn"}
    kn, bn = report["languages"]["kn"], report["languages"]["bn"]
    assert kn["split"] == "validation" and bn["split"] == "test"  # the kn fixture has no test split
    # the offline Whisper base cannot read either language: a CER from it is recorded as not meaningful
    assert kn["cer"].startswith("not meaningful here") and "Kannada" in kn["cer"]
    assert bn["cer"].startswith("not meaningful here") and "Bangla" in bn["cer"]
    for entry in (kn, bn):
        assert entry["items"] == 1 and 0.0 <= entry["success_rate"] <= 1.0
        assert isinstance(entry["dnsmos"], dict) or entry["dnsmos"].startswith("not_available")
        assert all(Path(c["wav"]).is_file() for c in entry["clips"])


def test_success_rate_counts_silent_empty_and_wrong_length_clips_as_failures(tmp_path):
    import numpy as np

    from nbhelpers.pocket.evaluate import judge_clip

    sr = 24000
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    judge = lambda audio, name, ref=1.0: judge_clip(audio, sr, tmp_path / f"{name}.wav", reference_seconds=ref,  # noqa: E731
                                                   length_ratio=(0.5, 2.0))
    good = judge(tone, "good")
    assert good["success"] and good["produced"] and not good["silent"] and good["length_ok"]
    silent = judge(np.zeros(sr, np.float32), "silent")
    assert silent["produced"] and silent["silent"] and not silent["success"]
    empty = judge(np.zeros(0, np.float32), "empty")
    assert not empty["produced"] and not empty["success"]
    too_long = judge(tone, "long", ref=0.3)
    assert not too_long["length_ok"] and not too_long["success"]
