"""`python -m nbhelpers.parler push` against a loopback stand-in for the Hugging Face hub (huggingface_hub's real
upload path, reached through HF_ENDPOINT): the export and a card generated from the stage records arrive, the token
never shows up in output, card, records or workspace files, and a missing or refused token gives a clear message.
The model is the tiny random-weight one of the shared reference run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nbhelpers.paths import PROJECT_ROOT, Workspace
from nbhelpers.records import append_stage_record

TOKEN = "hf_pq2TestSecretToken0123456789abcdef"
REPO = "student/kannada-parler-smoke"


def push_cmd(stage: str, workspace: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", f"nbhelpers.{stage}", "push", "--profile", "smoke", "--workspace", str(workspace),
            "--repo-id", REPO, *extra]


def child_env(hub, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(PYTHONPATH=str(PROJECT_ROOT), HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HOME=str(Path(env.get("TMPDIR", "/tmp")) / "pq2-hf-home"), NO_PROXY="127.0.0.1")
    if token:
        env["HF_TOKEN"] = token
    return env


def assert_token_nowhere(result: subprocess.CompletedProcess, workspace: Path) -> None:
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    leaked = [p for p in workspace.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not leaked, f"the token was written to {leaked}"


def test_missing_token_says_how_to_set_it_and_uploads_nothing(reference_run, parler_ws):
    from nbhelpers.rehearsal.hf_hub import FakeHub

    with FakeHub(TOKEN) as hub:
        result = subprocess.run(push_cmd("parler", parler_ws, "--run", "reference"), env=child_env(hub, None),
                                capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "ERROR: no Hugging Face token" in result.stderr and "Secrets > HF_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert hub.requests == []


def test_a_refused_token_is_reported_without_showing_it(reference_run, parler_ws):
    from nbhelpers.rehearsal.hf_hub import FakeHub

    with FakeHub("hf_theRealOneIsDifferent") as hub:
        result = subprocess.run(push_cmd("parler", parler_ws, "--run", "reference"), env=child_env(hub, TOKEN),
                                capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "ERROR: the hub refused the upload" in result.stderr and "401" in result.stderr
    assert TOKEN not in result.stderr and TOKEN not in result.stdout and REPO not in hub.repos


def test_push_uploads_the_export_with_a_card_from_the_records(reference_run, parler_ws, kn_dataset_dir):
    from nbhelpers.rehearsal.hf_hub import FakeHub

    # the reference run trained on a dataset folder `<...>/kn0/parler`; data prep names such a dataset `kn0`
    name = Path(kn_dataset_dir).parent.name
    append_stage_record("01_data_prep", profile="kaggle-t4", workspace=Workspace(parler_ws),
                        inputs={name: "openslr:79"}, metrics={f"{name}_kept": 1234, f"{name}_minutes": 90.0})
    export = Path(reference_run[1]["export"])
    with FakeHub(TOKEN) as hub:
        result = subprocess.run(push_cmd("parler", parler_ws, "--run", "reference", "--private"),
                                env=child_env(hub, TOKEN), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    files = hub.repos[REPO]
    assert hub.private[REPO] is True
    assert files["model.safetensors"] == (export / "model.safetensors").read_bytes()
    assert files["description_tokenizer/tokenizer_config.json"] == \
        (export / "description_tokenizer" / "tokenizer_config.json").read_bytes()
    assert {p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()} == set(files)
    card = files["README.md"].decode()
    assert hub.card_metadata["license"] == "apache-2.0" and hub.card_metadata["language"] == "kn"
    assert "random initial weights" in card
    assert f"| {name} | openslr:79 | 1234 | 1.5 | CC BY-SA 4.0 (OpenSLR SLR79) |" in card
    assert "- step: 12" in card and "- final_eval_loss: " in card
    assert f"repo_id = '{REPO}'" in card
    # the LFS path was taken for the weights, and every API call carried the token
    assert any(verb == "PUT" and path.startswith("/lfs-upload/") for verb, path, _ in hub.requests)
    assert all(auth == f"Bearer {TOKEN}" for verb, path, auth in hub.requests if path.startswith("/api/"))
    assert f"to {hub.endpoint}/{REPO} (private)" in result.stdout
    push_record = reference_run[0].paths.run_dir / "push.json"
    assert push_record.is_file() and REPO in push_record.read_text()
    assert_token_nowhere(result, parler_ws)
