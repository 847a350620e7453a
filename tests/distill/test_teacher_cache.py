"""Teacher cache: cached and on-the-fly losses agree, the real teacher runs once per example, ``auto`` turns the
cache off when it would not fit, damaged disk caches are rebuilt, and a stopped run resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nbhelpers.distill import teacher_cache as tc
from nbhelpers.distill.train import DistillObjective, make_objective, make_student, student_to_teacher_ids
from nbhelpers.parler.data import Collator, Example
from nbhelpers.parler.model import build_tiny
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile

TEXTS = ["ನಮಸ್ಕಾರ", "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ", "ಇಂದು ಮಳೆ ಬಂತು", "ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ", "ಹಕ್ಕಿ ಹಾರುತ್ತದೆ", "ನೀರು ಕುಡಿಯಿರಿ"]
DESCRIPTIONS = ["A calm female voice.", "A fast male voice with a lot of energy."]
FRAMES = [5, 9, 6, 12, 7, 4]  # two examples per batch, different lengths: every batch has padding


def _params(**extra):
    return load_profile("distill", "smoke", {"student_decoder_layers": 2, "student_text_encoder_layers": 1, **extra})


def _examples(student, k: int) -> list[Example]:
    g = torch.Generator().manual_seed(0)
    return [Example(torch.randint(0, 64, (k, n), generator=g).to(torch.int16), student.prompt_tokenizer(t)["input_ids"],
                    student.description_tokenizer(DESCRIPTIONS[i % 2])["input_ids"], i)
            for i, (t, n) in enumerate(zip(TEXTS, FRAMES, strict=True))]


def _setup(**extra):
    """A tiny teacher (fresh: the objective freezes it), a copied-layer student with a cut encoder, and three
    fixed batches of two examples."""
    teacher = build_tiny(seed=5)
    params = _params(**extra)
    student, report = make_student(params, teacher, TEXTS)
    examples = _examples(student, teacher.num_codebooks)
    collate = Collator(student)
    batches = [collate(examples[i:i + 2]) for i in range(0, len(examples), 2)]
    return teacher, params, student, report, examples, batches


def _objective(teacher, params, student, report, cache):
    return DistillObjective(teacher.model, params, student_to_teacher_ids=student_to_teacher_ids(student),
                            decoder_layer_map=report["hidden_layer_map"], match_encoder=True, cache=cache)


class ForwardCounter:
    """Counts calls of a module's forward with a hook on the real module."""

    def __init__(self, module: torch.nn.Module):
        self.calls = 0
        module.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.calls += 1


def _epochs(objective, model, batches, epochs=2):
    """Losses and parts per (epoch, batch) in a different batch order each epoch, without weight updates."""
    out = {}
    orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0]]
    with torch.no_grad():
        for epoch in range(epochs):
            for i in orders[epoch]:
                loss, parts = objective(model, batches[i])
                out[epoch, i] = (loss.item(), parts)
    return out


@pytest.mark.parametrize("mode,topk", [("memory", 0), ("disk", 8)])
def test_cached_losses_match_on_the_fly_and_teacher_runs_once_per_example(mode, topk, tmp_path):
    teacher, params, student, report, examples, batches = _setup(kd_topk=topk)
    student.model.eval()
    calls = ForwardCounter(teacher.model)
    live = _epochs(_objective(teacher, params, student, report, None), student.model, batches)
    assert calls.calls == 2 * len(batches)  # on the fly: one teacher forward per step

    calls.calls = 0
    cache = tc.MemoryCache() if mode == "memory" else tc.DiskCache(tmp_path / "cache", {"test": 1})
    cached_obj = _objective(teacher, params, student, report, cache)
    cached = _epochs(cached_obj, student.model, batches)
    assert calls.calls == len(batches)  # first epoch only: each example's batch ran the teacher once
    assert len(cache) == len(examples)
    assert cached_obj.cache_report()["teacher_cached_batches"] == len(batches)
    for key, (loss, parts) in live.items():
        assert cached[key][0] == pytest.approx(loss, rel=2e-3, abs=1e-5), key  # fp16 storage
        for name in ("ce", "kd", "hidden", "encoder"):
            assert cached[key][1][name] == pytest.approx(parts[name], rel=2e-3, abs=1e-5), (key, name)
    for i in range(len(batches)):  # a cached epoch repeats the first epoch bit for bit
        assert cached[1, i] == cached[0, i]
    assert live[0, 0][1]["kd"] > 1e-4 and live[0, 0][1]["hidden"] > 1e-4

    # the size estimate is exactly what an entry stores (per-example frames and description tokens)
    conf = teacher.model.config
    expected = sum(tc.entry_bytes(frames=e.frames, description_tokens=len(e.description_ids),
                                  codebooks=teacher.num_codebooks, vocab=conf.decoder.vocab_size, topk=topk,
                                  hidden_layers=len(report["hidden_layer_map"]), hidden_width=conf.decoder.hidden_size,
                                  encoder_width=conf.text_encoder.d_model) for e in examples)
    keys = [key for b in batches for key in tc.row_keys(cached_obj.ids[b["prompt_input_ids"]], b["prompt_attention_mask"],
                                                        b["input_ids"], b["attention_mask"], b["labels"])]
    stored = sum(v.numel() * v.element_size() for key in keys for v in cache.get(key).values()
                 if isinstance(v, torch.Tensor))
    assert len(set(keys)) == len(examples) and stored == expected


