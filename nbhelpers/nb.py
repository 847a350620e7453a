"""What a notebook cell calls: set-up, stages run as child processes in their locked stack, and display.

The kernel is the platform's (Kaggle, Colab, or the plain kernel ``make demo`` uses): this module imports only
the standard library, IPython (lazily) and the suite's light core, so nothing the kernel imported at start-up
is ever replaced. Heavy work happens in ``<stack venv>/bin/python -m nbhelpers.<stage> ...``; the cell streams its
progress, checks its exit status and shows what it wrote to the workspace.
"""

from __future__ import annotations

import html
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import stacks
from .env import detect_platform
from .paths import PROJECT_ROOT, workspace_root
from .records import read_records

# The repository the set-up cell clones when the code is neither attached nor checked out (the one place it is
# set: `python -m nbhelpers.nb render` writes it into every notebook's set-up cell, README and badges).
REPO = "tts-notebook-suite/tts-notebook-suite"
BRANCH = "main"
REPO_URL = f"https://github.com/{REPO}.git"

# Which stack each stage's command line runs on, and the notebook stem its stage record carries.
STAGE_STACK = {"environment": "main", "data": "main", "parler": "parler", "distill": "parler", "vits": "main", "kokoro": "main",
               "bench": "main", "pocket": "main", "baselines": "main"}
STAGE_RECORD = {"environment": "00_environment", "data": "01_data_prep", "parler": "02_parler_finetune", "distill": "03_parler_distill",
                "vits": "04_vits_bangla_finetune", "kokoro": "05_kokoro_synthesis", "bench": "06_benchmark",
                "pocket": "07_pocket_tts_finetune", "baselines": "08_baselines"}
# Commands that train with Accelerate and therefore use every visible GPU through `accelerate launch`.
MULTI_PROCESS = {("parler", "train"), ("distill", "run"), ("pocket", "train")}
SECRET_NAMES = ("HF_TOKEN",)


class StageFailed(RuntimeError):
    """A stage's child process failed; the message names the log to read and what was kept."""


@dataclass
class Session:
    platform: str
    code: Path
    stacks: dict[str, stacks.Stack] = field(default_factory=dict)
    gpus: list[str] = field(default_factory=list)
    drive_mounted: bool | None = None


_SESSION: Session | None = None
_SECRETS: dict[str, str] = {}  # read once from the platform's secret store; never printed or written


