"""The kernels config (kernels.toml): suite-wide defaults plus one table per notebook, resolved into one
:class:`KernelSpec` per kernel so build, push and run all read the same settings."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from nbhelpers.nb import REPO_URL

from .scan import find_in_text, redact

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = Path(__file__).with_name("kernels.toml")
OWNER_PLACEHOLDER = "your-kaggle-username"
_REPO_URL = re.compile(r"https://[^/\s]+/[^/\s]+/[^/\s]+?(\.git)?/?|git@[^:\s]+:[^/\s]+/[^/\s]+")
_SECRET_NAME = re.compile(r"(key|token|secret|password|passwd|credential)", re.I)
MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaP100")  # the GPU shapes kagglesdk documents (T4 x2, P100)


@dataclass(frozen=True)
class Rule:
    """What one config key must hold: ``ok`` tests a value, ``expect`` says it in words, ``example`` the fix."""

    ok: Any
    expect: str
    example: str


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _refs(pattern: str, what: str, example: str) -> Rule:
    rx = re.compile(pattern)
    return Rule(lambda v: isinstance(v, list) and all(isinstance(x, str) and rx.fullmatch(x) for x in v),
                f"a list of {what} strings", example)


def _choice(*allowed: str) -> Rule:
    return Rule(lambda v: v in allowed, "one of " + ", ".join(f'"{a}"' for a in allowed), f'"{allowed[0]}"')


_BOOL = Rule(lambda v: isinstance(v, bool), "true or false (no quotes)", "true")
_SESSIONS = Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                 "a whole number of sessions >= 1 (12 h each)", "6")
_NAME = Rule(_text, "a non-empty string", '"..."')
_SHARED = {"machine_shape": _choice(*MACHINE_SHAPES), "enable_gpu": _BOOL, "enable_internet": _BOOL,
           "is_private": _BOOL, "max_sessions": _SESSIONS, "resume_via": _choice("auto", "kernel", "dataset")}
SUITE_RULES: dict[str, Rule] = {
    "owner": Rule(lambda v: isinstance(v, str), 'your Kaggle user name, or "" for the client\'s own', '""'),
    "slug_prefix": _NAME, "test_slug_prefix": _NAME, "code_dataset": _NAME, "install": _choice("dataset", "internet"),
    "profile": _NAME, "test_profile": _NAME, "workspace": _NAME, **_SHARED}
KERNEL_RULES: dict[str, Rule] = {
    "notebook": Rule(_text, "the notebook's path relative to the project root", '"notebooks/01_data_prep.ipynb"'),
    "title": _NAME,
    "dataset_sources": _refs(r"[^/\s]+/[^/\s]+", "'owner/dataset'", '["owner/dataset"]'),
    "kernel_sources": _refs(r"[^/\s]+/[^/\s]+(/\d+)?", "'owner/kernel' or 'owner/kernel/version'", '["owner/kernel"]'),
    "model_sources": _refs(r"[^/\s]+(/[^/\s]+){3}(/\d+)?", "'owner/model/framework/variation[/version]'",
                           '["owner/model/pytorch/default"]'),
    "competition_sources": _refs(r"[^/\s]+", "competition-name", '["competition-name"]'),
    "after": Rule(lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                  "a list of kernel keys of this file", '["01_data_prep"]'),
    "chain": _BOOL, "parameters": Rule(lambda v: isinstance(v, dict), "a table of notebook parameters",
                                       "{ max_steps = 100 }"), **_SHARED}


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

    def selecting_options(self) -> list[str]:
        """The command-line options that select this set of kernels (config file, owner, test slugs): a command
        printed for later must carry them, or it would address other kernels (e.g. the real ones, not --test's)."""
        options = [] if self.path.resolve() == DEFAULT_CONFIG.resolve() else ["--config", str(self.path)]
        return options + ["--owner", self.owner] + (["--test"] if self.test else [])

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
        resume_via = entry.get("resume_via", s["resume_via"])
        datasets = list(entry.get("dataset_sources", []))
        if s["install"] == "dataset" and self.code_dataset_ref not in datasets:
            datasets.insert(0, self.code_dataset_ref)
        kernels = list(entry.get("kernel_sources", []))
        kernels += [f"{self.owner}/{slug_for(self.prefix, dep)}" for dep in entry.get("after", [])]
        title = entry.get("title") or slug.replace("-", " ")
        notebook = Path(entry["notebook"])
        return KernelSpec(
            key=key, notebook=notebook if notebook.is_absolute() else PROJECT_ROOT / notebook, owner=self.owner,
            slug=slug, title=title,
            enable_gpu=bool(entry.get("enable_gpu", s["enable_gpu"])),
            enable_internet=bool(entry.get("enable_internet", s["enable_internet"])),
            machine_shape=entry.get("machine_shape", s["machine_shape"]),
            is_private=bool(entry.get("is_private", s["is_private"])),
            dataset_sources=datasets, kernel_sources=kernels,
            model_sources=list(entry.get("model_sources", [])),
            competition_sources=list(entry.get("competition_sources", [])),
            after=list(entry.get("after", [])), chain=bool(entry.get("chain", False)),
            max_sessions=entry.get("max_sessions", s["max_sessions"]), resume_via=resume_via,
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


def _show(value: Any) -> str:
    """A value as TOML would spell it (near enough for a message)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _key_problems(table: str, entry: dict[str, Any], rules: dict[str, Rule], required: tuple[str, ...]) -> list[str]:
    """Unknown, missing and mistyped keys of one table, each with the fix."""
    problems = []
    for name, value in entry.items():
        rule = rules.get(name)
        if rule is None:
            near = get_close_matches(name, rules, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            problems.append(f"{table} has an unknown key {name!r}: {hint}known keys: {', '.join(rules)}")
        elif not rule.ok(value):
            fix = (f'{name} = ["{value}"] (a list, even for one)' if isinstance(value, str) and rule.example[:1] == "["
                   else f"e.g. {name} = {rule.example}")
            problems.append(f"{table} {name} = {_show(value)}: expected {rule.expect}; write {fix}")
    problems += [f"{table} is missing {name!r}; add e.g. {name} = {rules[name].example}" for name in required
                 if name not in entry]
    return problems


def _problems(raw: dict[str, Any], test: bool) -> list[str]:
    """Every problem of a parsed kernels config (all tables, all keys), each naming table, key and fix."""
    suite = raw.get("suite")
    if not isinstance(suite, dict):
        return ["[suite] table missing: copy it from kaggle_kernels/kernels.toml"]
    problems = [f"unknown top-level table or key {k!r}: the file has [suite] and [kernels.<notebook stem>] tables"
                for k in raw if k not in ("suite", "kernels")]
    if "repo_url" in suite:
        problems.append(f"[suite] repo_url is no longer read: the repository the set-up cell clones is set once, in "
                        f"nbhelpers/nb.py (REPO, now {REPO_URL}); delete repo_url from [suite] and change REPO there "
                        "for a fork, then run `python -m nbhelpers.nb render`")
        suite = {k: v for k, v in suite.items() if k != "repo_url"}
    problems += _key_problems("[suite]", suite, SUITE_RULES, tuple(SUITE_RULES))
    if problems:
        return problems  # the kernels' checks below read the suite's defaults
    if suite["install"] == "internet" and not _REPO_URL.fullmatch(REPO_URL):
        problems.append(f"[suite] install = 'internet' clones nbhelpers.nb.REPO_URL in the kernel, but it is "
                        f"{REPO_URL!r}; set REPO in nbhelpers/nb.py to your repository, or use install = 'dataset'")
    if suite["slug_prefix"] == suite["test_slug_prefix"]:
        problems.append("[suite] test_slug_prefix must differ from slug_prefix so tests never overwrite kernels")
    kernels = raw.get("kernels", {})
    if not isinstance(kernels, dict) or not kernels:
        return problems + ["no [kernels.<notebook stem>] table: add one per notebook, with notebook = \"...\""]
    prefix = suite["test_slug_prefix"] if test else suite["slug_prefix"]
    for key, entry in kernels.items():
        table = f"[kernels.{key}]"
        if not isinstance(entry, dict):
            problems.append(f"{table} must be a table ([kernels.{key}] with notebook = \"...\" under it)")
            continue
        mine = _key_problems(table, entry, KERNEL_RULES, ("notebook",))
        problems += mine
        if mine:
            continue
        problems += [f"{table} after names {dep!r}, which is not a kernel of this file (known: {', '.join(kernels)})"
                     for dep in entry.get("after", []) if dep not in kernels]
        slug = slug_for(prefix, key)
        title = entry.get("title") or slug.replace("-", " ")
        if slug_for("", title) != slug:  # the client only warns; Kaggle would file the kernel under another slug
            problems.append(f"{table} title {title!r} does not turn into the slug {slug!r}; use a title like "
                            f"{slug.replace('-', ' ')!r}")
        if not entry.get("enable_internet", suite["enable_internet"]):
            why = f"clones {REPO_URL} and " if suite["install"] == "internet" else ""
            problems.append(f"{table}: kernel {key!r} has enable_internet = false, but every notebook's set-up cell "
                            f"{why}builds its locked stacks with uv from PyPI; the kernel could not start. Set "
                            "enable_internet = true (it needs a phone-verified Kaggle account)")
        try:
            _refuse_secrets(entry.get("parameters", {}), f"{table} parameters")
        except ConfigError as e:
            problems.append(str(e))
    return problems


def load_config(path: str | os.PathLike | None = None, *, owner: str | None = None, test: bool = False,
                owner_fallback: str | None = None) -> SuiteConfig:
    """Read and check the config; the owner comes from ``owner``, the file, the client's credentials files,
    ``owner_fallback`` (a dry run uses a placeholder), in that order."""
    path = Path(path or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read kernels config {path}: {e}") from e
    problems = _problems(raw, test)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(redact(f"{path}: {len(problems)} problem(s) in the kernels config; fix them in the file:\n"
                                 f"{listed}"))
    suite, kernels = raw["suite"], raw.get("kernels", {})
    who = owner or suite["owner"] or _username_from_client_files() or owner_fallback
    if not who:
        raise ConfigError("no Kaggle owner: pass --owner, set [suite] owner, or configure the kaggle client's "
                          "credentials (KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json)")
    return SuiteConfig(path=path, suite=suite, kernels=kernels, owner=who, test=test)