def _train_data(n_train: int = 8):
    import datasets

    g = np.random.default_rng(0)
    rows = []
    for i in range(n_train + 2):
        seconds = 0.06 + 0.02 * (i % 4)
        audio = (0.1 * g.standard_normal(int(44100 * seconds))).astype(np.float32)
        rows.append({"audio": {"array": audio, "sampling_rate": 44100}, "text": TEXTS[i % len(TEXTS)],
                     "text_description": DESCRIPTIONS[i % 2], "duration": seconds})
    feats = datasets.Features({"audio": datasets.Audio(sampling_rate=44100), "text": datasets.Value("string"),
                               "text_description": datasets.Value("string"), "duration": datasets.Value("float32")})
    return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:n_train], features=feats),
                                 "validation": datasets.Dataset.from_list(rows[n_train:], features=feats)})


def test_auto_turns_the_cache_off_when_the_estimate_exceeds_the_limit():
    from nbhelpers.distill.train import teacher_cache_plan

    teacher = build_tiny(seed=5)
    data = _train_data()
    big = _params(teacher_cache="auto", teacher_cache_max_gb=100.0)
    mode, info = teacher_cache_plan(big, teacher, data, hidden_layers=2, match_encoder=True)
    conf = teacher.model.config
    durations = list(data["train"]["duration"])
    expected = sum(tc.entry_bytes(frames=int(np.ceil(d * teacher.frame_rate)), description_tokens=len(ids),
                                  codebooks=teacher.num_codebooks, vocab=conf.decoder.vocab_size, topk=0,
                                  hidden_layers=2, hidden_width=conf.decoder.hidden_size,
                                  encoder_width=conf.text_encoder.d_model)
                   for d, ids in zip(durations, teacher.description_tokenizer(
                       list(data["train"]["text_description"])).input_ids, strict=True))
    assert mode == "memory" and info["teacher_cache_estimate_gb"] == round(expected / 1e9, 6)
    assert info["teacher_cache_examples"] == 8
    limit = expected / 2 / 1e9
    mode, info = teacher_cache_plan(_params(teacher_cache="auto", teacher_cache_max_gb=limit), teacher, data,
                                    hidden_layers=2, match_encoder=True)
    assert mode == "off" and "exceeds" in info["teacher_cache_reason"]
    with pytest.raises(ValueError, match="teacher_cache_max_gb"):
        teacher_cache_plan(_params(teacher_cache="memory", teacher_cache_max_gb=limit), teacher, data,
                           hidden_layers=2, match_encoder=True)
    with pytest.raises(ValueError, match="teacher_cache must be one of"):
        tc.decide("sometimes", 1, 1.0)
    # top-k storage is what makes a large run fit
    mode, _ = teacher_cache_plan(_params(teacher_cache="auto", teacher_cache_max_gb=limit, kd_topk=4), teacher, data,
                                 hidden_layers=0, match_encoder=False)
    assert mode == "memory"
    # the objective built for an over-limit run has no cache and says why in the stage-record facts
    params = _params(teacher_cache="auto", teacher_cache_max_gb=limit)
    student, report = make_student(params, teacher, TEXTS)
    objective = make_objective(params, teacher, student, report, data, workspace=Workspace())
    facts = objective.cache_report()
    assert objective.cache is None and facts["teacher_cache"] == "off" and facts["teacher_cache_estimate_gb"] > 0


