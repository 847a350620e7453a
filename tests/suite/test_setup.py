"""The set-up a notebook runs on Kaggle/Colab and `make setup` runs here (nbhelpers.stacks), and the child-process
path of every stage (nbhelpers.nb.run): reuse, rebuild on a lock mismatch, no internet, a full disk, a crashing
stage, tokens. Real uv, real pip index, real stage command lines; only the cache folder and locks are small."""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from nbhelpers import nb, stacks

REAL_TOOLS = Path(stacks.cache_root()) / "tools" / f"uv-{stacks.UV_VERSION}"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty suite cache (own uv cache, no venvs) sharing only the already-installed uv binary."""
    root = tmp_path / "cache"
    (root / "tools").mkdir(parents=True)
    stacks.ensure_uv()  # the real one, installed by `make setup`
    (root / "tools" / REAL_TOOLS.name).symlink_to(REAL_TOOLS)
    monkeypatch.setenv("TTS_SUITE_CACHE", str(root))
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    return root


def tiny_stack(monkeypatch, tmp_path, pins, name="tiny"):
    lock = tmp_path / f"{name}.txt"
    lock.write_text("".join(f"{p}\n" for p in pins))
    monkeypatch.setitem(stacks.LOCK_FILES, name, str(lock))
    monkeypatch.setitem(stacks.COLD_BUILD_GB, name, 0.001)
    return lock


def test_build_reuse_and_rebuild_on_lock_hash_mismatch(cache, tmp_path, monkeypatch):
    lock = tiny_stack(monkeypatch, tmp_path, ["six==1.17.0"])
    lines = []
    first = stacks.ensure_stack("tiny", log=lines.append)
    assert first.built_now and first.python_version.startswith(stacks.STACK_PYTHON + ".")
    assert subprocess.run([str(first.python), "-c", "import six"]).returncode == 0
    assert any("Installed 1 package" in line for line in lines), lines  # the installer's own output is shown
    assert not list(first.dir.parent.glob("*.tmp-*")), "no build folder left behind"

    again = stacks.ensure_stack("tiny", log=lines.append)
    assert not again.built_now and again.dir == first.dir

    marker = first.dir / stacks.MARKER
    info = json.loads(marker.read_text())
    marker.write_text(json.dumps({**info, "lock_sha256": "0" * 64}))  # a venv that does not match its lock
    lines.clear()
    rebuilt = stacks.ensure_stack("tiny", log=lines.append)
    assert rebuilt.built_now and any("lock hash mismatch" in line for line in lines)

    lock.write_text("six==1.16.0\n")  # a changed lock is a different venv; the old one stays usable
    changed = stacks.ensure_stack("tiny", log=lines.append)
    assert changed.dir != first.dir and (first.dir / stacks.MARKER).is_file()


def test_no_internet_names_the_fix_and_leaves_nothing(cache, tmp_path, monkeypatch):
    tiny_stack(monkeypatch, tmp_path, ["six==1.17.0"])
    with socket.socket() as s:  # a port nobody listens on: the index is unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("UV_DEFAULT_INDEX", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("UV_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    with pytest.raises(stacks.StackError) as err:
        stacks.ensure_stack("tiny", log=lambda line: None)
    text = str(err.value)
    assert "could not be reached" in text and "Internet" in text and "127.0.0.1" in text  # the installer's words too
    assert not list((cache / "venvs").glob("tiny-*")), "no partial venv that could look usable"
    with pytest.raises(stacks.StackError, match="not built"):
        stacks.stack_python("tiny")


def test_not_enough_disk_is_refused_before_building(cache, tmp_path, monkeypatch):
    tiny_stack(monkeypatch, tmp_path, ["six==1.17.0"])
    monkeypatch.setitem(stacks.COLD_BUILD_GB, "tiny", 10.0**6)
    with pytest.raises(stacks.StackError, match=r"not enough disk .* about 1000000\.0 GB needed"):
        stacks.ensure_stack("tiny", log=lambda line: None)
    assert not list((cache / "venvs").glob("tiny-*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 40 MB tmpfs: a real full disk in the middle of a build."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the disk-full path is untested")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_building(small_disk, tmp_path, monkeypatch):
    (small_disk / "tools").mkdir()
    stacks.ensure_uv()
    (small_disk / "tools" / REAL_TOOLS.name).symlink_to(REAL_TOOLS)
    monkeypatch.setenv("TTS_SUITE_CACHE", str(small_disk))
    tiny_stack(monkeypatch, tmp_path, ["numpy==2.4.6"])  # ~17 MB wheel, ~60 MB unpacked: does not fit
    workspace = tmp_path / "ws"
    (workspace / "data").mkdir(parents=True)
    (workspace / "data" / "PREPARED.json").write_text('{"kept": 3}')
    with pytest.raises(stacks.StackError) as err:
        stacks.ensure_stack("tiny", log=lambda line: None)
    text = str(err.value)
    assert "disk is full" in text and str(small_disk) in text and "TTS_SUITE_CACHE" in text
    assert not list((small_disk / "venvs").glob("tiny-*")), "the partial build is removed"
    assert (workspace / "data" / "PREPARED.json").read_text() == '{"kept": 3}'


def test_stage_child_success_and_crash(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    monkeypatch.setattr(nb, "_SECRETS", {"HF_TOKEN": "hf_notarealtoken0123456789"})
    ok = nb.run("environment", "report", "--record", profile="smoke", workspace=workspace, quiet=True)
    assert ok.returncode == 0 and ok.record["stage"] == "00_environment" and ok.record["status"] == "done"
    assert json.loads((workspace / "environment" / "main.json").read_text())["stack"] == "main"
    assert ok.log.is_file() and "hf_notarealtoken" not in ok.log.read_text()

    before = (workspace / "run_log.jsonl").read_text()
    with pytest.raises(nb.StageFailed) as err:
        nb.run("environment", "report", "--record", profile="no-such-profile", workspace=workspace, quiet=True)
    text = str(err.value)
    assert "exit status 1" in text and "no-such-profile" in text and "Full log:" in text
    log = Path(text.split("Full log: ")[1].split("\n")[0])
    assert log.is_file() and "unknown profile" in log.read_text()
    assert (workspace / "run_log.jsonl").read_text() == before, "a failed child changes nothing already there"


def test_child_environment_carries_token_and_session_not_kernel_state(tmp_path, monkeypatch):
    monkeypatch.setattr(nb, "_SECRETS", {"HF_TOKEN": "hf_secret_value"})
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", "/usr/lib/kernel-only-packages")
    monkeypatch.delenv("TTS_SESSION_START", raising=False)
    env = nb.child_env(tmp_path)
    assert env["HF_TOKEN"] == "hf_secret_value" and env["MPLBACKEND"] == "Agg"
    assert env["PYTHONPATH"] == str(nb.PROJECT_ROOT) and env["TTS_WORKSPACE"] == str(tmp_path)
    assert abs(float(env["TTS_SESSION_START"]) - nb.kernel_start_time()) < 2
    assert nb._redact("token=hf_secret_value!") == "token=***!"


def test_setup_reads_the_token_without_showing_it(monkeypatch, capsys):
    monkeypatch.setattr(nb, "_SECRETS", {})
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment_123")
    session = nb.setup(())
    out = capsys.readouterr().out
    assert "hf_from_environment_123" not in out and "token: found" in out
    assert nb._SECRETS["HF_TOKEN"] == "hf_from_environment_123" and session.platform == "local"


def test_launch_line_uses_accelerate_for_several_processes():
    one = nb.stage_argv("pocket", "train", ["--profile", "smoke"])
    assert one[1:4] == ["-m", "nbhelpers.pocket", "train"]
    two = nb.stage_argv("pocket", "train", ["--profile", "smoke"], processes=2)
    assert two[1:4] == ["-m", "accelerate.commands.launch", "--multi_gpu"] and "--num_processes" in two
    assert two[two.index("--num_processes") + 1] == "2" and two[-4:] == ["nbhelpers.pocket", "train", "--profile",
                                                                           "smoke"]


def test_progress_bars_are_recognised_from_real_tqdm_output():
    import io

    from tqdm import tqdm

    stream = io.StringIO()
    for _ in tqdm(range(3), desc="encode", file=stream, mininterval=0):
        pass
    for _ in tqdm(iter(range(3)), file=stream, mininterval=0):  # unknown total
        pass
    bars = [part for part in stream.getvalue().replace("\r", "\n").split("\n") if part.strip()]
    assert bars and all(nb._BAR.search(b) for b in bars)
    for line in ("step 10: loss 2.31", "Saved checkpoint to /ws/parler/run/step-10", "WARNING: 3 rows quarantined"):
        assert not nb._BAR.search(line), line


def test_exit_descriptions():
    assert "SIGKILL" in nb._describe_exit(-9) and "time limit" in nb._describe_exit(-9)
    assert nb._describe_exit(2) == "exit status 2"


def test_kernel_start_time_is_this_process():
    import psutil

    assert abs(nb.kernel_start_time() - psutil.Process(os.getpid()).create_time()) < 2
