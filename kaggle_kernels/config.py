"""The kernels config (kernels.toml): suite-wide defaults plus one table per notebook, resolved into one
:class:`KernelSpec` per kernel so build, push and run all read the same settings."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbhelpers.nb import REPO_URL

from .scan import find_in_text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = Path(__file__).with_name("kernels.toml")
OWNER_PLACEHOLDER = "your-kaggle-username"
_REPO_URL = re.compile(r"https://[^/\s]+/[^/\s]+/[^/\s]+?(\.git)?/?|git@[^:\s]+:[^/\s]+/[^/\s]+")
_SECRET_NAME = re.compile(r"(key|token|secret|password|passwd|credential)", re.I)
_KERNEL_KEYS = {"notebook", "title", "enable_gpu", "enable_internet", "machine_shape", "is_private",
                "dataset_sources", "kernel_sources", "model_sources", "competition_sources", "after", "chain",
                "max_sessions", "parameters", "resume_via"}
_SUITE_KEYS = {"owner", "slug_prefix", "test_slug_prefix", "code_dataset", "install", "machine_shape", "enable_gpu",
               "enable_internet", "is_private", "profile", "test_profile", "workspace", "max_sessions", "resume_via"}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the entry and the fix."""


def slug_for(prefix: str, key: str) -> str:
    """Kaggle slug of a kernel: lower case, [a-z0-9-] only, e.g. ``tts-suite-02-parler-finetune``."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", f"{prefix}-{key}".lower())).strip("-")


@dataclass
class KernelSpec:
    """Everything needed to build and push one kernel."""

    key: str
    notebook: Path
    owner: str
    slug: str
    title: str
    enable_gpu: bool
    enable_internet: bool
    machine_shape: str
    is_private: bool
    dataset_sources: list[str]
    kernel_sources: list[str]
    model_sources: list[str]
    competition_sources: list[str]
    after: list[str]
    chain: bool
    max_sessions: int
    resume_via: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


@dataclass
class SuiteConfig:
    """The parsed config file; :meth:`kernel` resolves one entry into a :class:`KernelSpec`."""

    path: Path
    suite: dict[str, Any]
    kernels: dict[str, dict[str, Any]]
    owner: str
    test: bool = False

    @property
    def prefix(self) -> str:
        return self.suite["test_slug_prefix"] if self.test else self.suite["slug_prefix"]

    @property
    def code_dataset_ref(self) -> str:
        return f"{self.owner}/{self.suite['code_dataset']}"

    @property
    def repo_url(self) -> str | None:
        """What the set-up cell clones with ``install = "internet"``: ``nbhelpers.nb.REPO_URL``, set in one place."""
        return REPO_URL if self.suite["install"] == "internet" else None

    def keys(self) -> list[str]:
        return list(self.kernels)

    def kernel(self, key: str, extra_parameters: dict[str, Any] | None = None) -> KernelSpec:
        """The resolved spec of kernel ``key``: suite defaults, then the kernel's table, then the test switch."""
        if key not in self.kernels:
            raise ConfigError(f"{self.path}: no kernel {key!r}; known: {', '.join(self.kernels)}")
        entry, s = self.kernels[key], self.suite
        slug = slug_for(self.prefix, key)
        params = {"profile": s["test_profile"] if self.test else s["profile"], "workspace": s["workspace"]}
        params.update(entry.get("parameters", {}))
        params.update(extra_parameters or {})
        _refuse_secrets(params, f"[kernels.{key}] parameters / -p")
        for dep in entry.get("after", []):
            if dep not in self.kernels:
                raise ConfigError(f"{self.path}: kernel {key!r} runs after unknown kernel {dep!r}")
        resume_via = entry.get("resume_via", s["resume_via"])
        if resume_via not in ("kernel", "dataset", "auto"):
            raise ConfigError(f"{self.path}: [kernels.{key}] resume_via must be kernel, dataset or auto")
        datasets = list(entry.get("dataset_sources", []))
        if s["install"] == "dataset" and self.code_dataset_ref not in datasets:
            datasets.insert(0, self.code_dataset_ref)
        kernels = list(entry.get("kernel_sources", []))
        kernels += [f"{self.owner}/{slug_for(self.prefix, dep)}" for dep in entry.get("after", [])]
        title = entry.get("title") or slug.replace("-", " ")
        if slug_for("", title) != slug:  # the client only warns; Kaggle would file the kernel under another slug
            raise ConfigError(f"{self.path}: [kernels.{key}] title {title!r} does not turn into the slug {slug!r}; "
                              f"use a title like {slug.replace('-', ' ')!r}")
        enable_internet = bool(entry.get("enable_internet", s["enable_internet"]))
        if not enable_internet:
            why = f"clones {REPO_URL} and " if s["install"] == "internet" else ""
            raise ConfigError(f"{self.path}: kernel {key!r} has enable_internet = false, but every notebook's set-up "
                              f"cell {why}builds its locked stacks with uv from PyPI; the kernel could not start. "
                              "Set enable_internet = true (it needs a phone-verified Kaggle account)")
        notebook = Path(entry["notebook"])
        return KernelSpec(
            key=key, notebook=notebook if notebook.is_absolute() else PROJECT_ROOT / notebook, owner=self.owner,
            slug=slug, title=title,
            enable_gpu=bool(entry.get("enable_gpu", s["enable_gpu"])),
            enable_internet=enable_internet,
            machine_shape=entry.get("machine_shape", s["machine_shape"]),
            is_private=bool(entry.get("is_private", s["is_private"])),
            dataset_sources=datasets, kernel_sources=kernels,
            model_sources=list(entry.get("model_sources", [])),
            competition_sources=list(entry.get("competition_sources", [])),
            after=list(entry.get("after", [])), chain=bool(entry.get("chain", False)),
            max_sessions=int(entry.get("max_sessions", s["max_sessions"])), resume_via=resume_via,
            parameters=params)


