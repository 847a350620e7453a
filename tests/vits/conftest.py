"""A tiny Bangla LJSpeech-style corpus spoken by espeak-ng (22.05 kHz), laid out like data prep's export
(``data/bn_smoke/ljspeech`` + PREPARED.json), so the VITS tests do not depend on stage 01 having run."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

SENTENCES = [
    "আমি বাংলায় গান গাই।", "ঢাকা বাংলাদেশের রাজধানী।", "আজ আকাশ খুব পরিষ্কার।", "নদীর পাড়ে একটি গ্রাম।",
    "সে প্রতিদিন সকালে হাঁটে।", "আমরা ২ জন বন্ধু।", "বইটি টেবিলের উপরে আছে।", "শিশুরা মাঠে খেলছে।",
    "বৃষ্টি পড়ছে টাপুর টুপুর।", "চা খেতে ভালো লাগে।", "র‍্যাব এসেছে।", "মা রান্না করছেন।",
]


def make_corpus(root: Path, sentences=SENTENCES, n_val: int = 2) -> Path:
    """Write <root>/ljspeech/{metadata*.csv, wavs/} with espeak-ng -v bn and a PREPARED.json marker."""
    lj = root / "ljspeech"
    (lj / "wavs").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, text in enumerate(sentences):
        uid = f"bn_{i:04d}"
        wav = lj / "wavs" / f"{uid}.wav"
        subprocess.run(["espeak-ng", "-v", "bn", "-s", "190", "-w", str(wav), text], check=True, capture_output=True)
        audio, sr = sf.read(wav)
        assert sr == 22050, sr
        lines.append(f"{uid}|{text}|{text}")
    (lj / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (lj / "metadata_train.csv").write_text("\n".join(lines[:-n_val]) + "\n", encoding="utf-8")
    (lj / "metadata_val.csv").write_text("\n".join(lines[-n_val:]) + "\n", encoding="utf-8")
    (root / "PREPARED.json").write_text(json.dumps({"name": root.name, "source": "tests/vits espeak fixture"}))
    return lj


@pytest.fixture(scope="session")
def corpus_template(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("bn") / "bn_smoke").parent


@pytest.fixture
def bn_dataset(corpus_template, isolated_workspace) -> Path:
    """A fresh copy of the corpus at <workspace>/data/bn_smoke (tests may damage it); returns ljspeech/."""
    dest = Path(isolated_workspace) / "data" / "bn_smoke"
    shutil.copytree(corpus_template, dest)
    return dest / "ljspeech"
