"""Atomic checkpoints: a save killed at any moment never hides the previous complete checkpoint."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from nbhelpers.checkpoint import (
    MARKER,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    save_checkpoint,
    verify_checkpoint,
)


def _write(payload: bytes):
    def write(folder):
        (folder / "weights.bin").write_bytes(payload)
        (folder / "sub").mkdir()
        (folder / "sub" / "state.json").write_text(json.dumps({"n": len(payload)}))
    return write


def test_save_then_latest_returns_newest_complete(tmp_path):
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, _write(bytes([step]) * 100), keep=None)
    latest = latest_checkpoint(tmp_path)
    assert latest.name.endswith("000000030")
    assert (latest / "weights.bin").read_bytes() == bytes([30]) * 100
    assert verify_checkpoint(latest) is None


def test_retention_keeps_newest(tmp_path):
    for step in range(1, 6):
        save_checkpoint(tmp_path, step, _write(b"x"), keep=2)
    assert [p.name[-1] for p in list_checkpoints(tmp_path)] == ["4", "5"]


def test_partial_and_corrupt_checkpoints_are_skipped_with_warning(tmp_path):
    save_checkpoint(tmp_path, 1, _write(b"good"), keep=None)
    corrupt = save_checkpoint(tmp_path, 2, _write(b"soon corrupt"), keep=None)
    (corrupt / "weights.bin").write_bytes(b"flipped bits")
    partial = save_checkpoint(tmp_path, 3, _write(b"soon partial"), keep=None)
    (partial / MARKER).unlink()
    with pytest.warns(UserWarning, match="skipping checkpoint") as warned:
        latest = latest_checkpoint(tmp_path)
    assert latest.name.endswith("000000001")
    reasons = " ".join(str(w.message) for w in warned)
    assert "sha256" in reasons and "interrupted" in reasons


def test_latest_across_directories_prefers_highest_step(tmp_path):
    save_checkpoint(tmp_path / "working", 5, _write(b"a"))
    save_checkpoint(tmp_path / "input", 9, _write(b"b"))
    assert latest_checkpoint([tmp_path / "working", tmp_path / "input"]).parent.name == "input"
    assert latest_checkpoint(tmp_path / "empty") is None


SAVER = textwrap.dedent("""
    import sys, time
    from nbhelpers.checkpoint import save_checkpoint
    directory = sys.argv[1]
    def slow_write(step):
        def write(folder):
            with open(folder / "weights.bin", "wb") as f:
                for i in range(400):              # ~4 MB written in 400 small pieces
                    f.write(bytes([step % 256]) * 10_000)
                    f.flush()
                    time.sleep(0.0005)
        return write
    for step in range(1, 10_000):
        save_checkpoint(directory, step, slow_write(step), keep=2)
        print(step, flush=True)
""")


@pytest.mark.parametrize("delay", [0.05, 0.17, 0.31, 0.52, 0.77, 1.13])
def test_sigkill_during_save_leaves_previous_complete_checkpoint(tmp_path, delay):
    """SIGKILL a process that saves checkpoints back to back at several moments (during file writes,
    hashing, marker, rename, pruning): the newest loadable checkpoint is always complete and intact."""
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline().strip() == "1"  # at least one complete save
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = latest_checkpoint(tmp_path)
    assert latest is not None
    assert verify_checkpoint(latest) is None
    step = json.loads((latest / MARKER).read_text())["step"]
    data = (latest / "weights.bin").read_bytes()
    assert len(data) == 4_000_000 and set(data) == {step % 256}
    # a later save in a fresh process cleans the dead process's temporary folder and continues
    save_checkpoint(tmp_path, step + 1, _write(b"next"), keep=2)
    assert not list(tmp_path.glob(".tmp-*"))
    assert latest_checkpoint(tmp_path).name.endswith(f"{step + 1:09d}")


def test_prune_zero_keeps_nothing(tmp_path):
    save_checkpoint(tmp_path, 1, _write(b"a"), keep=None)
    prune_checkpoints(tmp_path, 0)
    assert list_checkpoints(tmp_path) == []