def test_partial_or_foreign_disk_cache_is_never_used(tmp_path, monkeypatch):
    teacher, params, student, report, examples, batches = _setup()
    student.model.eval()
    folder = tmp_path / "cache"
    first = _epochs(_objective(teacher, params, student, report, tc.DiskCache(folder, {"teacher": "a"})),
                    student.model, batches, epochs=1)
    files = sorted((folder / tc.ENTRIES).glob("*.pt"))
    assert len(files) == len(examples)
    # a damaged entry (cut short) and a write a killed session left behind
    files[0].write_bytes(files[0].read_bytes()[:100])
    (folder / tc.ENTRIES / f".tmp-{files[1].name}-999").write_bytes(b"partial")
    calls = ForwardCounter(teacher.model)
    again = tc.DiskCache(folder, {"teacher": "a"})
    assert not list((folder / tc.ENTRIES).glob(".tmp-*")) and again.rebuilt == ""
    second = _epochs(_objective(teacher, params, student, report, again), student.model, batches, epochs=1)
    assert calls.calls == 1  # only the batch of the damaged entry ran the teacher again
    assert second == first
    # an interrupted write never leaves a file under an entry's name
    def broken_save(obj, path):
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        again.put("k" * 40, {"key": "k" * 40})
    assert again.get("k" * 40) is None and not (folder / tc.ENTRIES / f"{'k' * 40}.pt").exists()
    monkeypatch.undo()
    # no manifest (killed before it was written) or another teacher's manifest: the folder is rebuilt
    (folder / tc.MANIFEST).unlink()
    rebuilt = tc.DiskCache(folder, {"teacher": "a"})
    assert len(rebuilt) == 0 and "no manifest" in rebuilt.rebuilt
    _epochs(_objective(teacher, params, student, report, rebuilt), student.model, batches, epochs=1)
    other = tc.DiskCache(folder, {"teacher": "b"})
    assert len(other) == 0 and "another teacher" in other.rebuilt
    assert json.loads((folder / tc.MANIFEST).read_text())["teacher"] == "b"


def _train(params, data, ws, *, stop_after=None):
    """One training session as the pipeline runs it: fresh teacher and student, the objective, stage 02's loop."""
    from nbhelpers.distill.train import loop_config
    from nbhelpers.parler.train import train

    teacher = build_tiny(seed=5)
    student, report = make_student(params, teacher, TEXTS)
    objective = make_objective(params, teacher, student, report, data, workspace=ws)
    calls = ForwardCounter(teacher.model)
    result = train(loop_config(params, "student"), workspace=ws, dataset=data, run=str(params["run"]),
                   stop_after=stop_after, bundle=student, loss_fn=objective, stage_dir="distill")
    return result, objective, calls.calls


def test_narrow_student_with_disk_cache_resumes_exactly(tmp_path):
    """A narrow student (hidden projections) with a disk cache: stopped after one epoch and resumed, it ends with
    the same weights and losses as an uninterrupted run; the resumed session reads the first epoch's cache."""
    data = _train_data()
    params = _params(student_decoder_hidden=16, teacher_cache="disk", max_steps=4, save_every=2, eval_every=0,
                     sample_every=0, sample_sentences=["ನಮಸ್ಕಾರ"], sample_max_seconds=0.05, warmup_steps=1)
    full, full_obj, full_calls = _train({**params, "run": "full"}, data, Workspace(tmp_path / "a"))
    assert full.status == "done" and full_calls == 2  # 8 examples in 2 batches: the teacher ran in epoch 1 only
    assert full_obj.cache_report()["teacher_cached_batches"] == 2 and "hidden" in full.history[0]
    ws = Workspace(tmp_path / "b")
    first, _, _ = _train({**params, "run": "split"}, data, ws, stop_after=2)
    assert first.status == "resume_needed"
    second, obj, calls = _train({**params, "run": "split"}, data, ws)
    assert second.status == "done" and calls == 0  # everything came from the first session's cache
    assert obj.cache_report()["teacher_cache_found_entries"] == 8
    a, b = full.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys() and any(k.startswith("distill_projections.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in second.history] == [h["loss"] for h in full.history]
    initial, _ = make_student(params, build_tiny(seed=5), TEXTS)
    start = initial.model.state_dict()
    assert not torch.equal(start["distill_projections.0.weight"], a["distill_projections.0.weight"])  # trained
    saved = torch.load(next((ws.stage_dir("distill") / "split" / "checkpoints").glob("step-*")) / "training_state.pt",
                       weights_only=False)["model"]
    assert any(k.startswith("distill_projections.") for k in saved)


def test_a_run_does_not_depend_on_whether_the_codes_were_cached(tmp_path):
    """The first run in a workspace encodes the DAC codes, a second one reads them: both train the same. (A fresh
    student was in train mode, and its codec's quantizer dropout drew random numbers while encoding, which shifted
    the dropout masks of every later step.)"""
    data = _train_data()
    params = _params(teacher_cache="off", max_steps=2, eval_every=0, sample_every=0, sample_sentences=["ನಮಸ್ಕಾರ"],
                     sample_max_seconds=0.05, warmup_steps=1)
    ws = Workspace(tmp_path)
    cold, _, _ = _train({**params, "run": "cold"}, data, ws)
    warm, _, _ = _train({**params, "run": "warm"}, data, ws)
    assert [h["loss"] for h in cold.history] == [h["loss"] for h in warm.history]
    a, b = cold.model.state_dict(), warm.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