# ---------------------------------------------------------------------------------------------------- set-up
def visible_gpus() -> list[str]:
    """GPU names from ``nvidia-smi`` (no torch in the kernel), limited by CUDA_VISIBLE_DEVICES when set."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    names = [line.strip() for line in out.splitlines() if line.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        names = [n for i, n in enumerate(names) if str(i) in wanted]
    return names


def _read_secret(name: str, platform: str) -> str | None:
    """A secret from Kaggle Secrets, Colab userdata or the environment, in that order of the platform."""
    value = None
    try:
        if platform.startswith("kaggle"):
            from kaggle_secrets import UserSecretsClient  # type: ignore[import-not-found]

            value = UserSecretsClient().get_secret(name)
        elif platform == "colab":
            from google.colab import userdata  # type: ignore[import-not-found]

            value = userdata.get(name)
    except Exception:  # not attached / not granted: fall back to the environment
        value = None
    return value or os.environ.get(name) or None


def _mount_drive() -> bool:
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount("/content/drive")
    except Exception as err:  # no google.colab (replica), or the user declined
        _say(f"Google Drive could not be mounted ({type(err).__name__}: {err}).", level="warning")
    return Path("/content/drive/MyDrive").is_dir()


def _say(text: str, level: str = "info") -> None:
    """A one-line notice; warnings are shown as a coloured box in a notebook and prefixed on a terminal."""
    ip = _ipython()
    if ip is None or level == "info":
        print(("WARNING: " if level == "warning" else "") + text, flush=True)
        return
    from IPython.display import HTML, display

    display(HTML(f'<div style="border:2px solid #c60;background:#fff4e5;padding:6px 10px;margin:4px 0">'
                 f"<b>Warning:</b> {html.escape(text)}</div>"))


def _ensure_espeak(platform: str) -> None:
    import shutil

    if shutil.which("espeak-ng") or platform == "local":
        return
    print("installing espeak-ng with apt-get (a system tool; no Python package of the kernel changes)")
    subprocess.run(["apt-get", "install", "-y", "-q", "espeak-ng"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def setup(stacks_needed: Sequence[str] = ("main",)) -> Session:
    """The set-up cell: report the platform, mount Drive on Colab, build or reuse the stacks this notebook's
    stages run on, and read the Hugging Face token (kept in memory, handed only to child processes)."""
    global _SESSION
    start = time.monotonic()
    where = detect_platform()
    session = Session(where, PROJECT_ROOT, gpus=visible_gpus())
    print(f"platform: {where} | code: {PROJECT_ROOT} | GPUs: {', '.join(session.gpus) or 'none'}")
    if where == "colab":
        session.drive_mounted = _mount_drive()
        if not session.drive_mounted and not os.environ.get("TTS_WORKSPACE"):
            os.environ["TTS_WORKSPACE"] = "/content/tts-workspace"
            _say("Drive is NOT mounted: the workspace is /content/tts-workspace, which a runtime reset deletes "
                 "(checkpoints included). Mount Drive (run this cell again and allow access) to keep them.",
                 level="warning")
    _ensure_espeak(where)
    for name in stacks_needed:
        installed: list[str] = []

        def log(line: str, installed: list[str] = installed, name: str = name) -> None:
            if line.lstrip().startswith(("+ ", "- ", "~ ")):  # one line per package: counted, not listed
                installed.append(line)
            else:
                print(f"  {name}: {line}", flush=True)

        try:
            stack = stacks.ensure_stack(name, log=log)
        except stacks.StackError as err:
            _say(f"the {name} stack could not be built; see the message below", level="warning")
            raise stacks.StackError(str(err)) from None
        session.stacks[name] = stack
        print(stack.describe() + (f" ({len(installed)} packages installed)" if installed else ""), flush=True)
    for name in SECRET_NAMES:
        value = _read_secret(name, where)
        if value:
            _SECRETS[name] = value
    print(f"Hugging Face token: {'found (passed to the stages, never shown)' if 'HF_TOKEN' in _SECRETS else 'none'}"
          f" | set-up took {time.monotonic() - start:.1f} s")
    _SESSION = session
    return session


# ------------------------------------------------------------------------------------------- child processes
_BAR = re.compile(r"(\d+%\|)|(\|\s*\d+/\d*\s*\[)|(\d+(?:\.\d+)?[kMG]?(?:it| \w+)? \[\d+:\d\d)")


# Third-party output known to be harmless (banners, deprecation notices of libraries the stacks pin): kept in the
# stage's log, never shown in a cell. This is the one place such lines are filtered; anything else a child writes to
# stderr that looks like a warning or an error is shown under a collapsible "warnings" summary.
HARMLESS = tuple(re.compile(p) for p in (
    r"Flash attention 2 is not installed",  # parler-tts import banner: the stacks use SDPA attention
    r"site-packages/torchaudio/.*(UserWarning|deprecat)",  # torchaudio 2.8's notices about its 2.9 TorchCodec move
    r"^\s*s = torchaudio\.io\.StreamReader\(",  # ... and the source line Python prints under one of them
    r"^\s*warnings\.warn\($",  # the bare source line Python prints under a warning (the warning itself is shown)
    # coqui's TensorBoard figures of Bangla text (08): DejaVu has no Bengali glyphs; only the figure labels lack them
    r"tensorboard/_utils\.py:\d+: UserWarning: Glyph \d+ .* missing from font",
    r"^\s*canvas\.draw\(\)$",  # ... and the source line Python prints under each
    r"^\s*\| > duration_error: ",  # coqui's FastSpeech2 training-log metric (08), not an error
))
_WARNING = re.compile(r"warn|error|exception|traceback|deprecat", re.IGNORECASE)


def is_harmless(line: str) -> bool:
    """Whether a child's output line is a known-harmless third-party banner or warning (see :data:`HARMLESS`)."""
    return any(p.search(line) for p in HARMLESS)


@dataclass
class StageRun:
    stage: str
    command: str
    returncode: int
    seconds: float
    log: Path
    record: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        return self.record.get("status") if self.record else None


def stage_argv(stage: str, command: str, args: Sequence[str] = (), *, processes: int = 1,
                stack: str | None = None) -> list[str]:
    """The child's command line: the stack's Python running the stage CLI, through ``accelerate launch
    --multi_gpu`` when ``processes`` > 1. Without CUDA the same launcher starts gloo processes (the trainers build
    their Accelerator with ``cpu=True`` there); ``--cpu`` would make accelerate start one process only."""
    python = str(stacks.stack_python(stack or STAGE_STACK[stage]))
    if processes > 1:
        return [python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                "--num_machines", "1", "--dynamo_backend", "no", "--mixed_precision", "no",
                "-m", f"nbhelpers.{stage}", command, *args]
    return [python, "-m", f"nbhelpers.{stage}", command, *args]


