"""Command line: ``python -m kaggle_kernels list|build|package|push|status|output|run``; see docs/kaggle.md."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from .build import build_kernel, package_suite
from .chain import ChainStopped, ensure_code_dataset, plan, run_stage
from .client import Backoff, KaggleClient, KaggleError
from .config import OWNER_PLACEHOLDER, PROJECT_ROOT, ConfigError, SuiteConfig, load_config


def _param(text: str) -> tuple[str, Any]:
    """``name=value``; the value is read as JSON when it parses (numbers, true, null), else kept a string."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {e}") from e
    return text


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=None, help="kernels config (default: kaggle_kernels/kernels.toml)")
    common.add_argument("--owner", default=None, help="Kaggle user that owns the kernels (default: from the client)")
    common.add_argument("--test", action="store_true", help="use the test slug prefix and the test profile")
    common.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "kaggle",
                        help="folder for kernel folders, packaged datasets and downloaded outputs")
    common.add_argument("--suite-root", type=Path, default=PROJECT_ROOT,
                        help="checkout whose code is packaged into the code dataset (default: this one)")
    common.add_argument("--dry-run", action="store_true", help="build and print everything, call no API")
    common.add_argument("-p", "--param", action="append", type=_param, default=[], metavar="NAME=VALUE",
                        help="extra notebook parameter baked into the kernel (repeatable)")
    common.add_argument("--poll-seconds", type=float, default=15.0, help="first status poll interval (grows x1.5)")
    common.add_argument("--poll-max-seconds", type=float, default=300.0, help="longest status poll interval")
    common.add_argument("--retry-seconds", type=float, default=2.0, help="first retry delay after HTTP 5xx")
    common.add_argument("--attempts", type=int, default=5, help="tries per API call on HTTP 5xx / lost connection")
    common.add_argument("--timeout", type=float, default=13 * 3600, help="give up waiting for a session after this")

    ap = argparse.ArgumentParser(prog="python -m kaggle_kernels", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="list the configured kernels")
    p = sub.add_parser("build", parents=[common], help="write kernel folders (notebook + kernel-metadata.json)")
    p.add_argument("keys", nargs="*", help="kernel keys (default: every kernel whose notebook exists)")
    sub.add_parser("package", parents=[common], help="package the suite and create/version the code dataset")
    p = sub.add_parser("push", parents=[common], help="build and push kernels (runs them once)")
    p.add_argument("keys", nargs="+")
    p.add_argument("--no-package", action="store_true", help="do not upload the code dataset first")
    p = sub.add_parser("status", parents=[common], help="status of a kernel's latest session")
    p.add_argument("key")
    p.add_argument("--wait", action="store_true", help="poll until COMPLETE, ERROR or cancelled")
    p = sub.add_parser("output", parents=[common], help="download a kernel's output files and log")
    p.add_argument("key")
    p.add_argument("--dest", type=Path, default=None, help="default: <out>/outputs/<slug>")
    p.add_argument("--fetch", type=_regex, default=None, metavar="REGEX", help="download only output files matching REGEX")
    p = sub.add_parser("run", parents=[common], help="push, wait, fetch and resume stages until done")
    p.add_argument("keys", nargs="+", help="stages in order; each attaches the outputs of those it comes after")
    p.add_argument("--max-sessions", type=int, default=None, help="cap of sessions per stage (default: config)")
    p.add_argument("--resume-from-version", type=int, default=None,
                   help="first session attaches this earlier version of the (first) stage's own kernel")
    p.add_argument("--no-package", action="store_true", help="do not upload the code dataset first")
    p.add_argument("--fetch", type=_regex, default=None, metavar="REGEX",
                   help="with resume_via = kernel: download only run_log.jsonl and files matching REGEX per session")
    return ap


