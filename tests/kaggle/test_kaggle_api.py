"""The real kaggle client (2.2.4 / kagglesdk 0.1.37) driven by `python -m kaggle_kernels` against the fake
Kaggle API server on 127.0.0.1: push, status, output, server-side rejections, 5xx retries, chained runs,
and a scan for credentials in everything the tool writes."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

CODE = "alice/tts-suite-code"
K01 = "alice/tts-suite-test-01-data-prep"
K02 = "alice/tts-suite-test-02-parler-finetune"


def record(stage: str, status: str) -> bytes:
    return (json.dumps({"stage": "01_data_prep", "status": "done"}) + "\n"
            + json.dumps({"stage": stage, "status": status, "profile": "smoke"}) + "\n").encode()


def test_push_status_output(cli, fake, tmp_path):
    suite = tmp_path / "suite"  # a frozen copy: the shared working tree may change between the two pushes
    shutil.copytree(Path(__file__).resolve().parents[2] / "nbhelpers", suite / "nbhelpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("requirements.txt", "requirements-parler.txt", "requirements-kernel.txt"):
        (suite / name).write_text("tqdm\n")
    files = {f"data/kn_smoke/wav/{i:02d}.wav": bytes([i]) * 10 for i in range(5)}
    files["run_log.jsonl"] = record("01_data_prep", "done")
    fake.output_fn = lambda ref, version, body: (files, "cell 1 ok\n")
    fake.max_page_size = 2  # 6 files -> 3 pages

    pushed = cli("push", "01_data_prep", "--suite-root", str(suite))
    assert pushed.returncode == 0, pushed.stderr
    assert f"{K01} version 1" in pushed.stdout
    # the code dataset was packaged and created before the push, with the suite archive uploaded
    assert CODE in fake.datasets and "tts_suite.zip" in fake.datasets[CODE][0]
    uploaded = {name: data for name, data in fake.blobs.values()}  # what the set-up cell will find on Kaggle
    with zipfile.ZipFile(io.BytesIO(uploaded["tts_suite.zip"])) as zf:
        assert {"nbhelpers/nb.py", "nbhelpers/stacks.py", "requirements.txt", "requirements-parler.txt",
                "requirements-kernel.txt"} <= set(zf.namelist())
    (save,) = fake.calls_of("SaveKernel")
    assert save["slug"] == K01 and save["newTitle"] == "tts suite test 01 data prep"
    assert save["datasetDataSources"] == [CODE] and save["isPrivate"] is True
    assert not save.get("enableGpu")  # this kernel turns the GPU off in the config
    nb = json.loads(save["text"])
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert any('profile = "smoke"' in c["source"] for c in nb["cells"])

    status = cli("status", "01_data_prep", "--wait")
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == f"{K01} complete"
    assert len(fake.calls_of("GetKernelSessionStatus")) == 3  # QUEUED, RUNNING, COMPLETE

    out = cli("output", "01_data_prep")
    assert out.returncode == 0, out.stderr
    dest = cli.out / "outputs" / "tts-suite-test-01-data-prep"
    for name, content in files.items():
        assert (dest / name).read_bytes() == content
    assert (dest / "tts-suite-test-01-data-prep.log").read_text() == "cell 1 ok\n"
    assert len(fake.calls_of("ListKernelSessionOutput")) == 3
    assert not list(dest.rglob("*.part"))

    again = cli("push", "01_data_prep", "--suite-root", str(suite))  # unchanged suite: the code dataset is not uploaded again
    assert again.returncode == 0 and "unchanged" in again.stderr
    assert len(fake.datasets[CODE]) == 1 and len(fake.kernels[K01]) == 2


def test_push_rejected_through_error(cli, fake):
    fake.push_error = "Maximum batch GPU session count of 2 reached"
    done = cli("push", "01_data_prep")
    assert done.returncode == 1
    assert "rejected by Kaggle: Maximum batch GPU session count of 2 reached" in done.stderr
    assert K01 not in fake.kernels
    fake.push_error = None
    assert cli("push", "01_data_prep").returncode == 0
    fake.status_script = ["RUNNING", "CANCEL_REQUESTED", "CANCEL_ACKNOWLEDGED"]  # a cancel ends the wait too
    cancelled = cli("status", "01_data_prep", "--wait")
    assert cancelled.returncode == 2 and cancelled.stdout.strip() == f"{K01} cancelled"


def test_invalid_sources_are_failures(cli, fake):
    done = cli("push", "09_bad_sources")
    assert done.returncode == 1
    assert "invalid dataset sources: alice/no-such-dataset" in done.stderr
    # stage 02 before stage 01 exists: its upstream kernel source is invalid too
    done = cli("push", "02_parler_finetune", "--no-package")
    assert done.returncode == 1 and f"invalid kernel sources: {K01}" in done.stderr


def test_http_5xx_retried_then_surfaced(cli, fake):
    fake.fail["SaveKernel"] = 2
    ok = cli("push", "01_data_prep", "--attempts", "3")
    assert ok.returncode == 0, ok.stderr
    assert len(fake.calls_of("SaveKernel")) == 3 and "retry 2/2" in ok.stderr
    fake.fail["GetKernelSessionStatus"] = 10
    bad = cli("status", "01_data_prep", "--attempts", "3")
    assert bad.returncode == 1
    assert "failed after 3 attempt(s): HTTP 500: fake outage in GetKernelSessionStatus" in bad.stderr
    assert len(fake.calls_of("GetKernelSessionStatus")) == 3
    fake.fail["GetKernelSessionStatus"] = 0
    fake.fail["download"] = 1  # a storage hiccup while downloading an output file is retried as well
    fake.output_fn = lambda ref, version, body: ({"a.txt": b"A", "big/ckpt.pt": b"B"}, "")
    out = cli("output", "01_data_prep", "--fetch", r"\.txt$")  # only what matches is downloaded
    assert out.returncode == 0, out.stderr
    dest = cli.out / "outputs" / "tts-suite-test-01-data-prep"
    assert (dest / "a.txt").read_bytes() == b"A" and not (dest / "big").exists()


def _chain_outputs(statuses: dict[str, list[str]]):
    """Outputs per kernel version: a checkpoint file and a run log whose record says ``statuses[ref][v-1]``."""
    def output(ref: str, version: int, body: dict) -> tuple[dict[str, bytes], str]:
        stage = "01_data_prep" if ref == K01 else "02_parler_finetune"
        status = statuses[ref][min(version, len(statuses[ref])) - 1]
        files = {"run_log.jsonl": record(stage, status),
                 f"parler/checkpoints/step-{version * 100:06d}/state.pt": f"{ref} v{version}".encode()}
        return files, f"{ref} v{version} log"
    return output


def test_chained_run_resumes_until_done(cli, fake, project):
    project.write_text(project.read_text().replace('resume_via = "auto"', 'resume_via = "kernel"'))
    fake.output_fn = _chain_outputs({K01: ["done"], K02: ["resume_needed", "resume_needed", "done"]})
    # --fetch: with resume_via = kernel only run_log.jsonl and matching files come down (not step 300)
    done = cli("run", "01_data_prep", "02_parler_finetune", "--fetch", "step-000[12]00")
    assert done.returncode == 0, done.stderr
    assert len(fake.kernels[K01]) == 1 and len(fake.kernels[K02]) == 3
    sources = [v["kernelDataSources"] for v in fake.kernels[K02]]
    # every version attaches stage 01's finished version, and versions 2 and 3 their own previous version
    assert sources == [[f"{K01}/1"], [f"{K01}/1", f"{K02}/1"], [f"{K01}/1", f"{K02}/2"]]
    assert all(v["datasetDataSources"] == [CODE] for v in fake.kernels[K02])
    runs = cli.out / "runs" / "tts-suite-test-02-parler-finetune"
    for v in (1, 2, 3):
        session = runs / f"session-{v:02d}-v{v}"
        assert (session / "run_log.jsonl").is_file()
        ckpt = session / f"parler/checkpoints/step-{v * 100:06d}/state.pt"
        assert ckpt.read_bytes() == f"{K02} v{v}".encode() if v < 3 else not ckpt.exists()
    events = [json.loads(line) for line in (runs / "chain.jsonl").read_text().splitlines()]
    assert [e["record_status"] for e in events if e["event"] == "finished"] == ["resume_needed", "resume_needed",
                                                                                "done"]
    assert f"{K02} done versions=[1, 2, 3]" in done.stdout


def test_chain_uses_checkpoint_dataset_when_kernel_cannot_attach_itself(cli, fake):
    fake.allow_self_source = False
    fake.output_fn = _chain_outputs({K01: ["done"], K02: ["resume_needed", "done"]})
    done = cli("run", "01_data_prep", "02_parler_finetune")
    assert done.returncode == 0, done.stderr
    ckpt = "alice/tts-suite-test-02-parler-finetune-ckpt"
    assert ckpt in fake.datasets and "publishing it as a checkpoint dataset" in done.stderr
    # the dataset holds session 1's output (the client zips the workspace folder), without the kernel log
    uploaded = {name: data for name, data in fake.blobs.values()}
    with zipfile.ZipFile(io.BytesIO(uploaded["workspace.zip"])) as zf:
        assert sorted(zf.namelist()) == ["parler/checkpoints/step-000100/state.pt", "run_log.jsonl"]
        assert zf.read("run_log.jsonl") == record("02_parler_finetune", "resume_needed")
    (v1, v2) = fake.kernels[K02]
    assert v2["datasetDataSources"] == [CODE, ckpt] and v2["kernelDataSources"] == [f"{K01}/1"]


def test_chain_stops_after_max_sessions_and_on_error(cli, fake):
    fake.output_fn = _chain_outputs({K01: ["done"], K02: ["resume_needed"]})
    stopped = cli("run", "01_data_prep", "02_parler_finetune", "--max-sessions", "2")
    assert stopped.returncode == 3 and len(fake.kernels[K01]) == 1
    assert "still resume_needed after 2 session(s)" in stopped.stderr and "--resume-from-version 2" in stopped.stderr
    assert len(fake.kernels[K02]) == 2
    fake.status_script = ["RUNNING", "ERROR"]
    fake.failure_message = "CUDA out of memory"
    failed = cli("run", "02_parler_finetune", "--resume-from-version", "2")
    assert failed.returncode == 1 and "ended error: CUDA out of memory" in failed.stderr
    assert fake.kernels[K02][2]["kernelDataSources"] == [K01, f"{K02}/2"]
    log = cli.out / "runs" / "tts-suite-test-02-parler-finetune" / "session-01-v3" / \
        "tts-suite-test-02-parler-finetune.log"
    assert log.read_text() == f"{K02} v3 log"  # the failed session's log is fetched for diagnosis


def test_missing_credentials_are_reported(cli, fake, home):
    (home / ".kaggle" / "kaggle.json").unlink()
    done = cli("push", "01_data_prep", "--owner", "alice")
    assert done.returncode == 1 and "no Kaggle credentials" in done.stderr
    assert fake.calls == []


def test_dry_run_then_secret_scan_of_everything_written(cli, fake, home, tmp_path):
    dry = cli("run", "01_data_prep", "02_parler_finetune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert fake.calls == []  # built and printed, no API call
    report = json.loads(dry.stdout)
    assert report["code_dataset"]["ref"] == CODE and report["code_dataset"]["files"] > 10
    stage2 = report["stages"][1]
    assert stage2["metadata"]["kernel_sources"] == [K01] and stage2["max_sessions"] == 5
    assert stage2["later_sessions_attach"].startswith(f"{K02}/<previous version>")
    assert Path(stage2["folder"], "kernel-metadata.json").is_file()

    fake.output_fn = _chain_outputs({K01: ["done"], K02: ["resume_needed", "done"]})
    fake.allow_self_source = False  # exercise the checkpoint dataset path too
    runs = [dry, cli("run", "01_data_prep", "02_parler_finetune")]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    secrets = [fake.key.encode(), base64.b64encode(f"{fake.username}:{fake.key}".encode())]
    blobs: list[tuple[str, bytes]] = [(f"stdout/stderr {i}", (r.stdout + r.stderr).encode()) for i, r in enumerate(runs)]
    for path in cli.out.rglob("*"):
        if path.is_file():
            blobs.append((str(path), path.read_bytes()))
    blobs += [(f"upload {name}", data) for name, data in fake.blobs.values()]
    blobs += [(f"pushed {body['slug']}", json.dumps(body).encode()) for body in fake.calls_of("SaveKernel")]
    for where, data in list(blobs):
        if data[:2] == b"PK":  # look inside archives too (the packaged suite, zipped checkpoint folders)
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                blobs += [(f"{where}:{n}", zf.read(n)) for n in zf.namelist()]
    assert len(blobs) > 20
    leaks = [where for where, data in blobs for s in secrets if s in data]
    assert leaks == []
    assert not [p for p in cli.out.rglob("*") if p.name in ("kaggle.json", "access_token")]