def kernel_start_time() -> float:
    """When this (kernel) process started, from /proc: the session's start for the stages' time budgets."""
    try:
        ticks = int(Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def child_env(workspace: Path) -> dict[str, str]:
    """The kernel's environment minus what would leak the kernel's packages or plotting backend into the child,
    plus the code path, the workspace and the secrets."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "MPLBACKEND", "PYTHONPATH", "JPY_PARENT_PID")}
    env.update({"PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg",
                "TTS_WORKSPACE": str(workspace), "TQDM_MININTERVAL": "1", **_SECRETS})
    env.setdefault("TTS_SESSION_START", f"{kernel_start_time():.0f}")
    return env


def _redact(text: str) -> str:
    for value in _SECRETS.values():
        text = text.replace(value, "***")
    return text


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _Bars:
    """One live line per progress bar of the child (keyed by its description), updated in place."""

    def __init__(self) -> None:
        self.handles: dict[str, Any] = {}
        self.shown: dict[str, float] = {}
        self.last: dict[str, str] = {}

    def update(self, text: str, final: bool = False) -> None:
        text = _ANSI.sub("", text).strip()  # tqdm's cursor moves for nested bars
        key = text.split(":")[0].strip() if ":" in text.split("|")[0] else ""
        self.last[key] = text
        now = time.monotonic()
        if not final and now - self.shown.get(key, 0.0) < 0.5:
            return
        self.shown[key] = now
        ip = _ipython()
        if ip is None:
            if final or now - self.shown.get(key + "#print", 0.0) > 10:
                self.shown[key + "#print"] = now
                print(text, flush=True)
            return
        from IPython.display import display, update_display

        if key not in self.handles:
            self.handles[key] = f"bar-{id(self)}-{len(self.handles)}"
            display({"text/plain": text}, raw=True, display_id=self.handles[key])
        else:
            update_display({"text/plain": text}, raw=True, display_id=self.handles[key])

    def flush(self) -> None:
        for text in list(self.last.values()):
            self.update(text, final=True)


def _reader(stream: Any, name: str, out: queue.Queue) -> None:
    """Split a child's byte stream on newlines and carriage returns (tqdm redraws with \\r)."""
    buffer = b""
    while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
        buffer += chunk
        *parts, buffer = re.split(rb"[\r\n]", buffer)
        for part in parts:
            out.put((name, part.decode("utf-8", "replace")))
    if buffer:
        out.put((name, buffer.decode("utf-8", "replace")))
    out.put((name, None))


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = f"signal {-code}"
        hint = (" (out of memory, or the platform's time limit)" if sig == "SIGKILL" else "")
        return f"killed by {sig}{hint}"
    return f"exit status {code}"


def run(stage: str, command: str, *args: str, profile: str = "auto", workspace: str | os.PathLike | None = None,
        settings: dict[str, Any] | None = None, processes: int | None = None, stack: str | None = None,
        quiet: bool = False) -> StageRun:
    """Run ``python -m nbhelpers.<stage> <command> --profile ... --workspace ... [--set k=v] *args`` in the stage's
    stack as a child process; stream one live line per progress bar and the stage's own printed lines; keep the
    whole output in ``<workspace>/logs/``; raise :class:`StageFailed` with the log's path on a non-zero exit.

    ``processes``: None uses every visible GPU for the Accelerate trainers (2 on Kaggle's T4 x2), 1 otherwise.
    ``stack``: run in another stack than the stage's own (notebook 00 reports both)."""
    if stage not in STAGE_STACK:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGE_STACK)}")
    ws = workspace_root(workspace)
    gpus = visible_gpus()
    if processes is None:
        processes = len(gpus) if (stage, command) in MULTI_PROCESS and len(gpus) > 1 else 1
    cli = ["--profile", profile, "--workspace", str(ws)]
    for key, value in (settings or {}).items():
        if value is not None:
            cli += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    stack = stack or STAGE_STACK[stage]
    argv = stage_argv(stage, command, [*cli, *args], processes=processes, stack=stack)
    logs = ws / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{time.strftime('%Y%m%d-%H%M%S')}-{stage}-{command}-{stack}.log"
    started, since = time.monotonic(), time.time()
    if _SESSION is not None and _SESSION.drive_mounted is False and not str(ws).startswith("/content/drive/"):
        _say(f"Google Drive is not mounted: this stage writes to {ws}, which a Colab runtime reset deletes "
             "(checkpoints included). Mount Drive (run the set-up cell again and allow access) to keep it.",
             level="warning")
    if not quiet:
        how = f" as {processes} processes (accelerate launch)" if processes > 1 else ""
        print(f"running {stage} {command}{how} in the {stack} stack; full log: {log_path}", flush=True)
    proc = subprocess.Popen(argv, env={**child_env(ws), "TTS_STAGE_LOG": str(log_path)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=str(PROJECT_ROOT), start_new_session=True)
    lines: queue.Queue = queue.Queue()
    for stream, name in ((proc.stdout, "out"), (proc.stderr, "err")):
        threading.Thread(target=_reader, args=(stream, name, lines), daemon=True).start()
    bars, warnings, tail, open_streams, hidden = _Bars(), [], [], 2, 0
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv)}\n")
        try:
            while open_streams:
                name, text = lines.get()
                if text is None:
                    open_streams -= 1
                    continue
                text = _redact(text)
                if not text.strip():
                    continue
                if _BAR.search(text):
                    if not quiet:
                        bars.update(text.strip())
                    continue
                log.write(f"[{name}] {text}\n")
                tail.append(text)
                del tail[:-25]
                if is_harmless(text):
                    hidden += 1
                elif name == "out":
                    if not quiet:
                        print(text, flush=True)
                elif _WARNING.search(text):
                    warnings.append(text.strip())
            code = proc.wait()
        except KeyboardInterrupt:
            _stop(proc)
            raise
        bars.flush()
        log.write(f"[exit] {code}\n")
    record = latest_record(STAGE_RECORD[stage], ws, since=since)
    result = StageRun(stage, command, code, round(time.monotonic() - started, 1), log_path, record, warnings)
    if warnings and not quiet:
        show_warnings(warnings, hidden, log_path)
    if code != 0:
        raise StageFailed(f"{stage} {command} failed: {_describe_exit(code)} after {result.seconds:.0f} s.\n"
                          f"Last lines:\n  " + "\n  ".join(tail[-15:]) + f"\nFull log: {log_path}\n"
                          "Everything already in the workspace is kept (earlier outputs, the newest complete "
                          "checkpoint): fix the cause and run the cell again to continue.")
    return result


