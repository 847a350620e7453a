"""Streamed speech in the notebooks: `parler speak --stream-dir` writes the audio chunk by chunk while generating
(tiny random model: mechanics), the kernel follows the chunk files in order as they appear (nb.follow_chunks), and
nb.stream_player plays each chunk once it has arrived and the one before has played, on both platforms' widget
libraries (ipywidgets 8.1.5 Kaggle, 7.7.1 Colab), counting only under papermill. The browser is not tested."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import threading
import time
import wave
from pathlib import Path

import pytest

from nbhelpers import nb, stacks
from nbhelpers.paths import PROJECT_ROOT

RATE = 8000


def write_chunk(folder: Path, index: int, seconds: float) -> Path:
    """A silent WAV of ``seconds``, renamed into place complete (as the stage writes its chunks)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".chunk_{index:04d}.tmp.wav"
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"\0\0" * int(seconds * RATE))
    return tmp.replace(folder / f"chunk_{index:04d}.wav")


def test_follow_chunks_yields_each_in_order_as_it_appears_and_the_last_one(tmp_path):
    folder = tmp_path / "chunks"
    done = threading.Event()

    def writer() -> None:
        for i in range(4):
            time.sleep(0.05)
            write_chunk(folder, i, 0.1)
        done.set()  # stops right after its last chunk

    seen, started = [], time.monotonic()
    thread = threading.Thread(target=writer)
    thread.start()
    for path in nb.follow_chunks(folder, lambda: not done.is_set(), poll=0.01):
        seen.append((path.name, round(time.monotonic() - started, 2)))
    thread.join()
    assert [name for name, _ in seen] == [f"chunk_{i:04d}.wav" for i in range(4)]
    assert seen[0][1] < 0.15  # the first chunk is handed on while the rest are still being written
    write_chunk(folder, 9, 0.1)  # not next in order: never taken for chunk 4
    assert list(nb.follow_chunks(folder, lambda: False)) == [folder / f"chunk_{i:04d}.wav" for i in range(4)]


def test_headless_player_only_counts_the_chunks(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_HEADLESS", "1")
    chunks = [write_chunk(tmp_path, i, s) for i, s in enumerate((0.25, 0.5, 0.25))]
    slept: list[float] = []
    got = nb.stream_player(iter(chunks), sleep=slept.append)
    assert got == {"chunks": 3, "audio_seconds": 1.0, "first_chunk_seconds": got["first_chunk_seconds"]}
    assert slept == []  # nothing plays, so nothing waits


# A shell without a kernel (widgets open no comm): chunks arrive at 0.0, 0.1 and 2.0 s on a fake clock, each 1 s
# long. Each Audio widget records the clock when it is made: chunk 2 must wait until chunk 1 has played (1.0 s), chunk
# 3 is shown on arrival (2.0 s), and the player waits for the last chunk before removing itself (3.0 s).
PROBE = r"""
import json, sys
from pathlib import Path
from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.instance()
import ipywidgets
from nbhelpers import nb

now = [0.0]
made = []
class Recorded(ipywidgets.Audio):
    def __init__(self, **kw):
        super().__init__(**kw)
        made.append({"at": now[0], "bytes": len(kw["value"]), "autoplay": self.autoplay, "format": self.format})
ipywidgets.Audio = Recorded

def sleep(s):
    now[0] += s

def arriving(paths, times):
    for p, t in zip(paths, times):
        now[0] = max(now[0], t)
        yield p

paths = sys.argv[1:]
got = nb.stream_player(arriving(paths, [0.0, 0.1, 2.0]), clock=lambda: now[0], sleep=sleep)
print(json.dumps({"version": ipywidgets.__version__, "made": made, "got": got, "end": now[0]}))
"""


def _colab_python() -> Path:
    """The ipywidgets 7.7.1 venv the Try-it form test builds (tests/suite/test_widgets.py), reused."""
    spec = importlib.util.spec_from_file_location("suite_widgets", PROJECT_ROOT / "tests" / "suite" / "test_widgets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._colab_python()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("platform", ["kaggle", "colab"])
def test_player_shows_each_chunk_after_the_one_before_has_played(platform, tmp_path):
    python = stacks.stack_python("kernel") if platform == "kaggle" else _colab_python()
    assert python.is_file(), f"{python} missing: run `make setup` (builds the kernel stack)"
    chunks = [write_chunk(tmp_path, i, 1.0) for i in range(3)]
    env = {k: v for k, v in os.environ.items() if k not in ("TTS_HEADLESS", "VIRTUAL_ENV")}
    done = subprocess.run([str(python), "-c", PROBE, *map(str, chunks)], env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["version"] == {"kaggle": "8.1.5", "colab": "7.7.1"}[platform]
    assert [m["at"] for m in got["made"]] == [0.0, 1.0, 2.0]
    assert all(m["autoplay"] and m["format"] == "wav" and m["bytes"] == chunks[0].stat().st_size for m in got["made"])
    assert got["end"] == 3.0 and got["got"] == {"chunks": 3, "audio_seconds": 3.0, "first_chunk_seconds": 0.0}


def test_speak_writes_chunks_while_generating_and_the_whole_clip(tmp_path):
    """stage.speak with a stream folder: numbered chunk WAVs that add up to the whole clip it writes, the time to
    first audio, and the path named as streamed."""
    import soundfile as sf

    from nbhelpers.parler.model import build_tiny, save_bundle
    from nbhelpers.parler.stage import speak
    from nbhelpers.profiles import load_profile

    export = save_bundle(build_tiny(0), tmp_path / "export")
    cfg = load_profile("parler", "smoke")
    info = speak(cfg, text="ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", export=str(export), out=tmp_path / "speak.wav",
                 stream_dir=tmp_path / "chunks", max_seconds=1.0)
    chunks = sorted((tmp_path / "chunks").glob("chunk_*.wav"))
    assert len(chunks) == info["chunks"] >= 2
    whole, sr = sf.read(tmp_path / "speak.wav", dtype="float32")
    assert sum(len(sf.read(c)[0]) for c in chunks) == len(whole) and sr == 44100
    assert 0 < info["first_audio_seconds"] <= info["generation_seconds"]
    assert info["synthesis_path"].endswith(", streamed")
    assert json.loads((tmp_path / "speak.wav.json").read_text(encoding="utf-8"))["chunks"] == len(chunks)