def _refuse_secrets(params: dict[str, Any], where: str) -> None:
    """Parameters are baked into a notebook that Kaggle stores: refuse any whose name looks like a credential or
    whose value holds one (token shapes, or the value of a credential variable here), whatever its name."""
    for name, value in params.items():
        found = find_in_text(value if isinstance(value, str) else json.dumps(value, default=str))
        if _SECRET_NAME.search(name) or found:
            kind, excerpt = found[0] if found else ("", "")
            what = f" (its value holds {'' if kind.startswith('the ') else 'a '}{kind}: {excerpt})" if found else ""
            raise ConfigError(f"{where}: parameter {name!r} looks like a credential{what}; it would be stored in "
                              "the kernel's notebook. "
                              "Use Kaggle Secrets (kaggle_secrets.UserSecretsClient) instead")


def _username_from_client_files() -> str | None:
    """The user name from the client's own sources (env var or kaggle.json), without reading any key."""
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    cfg_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    try:
        return json.loads((cfg_dir / "kaggle.json").read_text()).get("username") or None
    except (OSError, ValueError):
        return None


def load_config(path: str | os.PathLike | None = None, *, owner: str | None = None, test: bool = False,
                owner_fallback: str | None = None) -> SuiteConfig:
    """Read and check the config; the owner comes from ``owner``, the file, the client's credentials files,
    ``owner_fallback`` (a dry run uses a placeholder), in that order."""
    path = Path(path or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read kernels config {path}: {e}") from e
    suite = raw.get("suite", {})
    if "repo_url" in suite:
        raise ConfigError(f"{path}: [suite] repo_url is no longer read: the repository the set-up cell clones is set "
                          f"once, in nbhelpers/nb.py (REPO, now {REPO_URL}); delete repo_url from [suite] and change "
                          "REPO there for a fork, then run `python -m nbhelpers.nb render`")
    missing = _SUITE_KEYS - set(suite)
    unknown = set(suite) - _SUITE_KEYS
    if missing or unknown:
        raise ConfigError(f"{path}: [suite] is missing {sorted(missing)} / has unknown {sorted(unknown)}")
    if suite["install"] not in ("dataset", "internet"):
        raise ConfigError(f"{path}: [suite] install must be 'dataset' or 'internet', got {suite['install']!r}")
    if suite["install"] == "internet" and not _REPO_URL.fullmatch(REPO_URL):
        raise ConfigError(f"{path}: [suite] install = 'internet' clones nbhelpers.nb.REPO_URL in the kernel, but it "
                          f"is {REPO_URL!r}; set REPO in nbhelpers/nb.py to your repository, or use install = 'dataset'")
    kernels = raw.get("kernels", {})
    for key, entry in kernels.items():
        bad = set(entry) - _KERNEL_KEYS
        if bad or "notebook" not in entry:
            raise ConfigError(f"{path}: [kernels.{key}] needs 'notebook'; unknown keys {sorted(bad)}")
    if suite["slug_prefix"] == suite["test_slug_prefix"]:
        raise ConfigError(f"{path}: test_slug_prefix must differ from slug_prefix so tests never overwrite kernels")
    who = owner or suite["owner"] or _username_from_client_files() or owner_fallback
    if not who:
        raise ConfigError("no Kaggle owner: pass --owner, set [suite] owner, or configure the kaggle client's "
                          "credentials (KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json)")
    return SuiteConfig(path=path, suite=suite, kernels=kernels, owner=who, test=test)