def show_warnings(lines: Sequence[str], hidden: int, log: Path) -> None:
    """A stage's warning lines, each distinct line once with its count, folded under one "warnings" summary line
    (a plain list outside a notebook); ``hidden`` known-harmless lines are counted, not shown."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    items = [f"{line}" + (f"  (x{n})" if n > 1 else "") for line, n in counts.items()]
    summary = (f"warnings: {len(lines)} line(s) from the stage" + (f", {hidden} known-harmless hidden" if hidden else "")
               + f"; full log: {log}")
    if _ipython() is None:
        print(summary + "".join(f"\n  {item}" for item in items), flush=True)
        return
    from IPython.display import HTML, display

    body = html.escape("\n".join(items))
    display(HTML(f'<details class="stage-warnings"><summary>{html.escape(summary)}</summary>'
                 f'<pre style="white-space:pre-wrap">{body}</pre></details>'))


def _stop(proc: subprocess.Popen) -> None:
    """Interrupt the child's whole process group (accelerate's workers too); kill it if it does not stop."""
    for sig, wait in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


# ------------------------------------------------------------------------------------------ workspace reading
def latest_record(stage_record: str, workspace: str | os.PathLike | None = None, *,
                  since: float | None = None) -> dict[str, Any] | None:
    """The newest record of a stage in ``run_log.jsonl`` (written after ``since``, a UNIX time, when given)."""
    found = None
    for rec in read_records(workspace_root(workspace) / "run_log.jsonl", stage_record):
        if since is not None:
            try:
                when = time.mktime(time.strptime(rec.get("time", "")[:19], "%Y-%m-%dT%H:%M:%S"))
            except ValueError:
                continue
            if when < int(since):
                continue
        found = rec
    return found


# ---------------------------------------------------------------------------------------------------- display
def _ipython() -> Any:
    """The running IPython shell, or None (plain Python, a child process)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def _fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, nested mappings as ``key value; ...`` (never a raw dict)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "; ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return "" if value is None else str(value)


def profile(metrics: dict[str, Any]) -> None:
    """The operators a profiled training run spent its time in (a trainer run with ``profile_steps > 0``: each
    ``[<model>_]profile_table`` of the record), and where the Chrome trace is; nothing when it was not profiled."""
    for key, path in metrics.items():
        if not key.endswith("profile_table") or not path or not Path(path).is_file():
            continue
        summary, model = read_json(path), key.removesuffix("profile_table").rstrip("_")
        table(summary["top"], title=f"where {summary['calls']} profiled {model + ' ' if model else ''}training steps "
                                    f"spent their time ({summary['time_basis']}, top operators)")
        markdown(f"Full timeline: `{summary['trace']}` (open it in https://ui.perfetto.dev or chrome://tracing).")


