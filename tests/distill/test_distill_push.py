"""`python -m nbhelpers.distill push` against a loopback stand-in for the Hugging Face hub (huggingface_hub's real
upload path through HF_ENDPOINT): the student of a short distillation run (tiny random teacher, generation evaluation
on) arrives with a card from the stage record, and the token appears nowhere but in the request headers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from nbhelpers.paths import PROJECT_ROOT, Workspace

TOKEN = "hf_pq2DistillSecret0123456789abcdef"
REPO = "student/kannada-parler-student"
SENTENCES = ["ನಮಸ್ಕಾರ", "ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ", "ಇಂದು ಮಳೆ ಬಂತು", "ಹಕ್ಕಿ ಹಾರುತ್ತದೆ"]


def tiny_dataset(root: Path) -> Path:
    """8 train / 2 validation / 2 test rows of espeak-ng Kannada at 44.1 kHz, as data prep's parler/ folder."""
    import datasets
    import soxr

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(12):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "kn", "-s", "200", "-w", str(wav), SENTENCES[i % 4]], check=True,
                           capture_output=True)
            audio, sr = sf.read(wav, dtype="float32")
            rows.append({"audio": {"array": soxr.resample(audio, sr, 44100).astype(np.float32)[:44100],
                                   "sampling_rate": 44100}, "text": SENTENCES[i % 4],
                         "text_description": "A calm female voice.", "duration": 1.0})
    feats = datasets.Features({"audio": datasets.Audio(sampling_rate=44100), "text": datasets.Value("string"),
                               "text_description": datasets.Value("string"), "duration": datasets.Value("float32")})
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=feats)
                               for k, v in (("train", rows[:8]), ("validation", rows[8:10]), ("test", rows[10:]))})
    dd.save_to_disk(str(root))
    return root


def test_distilled_student_is_pushed_with_a_card_from_the_record(tmp_path):
    from nbhelpers.distill.pipeline import run
    from nbhelpers.profiles import load_profile
    from nbhelpers.rehearsal.hf_hub import FakeHub

    data = tiny_dataset(tmp_path / "kn" / "parler")
    ws = Workspace(tmp_path / "ws")
    params = load_profile("distill", "smoke", {"teacher": "tiny", "max_steps": 2, "eval_every": 2, "save_every": 2,
                                  "eval_sentences": ["ನಮಸ್ಕಾರ"], "eval_frames": 12, "sample_max_seconds": 0.2,
                                  "sample_sentences": ["ನಮಸ್ಕಾರ"], "int8": False, "quality": False,
                                  "gen_eval_every": 2})
    out = run(params, workspace=ws, dataset=str(data))
    assert out.status == "done"
    assert out.history[-1]["gen_eval"]["items"] == 2  # the student was evaluated at step 2
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    cmd = [sys.executable, "-m", "nbhelpers.distill", "push", "--profile", "smoke", "--workspace", str(ws.root),
           "--repo-id", REPO]
    with FakeHub(TOKEN) as hub:
        env.update(PYTHONPATH=str(PROJECT_ROOT), HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf"),
                   HF_HUB_DISABLE_TELEMETRY="1", NO_PROXY="127.0.0.1")
        missing = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert missing.returncode == 1 and "ERROR: no Hugging Face token" in missing.stderr and not hub.requests
        result = subprocess.run(cmd, env={**env, "HF_TOKEN": TOKEN}, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    files = hub.repos[REPO]
    student = out.student_dir
    assert {p.relative_to(student).as_posix() for p in student.rglob("*") if p.is_file()} | {"README.md"} == set(files)
    assert files["model.safetensors"] == (student / "model.safetensors").read_bytes()
    assert hub.private[REPO] is False
    card = files["README.md"].decode()
    assert "student distilled for Kannada (stage 03)" in card and "load_student(snapshot_download(repo_id))" in card
    assert "- step: 2" in card and "- params_decoder_ratio: " in card
    assert "generation evaluation at step 2 (2 held-out test items" in card
    assert "  - cer: not meaningful here: Whisper base-offline cannot read Kannada" in card  # a reason, not a number
    assert TOKEN not in result.stdout + result.stderr + missing.stderr
    leaked = [p for p in ws.root.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not leaked, f"the token was written to {leaked}"
