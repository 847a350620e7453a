"""Generation evaluation during training (issue #21): the scores tell speech from silence and noise, a Whisper that
cannot read the language gives "not meaningful here" instead of a number, the metrics appear at the right steps in
the history, TensorBoard and the record, and training with it on is bit-for-bit the run with it off (also across a
SIGKILL and resume). The trained model is the tiny random-weight one: these tests check mechanics, not quality."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from parler_settings import OVERRIDES, cli_args, run_record
from safetensors.torch import load_file

from nbhelpers.parler.evaluate import Item, describe_clip, score_clips
from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.profiles import load_profile

SR = 44100
GEN_EVAL = {"gen_eval_every": 4, "gen_eval_items": 2, "gen_eval_max_seconds": 0.3}
KN_TEXT = "ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ"
EN_TEXT = "the quick brown fox jumps over the lazy dog"


def espeak(text: str, voice: str) -> np.ndarray:
    """``text`` spoken by espeak-ng, resampled to the Parler rate."""
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
        audio, sr = sf.read(path, dtype="float32")
    return soxr.resample(audio, sr, SR).astype(np.float32)


def noise(seconds: float) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal(int(seconds * SR)) * 0.3).astype(np.float32)


def test_speech_keeps_its_bins_while_silence_and_noise_score_worst():
    speech = espeak(KN_TEXT, "kn")
    got = describe_clip(speech, SR, KN_TEXT, "kn", load_edges(), None)
    assert got["pitch_bin"] and got["speed_bin"], got
    item = Item(KN_TEXT, "a voice", pitch=got["pitch_bin"], speed=got["speed_bin"])
    clips = [speech, np.zeros(SR * 2, np.float32), noise(2.0)]
    scores = [score_clips([a], SR, [item], language="kn", asr_model="base-offline") for a in clips]
    good, silent, garbage = scores
    assert (good["pitch_bin_match"], good["speed_bin_match"], good["pitch_bin_distance"]) == (1.0, 1.0, 0.0)
    assert (silent["pitch_bin_match"], silent["speed_bin_match"]) == (0.0, 0.0)
    assert silent["pitch_bin_distance"] == silent["speed_bin_distance"] == 6.0
    assert garbage["pitch_bin_match"] == 0.0 and garbage["pitch_bin_distance"] == 6.0, garbage["clips"]
    # Whisper base cannot read Kannada: no number, the reason instead
    assert good["cer"] == good["wer"] == "not meaningful here: Whisper base-offline cannot read Kannada"


def test_cer_from_a_whisper_that_reads_the_language_separates_speech_from_silence_and_noise():
    item = Item(EN_TEXT, "a voice")
    cer = {name: score_clips([a], SR, [item], language="en", asr_model="base-offline")["cer"]
           for name, a in (("speech", espeak(EN_TEXT, "en")), ("silence", np.zeros(SR * 2, np.float32)),
                           ("noise", noise(2.0)))}
    assert cer["speech"] < 0.3, cer
    assert cer["silence"] >= 0.9 and cer["noise"] >= 0.7, cer
    scores = score_clips([espeak(EN_TEXT, "en")], SR, [item], language="en", asr_model="base-offline")
    assert scores["pitch_bin_match"].startswith("not meaningful here: the test split has no pitch/speed bins")
    assert scores["speed_bin_match"].startswith("not meaningful here: the test split has no pitch/speed bins")
    assert scores["clips"][0]["speed_bin"] is not None  # data prep counts English syllables: the rate is measured


def test_items_come_from_the_test_split_else_validation_and_none_turn_it_off(capsys):
    import datasets

    from nbhelpers.parler.evaluate import GenEval, held_out_items

    def split(texts, **bins):
        return datasets.Dataset.from_dict({"text": texts, "text_description": ["d"] * len(texts),
                                           **{k: [v] * len(texts) for k, v in bins.items()}})

    data = datasets.DatasetDict({"validation": split(["v1", "v2"]), "test": split(["t1", "t2", "t3"], pitch="low")})
    assert held_out_items(data, 2) == [Item("t1", "d", pitch="low"), Item("t2", "d", pitch="low")]
    data = datasets.DatasetDict({"validation": split(["v1", "v2"]), "test": split([])})
    assert [i.text for i in held_out_items(data, 5)] == ["v1", "v2"]
    cfg = load_profile("parler", "smoke")
    off = GenEval(held_out_items(datasets.DatasetDict({"validation": split([]), "test": split([])}), 2), cfg, seed=0)
    assert not off.due(16) and "generation evaluation off" in capsys.readouterr().out
    with pytest.raises(ValueError, match="mode 8bit"):
        GenEval([Item("a", "b")], {**cfg, "mode": "8bit"}, seed=0)


def load_edges() -> dict:
    from nbhelpers.data.annotate import DEFAULT_EDGES

    return dict(DEFAULT_EDGES)


@pytest.fixture(scope="module")
def binned_dataset(kn_dataset_dir, tmp_path_factory) -> Path:
    """The shared Kannada dataset with data prep's bin columns added to its test split."""
    import datasets

    dd = datasets.load_from_disk(str(kn_dataset_dir))
    n = len(dd["test"])
    test = dd["test"].add_column("pitch", ["moderate pitch"] * n).add_column("speed", ["moderate speed"] * n)
    root = tmp_path_factory.mktemp("kn_binned") / "parler"
    datasets.DatasetDict({**dd, "test": test}).save_to_disk(str(root))
    return root