def table(rows: Iterable[dict[str, Any]] | dict[str, Any], columns: Sequence[str] | None = None,
          title: str | None = None, transpose: bool = False) -> None:
    """Show rows (dicts) as a table with every column, text wrapped rather than cut; a single dict is shown as
    a two-column key/value table. ``transpose``: one column per row (named by its first column's value) and one
    row per column, for a few rows with many columns."""
    if isinstance(rows, dict):
        rows, columns = [{"key": k, "value": v} for k, v in rows.items()], ["key", "value"]
    rows = list(rows)
    if not rows:
        markdown(f"**{title or 'table'}**: none")
        return
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))
    if transpose:
        names = [_fmt(r.get(columns[0])) for r in rows]
        rows = [{columns[0]: c, **{n: r.get(c) for n, r in zip(names, rows, strict=True)}} for c in columns[1:]]
        columns = [columns[0], *names]
    if _ipython() is None:
        if title:
            print(title)
        print(" | ".join(columns))
        for r in rows:
            print(" | ".join(_fmt(r.get(c)) for c in columns))
        return
    from IPython.display import HTML, display

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f'<td style="white-space:normal;text-align:left">{html.escape(_fmt(r.get(c)))}'
                                    "</td>" for c in columns) + "</tr>" for r in rows)
    caption = f"<caption style='text-align:left'><b>{html.escape(title)}</b></caption>" if title else ""
    display(HTML(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))