def _config(args: argparse.Namespace, client: KaggleClient | None) -> SuiteConfig:
    fallback = OWNER_PLACEHOLDER if args.dry_run or client is None else None
    try:
        return load_config(args.config, owner=args.owner, test=args.test, owner_fallback=fallback)
    except ConfigError:
        if client is None or args.owner:
            raise
        return load_config(args.config, test=args.test, owner_fallback=client.username or None)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    params = dict(args.param)
    offline = args.dry_run or args.command in ("list", "build")
    client = None if offline else KaggleClient(
        attempts=args.attempts, retry_backoff=Backoff(args.retry_seconds, 2.0, 60.0),
        poll_backoff=Backoff(args.poll_seconds, 1.5, args.poll_max_seconds),
        log=lambda m: print(m, file=sys.stderr, flush=True))
    try:
        cfg = _config(args, client)
        return _dispatch(args, cfg, client, params)
    except ChainStopped as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted: a pushed kernel keeps running on Kaggle; follow it with `status --wait` and `output`, "
              "or continue a chain with `run <stage> --resume-from-version <version>`", file=sys.stderr)
        return 130
    except (KaggleError, ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, cfg: SuiteConfig, client: KaggleClient | None, params: dict) -> int:
    out: Path = args.out
    if args.command == "list":
        for key in cfg.keys():
            spec = cfg.kernel(key)
            flags = ("chain " if spec.chain else "") + ("exists" if spec.notebook.is_file() else "no notebook yet")
            print(f"{key:28s} {spec.ref:50s} after={','.join(spec.after) or '-'} {flags}")
        return 0
    if args.command == "build":
        keys = args.keys or [k for k in cfg.keys() if cfg.kernel(k).notebook.is_file()]
        for key in keys:
            print(build_kernel(cfg.kernel(key, params), cfg, out / "kernels"))
        return 0
    if args.dry_run:
        return _dry_run(args, cfg, params)
    assert client is not None
    if args.command == "package":
        print(ensure_code_dataset(client, cfg, out, args.suite_root))
        return 0
    if args.command in ("push", "run"):
        # every kernel is built (and scanned for secrets) before anything is uploaded
        built = {key: build_kernel(cfg.kernel(key, params), cfg, out / "kernels") for key in args.keys}
        if cfg.suite["install"] == "dataset" and not args.no_package:
            ensure_code_dataset(client, cfg, out, args.suite_root)
    if args.command == "push":
        for key in args.keys:
            pushed = client.push(built[key])
            print(f"{cfg.kernel(key).ref} version {pushed.version} {pushed.url}")
        return 0
    if args.command == "status":
        ref = cfg.kernel(args.key).ref
        state, failure = client.wait(ref, timeout=args.timeout) if args.wait else client.status(ref)
        print(f"{ref} {state}" + (f" {failure}" if failure else ""))
        return 0 if state.lower() not in ("error", "cancelled", "cancel_acknowledged") else 2
    if args.command == "output":
        spec = cfg.kernel(args.key)
        files = client.fetch_output(spec.ref, args.dest or out / "outputs" / spec.slug, pattern=args.fetch)
        print("\n".join(map(str, files)))
        return 0
    if args.command == "run":
        finished: dict[str, int | None] = {}
        for i, key in enumerate(args.keys):
            result = run_stage(client, cfg, key, out, max_sessions=args.max_sessions, parameters=params,
                               resume_from_version=args.resume_from_version if i == 0 else None,
                               finished=finished, timeout=args.timeout, fetch=args.fetch)
            finished[key] = result.versions[-1] if result.versions else None
            print(f"{result.ref} {result.status} versions={result.versions} output={result.output_dir}")
        return 0
    raise AssertionError(args.command)


def _dry_run(args: argparse.Namespace, cfg: SuiteConfig, params: dict) -> int:
    """Print what package / push / run would send, building everything locally and calling no API."""
    out: Path = args.out
    report: dict[str, Any] = {"dry_run": True, "owner": cfg.owner}
    if args.command in ("package", "push", "run") and cfg.suite["install"] == "dataset":
        folder = package_suite(cfg, out / "datasets", args.suite_root)
        manifest = json.loads((folder / "tts_suite_manifest.json").read_text())
        report["code_dataset"] = {"ref": cfg.code_dataset_ref, "folder": str(folder), "sha256": manifest["sha256"],
                                  "lock_sha256": manifest["lock_sha256"], "files": len(manifest["files"])}
    elif args.command in ("package", "push", "run"):
        report["code_clone"] = {"repo_url": cfg.repo_url, "note": "install = 'internet': each kernel's set-up cell "
                                "clones this repository's default branch; nothing is uploaded"}
    if args.command in ("push", "run"):
        report["stages"] = plan(cfg, args.keys, out, params)
    elif args.command in ("status", "output"):
        report["would_query"] = cfg.kernel(args.key).ref
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
