"""Chained runs: keep a training stage going across Kaggle's 12-hour sessions (push, wait, read the stage
record from the output, push the next version with the previous output attached) and run stages in order,
each consuming the outputs of the stages it comes after."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbhelpers.records import read_records

from .build import build_kernel, output_dataset_folder, package_suite
from .client import InvalidSourcesError, KaggleClient, KaggleError
from .config import PROJECT_ROOT, KernelSpec, SuiteConfig


class ChainStopped(KaggleError):
    """The session cap was reached while the stage still needs resuming."""


@dataclass
class StageResult:
    key: str
    ref: str
    status: str  # done | resume_needed
    versions: list[int | None] = field(default_factory=list)
    output_dir: Path | None = None


def find_stage_record(output_dir: Path, stage: str) -> dict[str, Any] | None:
    """The newest record of ``stage`` in a downloaded output: ``run_log.jsonl`` at the output root first,
    else the shallowest one found below it (an attached workspace may be nested)."""
    logs = sorted(output_dir.rglob("run_log.jsonl"), key=lambda p: (len(p.relative_to(output_dir).parts), str(p)))
    for log in logs:
        records = read_records(log, stage)
        if records:
            return records[-1]
    return None


def _append_event(path: Path, **event: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **event}) + "\n")


def ensure_code_dataset(client: KaggleClient, cfg: SuiteConfig, out_root: Path, root: Path = PROJECT_ROOT) -> str:
    """Package the suite and upload it as the code dataset when its content changed since the last upload
    from this folder (sha256 kept in ``<out_root>/state.json``). Returns 'created', 'versioned' or 'unchanged'."""
    folder = package_suite(cfg, out_root / "datasets", root)
    digest = json.loads((folder / "tts_suite_manifest.json").read_text())["sha256"]
    state_path = out_root / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state.get(cfg.code_dataset_ref) == digest:
        client.log(f"code dataset {cfg.code_dataset_ref} unchanged (sha256 {digest[:12]})")
        return "unchanged"
    action = client.upload_dataset(folder, cfg.code_dataset_ref, f"suite sha256 {digest[:12]}")
    state[cfg.code_dataset_ref] = digest
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    return action


def _publish_checkpoint(client: KaggleClient, spec: KernelSpec, output_dir: Path, out_root: Path,
                        version: int | None) -> str:
    """Upload a session's output as the stage's checkpoint dataset; returns its ref."""
    folder = output_dataset_folder(spec, output_dir, out_root / "datasets", version or 0)
    ref = json.loads((folder / "dataset-metadata.json").read_text())["id"]
    client.upload_dataset(folder, ref, f"output of {spec.ref} version {version}")
    return ref


def _pin_dependencies(spec: KernelSpec, cfg: SuiteConfig, finished: dict[str, int | None]) -> None:
    """Attach the exact version of every upstream stage finished in this run (latest version otherwise)."""
    for dep in spec.after:
        ref = cfg.kernel(dep).ref
        if finished.get(dep) and ref in spec.kernel_sources:
            spec.kernel_sources[spec.kernel_sources.index(ref)] = f"{ref}/{finished[dep]}"


def run_stage(client: KaggleClient, cfg: SuiteConfig, key: str, out_root: Path, *, max_sessions: int | None = None,
              resume_from_version: int | None = None, parameters: dict[str, Any] | None = None,
              finished: dict[str, int | None] | None = None, timeout: float = 13 * 3600,
              fetch: str | None = None) -> StageResult:
    """Run one stage until its record says done: each session's output (and log) lands in
    ``<out_root>/runs/<slug>/session-NN-vV``; a 'resume_needed' record pushes the next version attaching that
    output (the kernel's own version, or a checkpoint dataset when Kaggle refuses the self-reference).
    ``fetch`` (a regex) limits the download to matching files plus run_log.jsonl when resume_via is 'kernel'
    (with 'dataset' or 'auto' the whole output may have to be re-uploaded, so all of it is fetched)."""
    spec = cfg.kernel(key, parameters)
    _pin_dependencies(spec, cfg, finished or {})
    cap = max_sessions or (spec.max_sessions if spec.chain else 1)
    runs = out_root / "runs" / spec.slug
    events = runs / "chain.jsonl"
    via = spec.resume_via
    prev_version, prev_output = resume_from_version, None
    result = StageResult(key=key, ref=spec.ref, status="resume_needed")
    for session in range(1, cap + 1):
        extra_kernels, extra_datasets = [], []
        if prev_version is not None or prev_output is not None:
            if via == "dataset":
                if prev_output is None:
                    raise KaggleError(f"{spec.ref}: resume_via = 'dataset' needs a previous output from this run; "
                                      "use resume_via = 'kernel' with --resume-from-version")
                extra_datasets = [_publish_checkpoint(client, spec, prev_output, out_root, prev_version)]
            else:
                extra_kernels = [f"{spec.ref}/{prev_version}" if prev_version else spec.ref]
        folder = build_kernel(spec, cfg, out_root / "kernels", extra_kernel_sources=extra_kernels,
                              extra_dataset_sources=extra_datasets)
        try:
            pushed = client.push(folder)
        except InvalidSourcesError as e:
            refused = e.invalid.get("invalid_kernel_sources", [])
            if not (via == "auto" and extra_kernels and set(refused) <= set(extra_kernels) and prev_output):
                raise
            client.log(f"{spec.ref}: Kaggle refused attaching the kernel's own output ({', '.join(refused)}); "
                       "publishing it as a checkpoint dataset instead")
            via = "dataset"
            extra_datasets = [_publish_checkpoint(client, spec, prev_output, out_root, prev_version)]
            folder = build_kernel(spec, cfg, out_root / "kernels", extra_dataset_sources=extra_datasets)
            pushed = client.push(folder)
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        client.log(f"{spec.ref}: session {session}/{cap} pushed as version {pushed.version} {pushed.url}")
        _append_event(events, event="pushed", session=session, version=pushed.version,
                      kernel_sources=meta["kernel_sources"], dataset_sources=meta["dataset_sources"])
        result.versions.append(pushed.version)
        state, failure = client.wait(spec.ref, timeout=timeout, just_pushed=True)
        out = runs / f"session-{session:02d}-v{pushed.version or 'unknown'}"
        limited = fetch and via == "kernel"
        client.fetch_output(spec.ref, out, pattern=rf"(^|/)run_log\.jsonl$|{fetch}" if limited else None)
        result.output_dir = out
        if state != "complete":
            _append_event(events, event=state, session=session, version=pushed.version, failure=failure)
            raise KaggleError(f"{spec.ref} version {pushed.version} ended {state}"
                              + (f": {failure}" if failure else "") + f"; output and log in {out}")
        record = find_stage_record(out, key)
        if record is None:
            raise KaggleError(f"{spec.ref} version {pushed.version} finished without a '{key}' record in "
                              f"run_log.jsonl (output in {out}); the notebook must call append_stage_record")
        _append_event(events, event="finished", session=session, version=pushed.version,
                      record_status=record.get("status"))
        client.log(f"{spec.ref}: session {session} stage record says {record.get('status')!r}")
        if record.get("status") == "done":
            result.status = "done"
            return result
        if record.get("status") != "resume_needed":
            raise KaggleError(f"{spec.ref} version {pushed.version}: stage record status {record.get('status')!r}"
                              f"; see the log in {out}")
        prev_version, prev_output = pushed.version, out
    command = shlex.join(["python", "-m", "kaggle_kernels", "run", key, "--resume-from-version", str(prev_version),
                          *cfg.selecting_options()])
    raise ChainStopped(f"{spec.ref}: still resume_needed after {cap} session(s) (last version {prev_version}); "
                       f"continue with `{command}`")


def plan(cfg: SuiteConfig, keys: list[str], out_root: Path, parameters: dict[str, Any] | None = None) -> list[dict]:
    """What ``run`` would do, built but not pushed: one entry per stage with its folder, metadata and
    what later sessions attach (the dry run prints this)."""
    steps = []
    for key in keys:
        spec = cfg.kernel(key, parameters)
        folder = build_kernel(spec, cfg, out_root / "kernels")
        later = {"kernel": f"{spec.ref}/<previous version>", "dataset": f"{spec.owner}/{spec.slug[:45]}-ckpt",
                 "auto": f"{spec.ref}/<previous version> (else the checkpoint dataset)"}[spec.resume_via]
        steps.append({"stage": key, "folder": str(folder), "max_sessions": spec.max_sessions if spec.chain else 1,
                      "metadata": json.loads((folder / "kernel-metadata.json").read_text()),
                      "parameters": spec.parameters, "later_sessions_attach": later if spec.chain else None})
    return steps