def _show_file(path: str | os.PathLike, caption: str | None, kind: str) -> None:
    """Show a file a stage wrote with IPython's ``Audio`` or ``Image`` (bytes embedded: no numpy in the kernel)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: did the stage that writes it finish?")
    if _ipython() is None:
        print(f"{caption or ''} {path}")
        return
    from IPython import display as ipd

    if caption:
        ipd.display(ipd.Markdown(caption))
    ipd.display(getattr(ipd, kind)(filename=str(path)))


MIN_AUDIO_SECONDS = 1.0


def wav_seconds(path: str | os.PathLike) -> float | None:
    """The duration of a WAV file from its header (standard library only), or None when it is not a PCM WAV."""
    import wave

    try:
        with wave.open(str(path)) as w:
            return w.getnframes() / w.getframerate()
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None


def audio(path: str | os.PathLike, caption: str | None = None) -> None:
    """An audio player for a WAV written by a stage; a clip under a second (a random model that stops at once)
    gets a sentence saying so instead of a player with nothing to hear."""
    seconds = wav_seconds(path) if Path(path).is_file() else None
    if seconds is not None and seconds < MIN_AUDIO_SECONDS:
        markdown(f"{caption + ': ' if caption else ''}*only {seconds:.2f} s of audio, nothing to hear: the model "
                 f"ended its output almost at once (expected of random or barely trained weights)*; file `{path}`")
        return
    _show_file(path, caption, "Audio")


def image(path: str | os.PathLike, caption: str | None = None) -> None:
    """A PNG/JPEG written by a stage (plots are drawn in the child; the kernel only shows them)."""
    _show_file(path, caption, "Image")


def markdown(text: str) -> None:
    if _ipython() is None:
        print(text)
        return
    from IPython.display import Markdown, display

    display(Markdown(text))


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------- reference vs model output
# How each stage speaks one text from the command line, and which of data prep's exports its recordings come from.
SPEAK = {"parler": ("speak", "parler"), "vits": ("synth", "ljspeech"), "pocket": ("speak", "pocket"),
         "baselines": ("synth", "ljspeech")}


def test_item(dataset: str | os.PathLike, workspace: str | os.PathLike | None = None,
              export: str | None = None) -> dict[str, Any]:
    """The first held-out (test split) utterance of a prepared dataset (a name, or a path inside its folder):
    its text, voice description and recording (from ``export``'s files: parler | ljspeech | pocket)."""
    from .paths import Workspace, find_artifact

    given = Path(dataset)
    folder = next((p for p in (given, *given.parents) if (p / "manifest.jsonl").is_file()), None)
    manifest = (folder / "manifest.jsonl") if folder else find_artifact(
        f"data/{dataset}/manifest.jsonl", Workspace(workspace), required=True,
        hint="Run notebook 01 (data prep) for this dataset first, or attach its output as a Kaggle input.")
    for line in manifest.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("split") == "test":
            audio = row.get("files", {}).get(export, row["audio_path"]) if export else row["audio_path"]
            return {"id": row["id"], "text": row["text"], "description": row.get("text_description", ""),
                    "recording": manifest.parent / audio}
    raise ValueError(f"{manifest}: no row of the test split; prepare the dataset with a test share above 0 "
                     "(data profile's split fractions) and run notebook 01 again")


def compare(text: str, recording: str | os.PathLike | None, outputs: Sequence[tuple[str, str | os.PathLike]]) -> None:
    """One text, its real recording and each model's synthesis of it, a player each, labelled."""
    markdown(f"**{text}**")
    if recording:
        audio(recording, "real recording (held-out test split, never trained on)")
    for label, wav in outputs:
        audio(wav, label)


def samples(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Play a trainer's ``samples.jsonl`` (:mod:`nbhelpers.samples`), grouped by text: the real recording first
    when the text has one, then each clip labelled with the model's state and its length; returns the rows."""
    from .samples import read_samples

    rows = read_samples(path)
    for text in dict.fromkeys(r["text"] for r in rows):
        group = [r for r in rows if r["text"] == text]
        about = group[0].get("description")
        markdown(f"**{text}**" + (f" | *{about}*" if about else ""))
        if group[0].get("recording"):
            audio(group[0]["recording"], "real recording (held-out test split, never trained on)")
        for row in group:
            audio(row["path"], f"{row['model_state']} ({row['seconds']:.2f} s)")
    return rows


def speak_test_item(stage: str, dataset: str | os.PathLike, state: str, *args: str, profile: str = "auto",
                    workspace: str | os.PathLike | None = None) -> None:
    """Have the ``stage`` model (``state``: "random weights", "N steps fine-tuned", ...) speak the text of the
    dataset's first held-out utterance into ``<workspace>/<stage>/compare/<id>.wav`` and show it beside that
    utterance's real recording."""
    command, export = SPEAK[stage]
    item = test_item(dataset, workspace, export)
    wav = workspace_root(workspace) / stage / "compare" / f"{item['id']}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    text = [item["text"]] if stage == "pocket" else ["--text", item["text"]]
    voice = ["--description", item["description"]] if stage == "parler" and item["description"] else []
    run(stage, command, *args, *text, *voice, "--out", str(wav), profile=profile, workspace=workspace, quiet=True)
    compare(item["text"], item["recording"], [(f"the model reading it: {state}", wav)])


# ----------------------------------------------------------------------------------------- try-it forms
def try_it(fields: dict[str, str | Sequence[str]], action: Callable[..., None], *, button: str = "Speak") -> Any:
    """An interactive form: a text box per string field (a wide one past 80 characters), a drop-down per list
    field (first option selected) and a button calling ``action(**values)``, its output shown under the form
    (a failed stage's message included). Uses only what ipywidgets 7 (Colab) and 8 (Kaggle) share. Headless
    (papermill, Kaggle batch runs), where nobody can click, it prints the form's fields instead; returns None."""
    from .env import is_headless

    if is_headless() or _ipython() is None:
        markdown("*Try it (an interactive form when the notebook runs in Jupyter, Colab or Kaggle): "
                 + "; ".join(f"{name} = {_fmt(value[0] if isinstance(value, (list, tuple)) else value)}"
                             for name, value in fields.items()) + "*")
        return None
    import ipywidgets as widgets
    from IPython.display import display

    wide = widgets.Layout(width="90%")
    inputs = {name: (widgets.Dropdown(options=list(value), value=value[0], description=name)
                     if isinstance(value, (list, tuple)) else
                     (widgets.Textarea if len(value) > 80 else widgets.Text)(value=value, description=name, layout=wide))
              for name, value in fields.items()}
    press, out = widgets.Button(description=button), widgets.Output()

    def clicked(_: Any) -> None:
        with out:
            out.clear_output()
            try:
                action(**{name: box.value for name, box in inputs.items()})
            except StageFailed as err:
                print(err)

    press.on_click(clicked)
    form = widgets.VBox([*inputs.values(), press, out])
    display(form)
    return form


# ------------------------------------------------------------------------------------------ streamed speech
def follow_chunks(folder: str | os.PathLike, running: Callable[[], bool], poll: float = 0.05) -> Iterable[Path]:
    """The chunk WAVs a child process writes into ``folder`` (``chunk_0000.wav``, ``chunk_0001.wav`` ..., each
    renamed into place when complete), in order, as each appears; ends once ``running()`` is false and no next
    chunk is there."""
    folder, index = Path(folder), 0
    while True:
        path = folder / f"chunk_{index:04d}.wav"
        if path.is_file():
            yield path
            index += 1
        elif running():
            time.sleep(poll)
        elif not path.is_file():  # stopped: one last look, for a chunk written just before the end
            return


def stream_player(chunks: Iterable[str | os.PathLike], *, clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Play WAV chunks while they are still being generated: in Jupyter, Colab or Kaggle an autoplaying
    ``ipywidgets.Audio`` (the API ipywidgets 7 and 8 share) shows each chunk as soon as it has arrived and the one
    before has played, then the players are removed (show the whole clip after). Headless (papermill) nobody
    listens, so the chunks are only counted. Returns chunks, audio seconds and seconds to the first chunk."""
    from .env import is_headless

    started, due, shown, audio_s, first = clock(), None, 0, 0.0, None
    live = not is_headless() and _ipython() is not None
    box = None
    if live:
        import ipywidgets as widgets
        from IPython.display import display

        box = widgets.VBox([])
        display(box)
    for path in chunks:
        first = round(clock() - started, 3) if first is None else first
        seconds = wav_seconds(path) or 0.0
        if box is not None:
            if due is not None and clock() < due:
                sleep(due - clock())  # the previous chunk is still playing
            box.children = (widgets.Audio(value=Path(path).read_bytes(), format="wav", autoplay=True, loop=False),)
            due = clock() + seconds
        shown += 1
        audio_s += seconds
    if box is not None:
        if due is not None and clock() < due:
            sleep(due - clock())
        box.close()
    return {"chunks": shown, "audio_seconds": round(audio_s, 3), "first_chunk_seconds": first}


def speak_streamed(stage: str, command: str, *args: str, stream_dir: str | os.PathLike, **run_kwargs: Any
                   ) -> dict[str, Any]:
    """Run ``python -m nbhelpers.<stage> <command> *args --stream-dir <stream_dir>`` (see :func:`run`) and play its
    audio chunks while it generates them (:func:`stream_player`); a failure of the stage is raised after."""
    folder = Path(stream_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("chunk_*.wav"):  # a previous sentence's chunks must not play first
        old.unlink()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            run(stage, command, *args, "--stream-dir", str(folder), **{"quiet": True, **run_kwargs})
        except BaseException as err:  # noqa: BLE001 - raised in the caller's thread below
            failure.append(err)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    played = stream_player(follow_chunks(folder, worker.is_alive))
    worker.join()
    if failure:
        raise failure[0]
    return played


# ------------------------------------------------------------------------------------------- set-up rendering
SETUP_TAG = "setup"


def setup_cell_source(stacks_needed: Sequence[str]) -> str:
    """The first code cell of every notebook: find the code, then :func:`setup` (same text in all notebooks
    except the stacks; ``python -m nbhelpers.nb render`` writes it, a test checks it)."""
    return f'''# Set-up: find the suite's code (local checkout, attached Kaggle dataset, or a clone), then build or reuse its
# locked Python stacks beside the kernel. The kernel's own packages are never changed; stages run as child processes.
import os, subprocess, sys, zipfile
from pathlib import Path
REPO_URL = "{REPO_URL}"  # set in nbhelpers/nb.py (REPO); `python -m nbhelpers.nb render` writes it here

def find_suite_code() -> Path:
    inputs, home = Path(os.environ.get("TTS_KAGGLE_INPUT", "/kaggle/input")), Path.home() / "tts-suite"
    near = [Path(os.environ.get("TTS_SUITE_CODE") or "."), Path.cwd(), Path.cwd().parent, home]
    attached = [p.parents[1] for d in range(1, 5) for p in sorted(inputs.glob("*/" * d + "nbhelpers/nb.py"))]
    for root in near + attached:
        if (root / "nbhelpers" / "nb.py").is_file():
            return root.resolve()
    archive = next((p for d in range(1, 5) for p in sorted(inputs.glob("*/" * d + "tts_suite.zip"))), None)
    if archive:
        zipfile.ZipFile(archive).extractall(home)
        return home
    done = subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(home)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the suite's code was not found and `git clone {{REPO_URL}}` failed:\\n{{done.stderr}}\\n"
                           "Attach the tts-suite-code dataset (Kaggle: Add Input) or turn the internet on.")
    return home

sys.path.insert(0, str(find_suite_code()))
from nbhelpers import nb
session = nb.setup({tuple(stacks_needed)!r})'''


def badges(notebook: str) -> str:
    """The "Open in Colab" / "Open in Kaggle" links of one notebook."""
    colab = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{notebook}"
    kaggle = f"https://kaggle.com/kernels/welcome?src=https://github.com/{REPO}/blob/{BRANCH}/notebooks/{notebook}"
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle})")


# Which stacks each notebook's stages run on (00 builds both, so a new session pays the build up front).
NOTEBOOK_STACKS = {"00_environment": ("main", "parler"), "01_data_prep": ("main",), "02_parler_finetune": ("parler",),
                   "03_parler_distill": ("parler",), "04_vits_bangla_finetune": ("main",),
                   "05_kokoro_synthesis": ("main",), "06_benchmark": ("main",), "07_pocket_tts_finetune": ("main",),
                   "08_baselines": ("main",)}
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


OPENING_FILE = "opening.toml"
OPENING_START = ("<!-- opening box: written by `python -m nbhelpers.nb render` from notebooks/opening.toml; "
                 "edit it there -->")
OPENING_END = "<!-- end of opening box -->"
OPENING_ROWS = (("what", "What it does"), ("inputs", "What it needs"), ("hardware", "Hardware"),
                ("smoke_time", "Time here (smoke profile)"), ("t4_time", "Time on a T4 (real profile)"),
                ("disk", "Disk it writes"), ("result", "What you have at the end"))


def load_opening(notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, Any]:
    """The opening-box table of every notebook (``notebooks/opening.toml``); a notebook or row missing there is
    an error naming the file and the key to add."""
    import tomllib

    path = notebook_dir / OPENING_FILE
    with path.open("rb") as f:
        boxes = tomllib.load(f)
    for notebook in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        missing = [key for key, _ in OPENING_ROWS if not str(boxes.get(notebook.stem, {}).get(key, "")).strip()]
        if missing:
            raise ValueError(f"{path}: [\"{notebook.stem}\"] lacks {', '.join(missing)}: add them (one line each)")
    return boxes


def opening_box(stem: str, boxes: dict[str, Any]) -> list[str]:
    """The Markdown lines of one notebook's opening box: a two-column table framed by the render markers."""
    box, measured = boxes[stem], boxes.get("measured", {})

    def cell(text: str) -> str:
        return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")

    rows = []
    for key, label in OPENING_ROWS:
        value = box[key]
        if key == "smoke_time":
            value = f"{value}, measured by {measured.get('run', 'make demo')} on {measured.get('machine', 'CPU')}"
        rows.append(f"| **{label}** | {cell(value)} |")
    return [OPENING_START, "", "| At a glance | |", "|:--|:--|", *rows, "", OPENING_END]


def _with_opening(text: list[str], box: list[str]) -> list[str]:
    """``text`` (the first Markdown cell's lines, badges on line 3) with ``box`` in place of an earlier box, or
    inserted after the badge line."""
    if OPENING_START in text and OPENING_END in text:
        start, end = text.index(OPENING_START), text.index(OPENING_END)
        return text[:start] + box + text[end + 1:]
    return text[:3] + ["", *box] + text[3:]


def render_notebook(nb: dict[str, Any], stem: str, boxes: dict[str, Any] | None = None) -> dict[str, Any]:
    """``nb`` with its set-up cell (the first code cell, tagged ``setup``), badge line (second line of the
    first Markdown cell), opening box (from ``boxes``, default ``notebooks/opening.toml``) and the platforms'
    plain ``python3`` kernelspec rendered from this module."""
    boxes = boxes if boxes is not None else load_opening()
    cells = nb["cells"]
    source = setup_cell_source(NOTEBOOK_STACKS[stem])
    code = [c for c in cells if c["cell_type"] == "code"]
    setup_cells = [c for c in code if SETUP_TAG in c.get("metadata", {}).get("tags", [])]
    lines = source.splitlines(keepends=True)
    if setup_cells:
        setup_cells[0]["source"] = lines
    else:
        setup_cells = [{"cell_type": "code", "execution_count": None, "id": f"setup-{stem[:2]}",
                        "metadata": {"tags": [SETUP_TAG]}, "outputs": [], "source": lines}]
        first_code = cells.index(code[0]) if code else len(cells)
        cells.insert(first_code, setup_cells[0])
    # the set-up code starts folded in JupyterLab (and on Colab, as a form): the opening box is the first screen
    setup_cells[0]["metadata"].update({"jupyter": {"source_hidden": True}, "cellView": "form"})
    intro = cells[0]
    text = "".join(intro["source"]).split("\n")
    badge = badges(f"{stem}.ipynb")
    if len(text) > 2 and "Open in Colab" in text[2]:
        text[2] = badge
    else:
        text[1:1] = ["", badge]
    text = _with_opening(text, opening_box(stem, boxes))
    intro["source"] = [line + "\n" for line in text[:-1]] + [text[-1]]
    nb["metadata"]["kernelspec"] = dict(KERNELSPEC)
    return nb


def render_all(write: bool, notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Render every numbered notebook; returns the names that differed (and writes them when ``write``)."""
    changed, boxes = [], load_opening(notebook_dir)
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        before = path.read_text(encoding="utf-8")
        after = json.dumps(render_notebook(json.loads(before), path.stem, boxes), indent=1, ensure_ascii=False) + "\n"
        if after != before:
            changed.append(path.name)
            if write:
                tmp = path.with_suffix(".ipynb.tmp")
                tmp.write_text(after, encoding="utf-8")
                tmp.replace(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nbhelpers.nb", description="notebook set-up cells and links")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("render", help="rewrite every notebook's set-up cell, badge line and opening box (nbhelpers/nb.py, "
                                  "notebooks/opening.toml)")
    sub.add_parser("check", help="exit 1 when a notebook's set-up cell, badges or opening box differ from the rendered ones")
    args = parser.parse_args(argv)
    changed = render_all(write=args.command == "render")
    for name in changed:
        print(("rendered " if args.command == "render" else "out of date: ") + name)
    return 1 if changed and args.command == "check" else 0


if __name__ == "__main__":
    sys.exit(main())
