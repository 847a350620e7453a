"""The rehearsal's Kaggle step: the real-profile kernels pushed and chained by the unmodified `kaggle_kernels` CLI
(the official client underneath) against the local fake Kaggle API, each session's output being the rehearsal's own
run log, then every pushed kernel checked: baked profile, GPU, attached sources."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..paths import PROJECT_ROOT
from .kaggle_api import FakeKaggle

OWNER = "rehearsal"
CONFIG = PROJECT_ROOT / "kaggle_kernels" / "kernels.toml"
FAST_POLLS = ["--poll-seconds", "0.05", "--poll-max-seconds", "0.1", "--retry-seconds", "0.05", "--timeout", "120"]


def _parameters(notebook_json: str) -> dict[str, str]:
    """``name = value`` lines of the cell papermill injected (tagged ``injected-parameters``)."""
    cells = json.loads(notebook_json)["cells"]
    injected = next((c for c in cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None)
    text = "".join(injected["source"]) if injected else ""
    return dict(re.findall(r"^(\w+) = (.+)$", text, flags=re.M))


def check_pushed(fake: FakeKaggle, config: Any, profile: str) -> tuple[dict[str, Any], list[str]]:
    """Per kernel: versions pushed, baked profile, GPU and sources; problems where they disagree with the config
    and the profile (a kernel that would run smoke, lack the code dataset or an earlier stage's output)."""
    kernels, problems = {}, []
    for key in config.keys():
        spec = config.kernel(key)
        versions = fake.kernels.get(spec.ref, [])
        if not versions:
            problems.append(f"{key}: never pushed ({spec.ref})")
            continue
        body = versions[-1]
        baked = _parameters(body["text"])
        sources = {"datasets": body.get("datasetDataSources", []), "kernels": body.get("kernelDataSources", [])}
        kernels[key] = {"ref": spec.ref, "versions": len(versions), "profile": baked.get("profile"),
                        "gpu": bool(body.get("enableGpu")), "machine_shape": body.get("machineShape"), **sources}
        if baked.get("profile") != json.dumps(profile):
            problems.append(f"{key}: baked profile {baked.get('profile')} instead of {profile!r}")
        if any("smoke" in v for v in baked.values()):
            problems.append(f"{key}: a baked parameter names a smoke artefact: {baked}")
        if bool(body.get("enableGpu")) != spec.enable_gpu:
            problems.append(f"{key}: enableGpu {body.get('enableGpu')} but the config says {spec.enable_gpu}")
        if config.suite["install"] == "dataset" and config.code_dataset_ref not in sources["datasets"]:
            problems.append(f"{key}: the code dataset {config.code_dataset_ref} is not attached")
        attached = {k.rsplit("/", 1)[0] if k.count("/") == 2 else k for k in sources["kernels"]}
        problems += [f"{key}: the output of {after} ({config.kernel(after).ref}) is not attached"
                     for after in spec.after if config.kernel(after).ref not in attached]
    return kernels, problems


def rehearse_kaggle(profile: str, workspace: Path, out: Path) -> dict[str, Any]:
    """Push 00 and chain every stage kernel in `kernels.toml` order (06 after 07) through `python -m kaggle_kernels`
    against the fake API; each session's output is this rehearsal's run log, so the chain reads real-profile
    records. Returns ``{"ok", "kernels", "problems", "log"}`` and writes ``kaggle.json`` in ``out``."""
    from kaggle_kernels.config import load_config

    out.mkdir(parents=True, exist_ok=True)
    home = out / "home"
    (home / ".kaggle").mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)  # a throw-away credential the fake server accepts; nothing real is used
    cred = home / ".kaggle" / "kaggle.json"
    cred.write_text(json.dumps({"username": OWNER, "key": key}), encoding="utf-8")
    cred.chmod(0o600)
    run_log = (workspace / "run_log.jsonl").read_bytes()
    config = load_config(CONFIG, owner=OWNER)
    stages, pending = [], [k for k in config.keys() if config.kernel(k).after or k == "01_data_prep"]
    while pending:  # each stage after those it attaches (06 lists 07)
        ready = next(k for k in pending if set(config.kernel(k).after) <= set(stages))
        stages.append(ready)
        pending.remove(ready)
    others = [k for k in config.keys() if k not in stages]
    with FakeKaggle(OWNER, key) as fake:
        fake.output_fn = lambda ref, version, body: ({"run_log.jsonl": run_log}, f"{ref} v{version}: rehearsal")
        env = fake.client_env(home)
        log = []
        for command in (["push", *others], ["run", *stages]):
            done = subprocess.run([sys.executable, "-m", "kaggle_kernels", *command, "--owner", OWNER,
                                   "--config", str(CONFIG), "--out", str(out / "build"), *FAST_POLLS],
                                  env=env, capture_output=True, text=True, timeout=900)
            log.append({"command": command, "returncode": done.returncode, "stdout": done.stdout[-4000:],
                        "stderr": done.stderr[-4000:]})
        kernels, problems = check_pushed(fake, config, profile)
    problems = [f"kaggle_kernels {' '.join(e['command'][:2])}... exited {e['returncode']}: "
                + (e["stderr"].strip().splitlines() or ["(no output)"])[-1] for e in log if e["returncode"]] + problems
    if key in json.dumps(log):
        problems.append("the Kaggle key appeared in the CLI's output")
    report = {"ok": not problems, "kernels": kernels, "problems": problems, "log": log}
    (out / "kaggle.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def kaggle_markdown(report: dict[str, Any]) -> str:
    lines = [f"## Kaggle kernels (fake API): {'ok' if report['ok'] else 'BROKEN'}", "",
             "| kernel | versions | profile | GPU | datasets | kernels attached |", "|---|---:|---|---|---|---|"]
    for key, k in report["kernels"].items():
        lines.append(f"| {key} | {k['versions']} | {k['profile']} | {'yes' if k['gpu'] else 'no'} | "
                     f"{', '.join(k['datasets']) or '-'} | {', '.join(k['kernels']) or '-'} |")
    if report["problems"]:
        lines += ["", *[f"- {p}" for p in report["problems"]]]
    return "\n".join(lines) + "\n"