@pytest.fixture(scope="module")
def gen_eval_run(parler_ws, binned_dataset):
    """The shared test run (see parler_settings) with the generation evaluation every 4 steps, in-process."""
    from nbhelpers.parler.stage import run_stage

    cfg = load_profile("parler", "smoke", {**OVERRIDES, **GEN_EVAL})
    return run_stage(cfg, workspace=Workspace(parler_ws), dataset=str(binned_dataset), run="gen_eval")


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "export" / "model.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_metrics_appear_at_the_right_steps_in_history_tensorboard_and_record(gen_eval_run, parler_ws):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, outputs = gen_eval_run
    steps = [h["step"] for h in result.history if "gen_eval" in h]
    assert steps == [4, 8, 12]
    for h in result.history:
        if "gen_eval" in h:
            g = h["gen_eval"]
            assert g["items"] == 2 and len(g["clips"]) == 2
            assert g["cer"].startswith("not meaningful here: Whisper base-offline cannot read Kannada")
            assert 0.0 <= g["pitch_bin_match"] <= 1.0 and 0.0 <= g["speed_bin_distance"] <= 6.0
    events = EventAccumulator(str(result.paths.tensorboard), size_guidance={"audio": 0, "scalars": 0}).Reload()
    assert [e.step for e in events.Scalars("gen_eval/pitch_bin_match")] == [4, 8, 12]
    assert "gen_eval/cer" not in events.Tags()["scalars"]  # not meaningful here: never logged as a number
    assert [e.step for e in events.Audio("gen_eval/item_0")] == [4, 8, 12]
    record = run_record(parler_ws, result.paths.run_dir)
    assert record["metrics"]["gen_eval"]["step"] == 12
    assert record["metrics"]["gen_eval"]["speed_bin_match"] == result.history[-1]["gen_eval"]["speed_bin_match"]


def test_generation_does_not_change_training(gen_eval_run, reference_run):
    """The shared reference run (12 steps) never evaluates (smoke: every 16 steps), this one at 4, 8 and 12."""
    result, _ = gen_eval_run
    plain = reference_run[0]
    assert not any("gen_eval" in h for h in plain.history)

    def training_only(history):
        return [{k: v for k, v in h.items() if k != "gen_eval"} for h in history]

    assert training_only(result.history) == training_only(plain.history)
    assert_same_weights(weights(result.paths.run_dir), weights(plain.paths.run_dir))


def test_sigkill_then_resume_with_gen_eval_on_equals_uninterrupted(gen_eval_run, parler_ws, binned_dataset):
    run = "gen_eval_killed"
    ckpts = parler_ws / "parler" / run / "checkpoints"
    cmd = [sys.executable, "-m", "nbhelpers.parler"] + cli_args(parler_ws, binned_dataset, run, save_every=1,
                                                                **GEN_EVAL)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(p.name >= "step-000000005" for p in ckpts.glob("step-*")):  # past the first evaluation (step 4)
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (parler_ws / "parler" / run / "export").exists()
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "status done at step 12/12" in resumed.stdout
    import json

    history = json.loads((parler_ws / "parler" / run / "history.json").read_text())
    assert history == json.loads(json.dumps(gen_eval_run[0].history))
    assert_same_weights(weights(parler_ws / "parler" / run), weights(gen_eval_run[0].paths.run_dir))
