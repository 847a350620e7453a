"""A thin, strict layer over the official kaggle client's Python API: the client is imported lazily (it
authenticates at import time), server-side failures that the client returns instead of raising (`.error`,
`invalid_*_sources`) become exceptions with the server's message, HTTP 5xx and dropped connections are
retried with backoff, and status polling / output download show progress."""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

TERMINAL = {"COMPLETE": "complete", "ERROR": "error", "CANCEL_ACKNOWLEDGED": "cancelled"}
INVALID_FIELDS = ("invalid_dataset_sources", "invalid_kernel_sources", "invalid_model_sources",
                  "invalid_competition_sources")


class KaggleError(RuntimeError):
    """A Kaggle API call that failed; the message carries the server's own words."""


class InvalidSourcesError(KaggleError):
    """A push whose data sources the server did not accept (``invalid`` maps field -> refs)."""

    def __init__(self, message: str, invalid: dict[str, list[str]]):
        super().__init__(message)
        self.invalid = invalid


@dataclass
class Backoff:
    """Delays growing by ``factor`` from ``first`` up to ``cap`` seconds."""

    first: float = 2.0
    factor: float = 2.0
    cap: float = 60.0

    def delays(self) -> Callable[[], float]:
        state = {"next": self.first}

        def step() -> float:
            now = state["next"]
            state["next"] = min(self.cap, now * self.factor)
            return now
        return step


@dataclass
class PushResult:
    """What Kaggle answered to an accepted push."""

    ref: str
    url: str
    version: int | None


def _server_message(exc: Exception) -> str:
    """The most useful text of an HTTP error: the JSON ``message`` the API sends, else the body."""
    response = getattr(exc, "response", None)
    if response is None:
        return str(exc)
    try:
        body = response.json()
        message = body.get("message") or body.get("error") or str(body)
    except ValueError:
        message = (response.text or "").strip()[:500] or str(exc)
    return f"HTTP {response.status_code}: {message}"


def _retriable(exc: Exception) -> bool:
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    response = getattr(exc, "response", None)
    return isinstance(exc, requests.HTTPError) and response is not None and (
        response.status_code >= 500 or response.status_code == 429)


class KaggleClient:
    """Push, watch and download kernels through the official client; one instance per process."""

    def __init__(self, *, attempts: int = 5, retry_backoff: Backoff | None = None,
                 poll_backoff: Backoff | None = None, log: Callable[[str], None] = print):
        self.attempts = attempts
        self.retry_backoff = retry_backoff or Backoff(2.0, 2.0, 60.0)
        self.poll_backoff = poll_backoff or Backoff(15.0, 1.5, 300.0)
        self.log = log
        self._api: Any = None

    @property
    def api(self) -> Any:
        """The authenticated ``KaggleApi``; imported on first use, its import-time help text swallowed."""
        if self._api is None:
            buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                    from kaggle.api.kaggle_api_extended import KaggleApi

                    api = KaggleApi()
                    api.authenticate()
            except SystemExit as e:
                raise KaggleError(
                    "no Kaggle credentials: set KAGGLE_API_TOKEN or KAGGLE_USERNAME/KAGGLE_KEY, or put kaggle.json "
                    "/ access_token in ~/.kaggle (or $KAGGLE_CONFIG_DIR); see docs/kaggle.md") from e
            except Exception as e:  # an access token is checked over the network
                raise KaggleError(f"authenticating the kaggle client failed: {_server_message(e)}") from e
            self._api = api
        return self._api

    @property
    def username(self) -> str:
        """The authenticated user (the default owner of the kernels)."""
        return self.api.get_config_value("username") or ""

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, retrying 5xx/429/connection errors; any failure becomes a KaggleError."""
        delay = self.retry_backoff.delays()
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(*args, **kwargs)
            except KaggleError:
                raise
            except Exception as e:  # the client raises requests errors and ValueError for bad input
                if _retriable(e) and attempt < self.attempts:
                    wait = delay()
                    self.log(f"{what}: {_server_message(e)}; retry {attempt}/{self.attempts - 1} in {wait:.1f}s")
                    time.sleep(wait)
                    continue
                raise KaggleError(f"{what} failed after {attempt} attempt(s): {_server_message(e)}") from e
        raise AssertionError("unreachable")

    def push(self, folder: Path) -> PushResult:
        """Push a kernel folder; ``.error`` or any ``invalid_*_sources`` in the response is a failure."""
        response = self.call(f"push {folder.name}", self.api.kernels_push, str(folder))
        if getattr(response, "error", None):
            raise KaggleError(f"push {folder.name} rejected by Kaggle: {response.error}")
        invalid = {f: list(getattr(response, f, None) or []) for f in INVALID_FIELDS}
        invalid = {f: refs for f, refs in invalid.items() if refs}
        if invalid:
            described = "; ".join(f"{f.replace('_', ' ')}: {', '.join(refs)}" for f, refs in invalid.items())
            raise InvalidSourcesError(f"push {folder.name}: Kaggle did not accept {described} (check the refs "
                                      "exist, are spelled owner/slug and are visible to you)", invalid)
        version = getattr(response, "version_number", None) or None
        return PushResult(ref=response.ref or "", url=response.url or "", version=version)

    def status(self, ref: str) -> tuple[str, str]:
        """(status name, failure message) of the kernel's latest session."""
        response = self.call(f"status {ref}", self.api.kernels_status, ref)
        status = response.status
        name = getattr(status, "name", None) or str(status).rsplit(".", 1)[-1]
        return name, getattr(response, "failure_message", "") or ""

    def wait(self, ref: str, *, timeout: float = 13 * 3600, just_pushed: bool = False) -> tuple[str, str]:
        """Poll with backoff until the session is COMPLETE, ERROR or cancelled (or ``timeout`` seconds pass);
        returns ('complete'|'error'|'cancelled', failure message). ``just_pushed`` waits one interval before
        the first poll, so the previous version's final status is not mistaken for the new one's."""
        start, last, delay = time.monotonic(), None, self.poll_backoff.delays()
        said = start
        if just_pushed:
            time.sleep(delay())
        while True:
            name, failure = self.status(ref)
            elapsed = time.monotonic() - start
            if name != last or time.monotonic() - said > 600:  # a line on each change, and every 10 min
                self.log(f"{ref}: {name} after {elapsed:.0f}s" + (f" ({failure})" if failure else ""))
                last, said = name, time.monotonic()
            if name in TERMINAL:
                return TERMINAL[name], failure
            if elapsed > timeout:
                raise KaggleError(f"{ref}: still {name} after {timeout:.0f}s; check it on kaggle.com, then run "
                                  "`python -m kaggle_kernels status` / `output` again")
            time.sleep(min(delay(), max(0.0, timeout - elapsed) + 0.01))

    def fetch_output(self, ref: str, dest: Path, *, pattern: str | None = None, page_size: int = 50,
                     max_pages: int = 10_000) -> list[Path]:
        """Download the output files (all pages; only names matching the regex ``pattern`` if given) and the
        log of the kernel's latest session into ``dest``; files are written atomically (``.part`` then
        rename) so a broken download never looks complete."""
        from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

        owner, slug = ref.split("/")[:2]
        dest.mkdir(parents=True, exist_ok=True)
        items, log_text, token = [], "", None
        for _ in range(max_pages):
            request = ApiListKernelSessionOutputRequest()
            request.user_name, request.kernel_slug, request.page_size = owner, slug, page_size
            if token:
                request.page_token = token
            response = self.call(f"list output of {ref}", self._list_output, request)
            items += list(response.files or [])
            log_text = log_text or (response.log or "")
            token = response.next_page_token
            if not token:
                break
        else:
            raise KaggleError(f"output of {ref}: more than {max_pages} pages; giving up")
        if pattern:
            items = [i for i in items if re.search(pattern, i.file_name)]
        written = []
        for item in tqdm(items, desc=f"output {slug}", unit="file", disable=not items):
            target = self._safe_target(dest, item.file_name)
            self.call(f"download {item.file_name}", self._download, item.url, target)
            written.append(target)
        if log_text:
            log_path = dest / f"{slug}.log"
            log_path.write_text(log_text, encoding="utf-8")
            written.append(log_path)
        self.log(f"{ref}: {len(items)} output file(s) and {'a' if log_text else 'no'} log in {dest}")
        return written

    def _list_output(self, request: Any) -> Any:
        with self.api.build_kaggle_client() as kaggle:
            return kaggle.kernels.kernels_api_client.list_kernel_session_output(request)

    @staticmethod
    def _safe_target(dest: Path, name: str) -> Path:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise KaggleError(f"refusing output file name {name!r}: it points outside the download folder")
        return dest.joinpath(*rel.parts)

    @staticmethod
    def _download(url: str, target: Path) -> None:
        import requests

        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        with requests.get(url, stream=True, timeout=(30, 300)) as r:
            r.raise_for_status()
            with part.open("wb") as f:
                for chunk in r.iter_content(1 << 20):
                    f.write(chunk)
        os.replace(part, target)

    def dataset_exists(self, ref: str) -> bool:
        """Whether the dataset exists (a 404 from the status call means no; other errors are raised)."""
        import requests

        try:
            self.call(f"dataset status {ref}", self.api.dataset_status, ref)
            return True
        except KaggleError as e:
            cause = e.__cause__
            if isinstance(cause, requests.HTTPError) and cause.response is not None and \
                    cause.response.status_code == 404:
                return False
            raise

    def upload_dataset(self, folder: Path, ref: str, notes: str, *, ready_timeout: float = 900) -> str:
        """Create the private dataset ``ref`` from ``folder`` or add a version to it, then wait until Kaggle
        has processed it so a kernel pushed next can attach it. Returns 'created' or 'versioned'."""
        with contextlib.redirect_stdout(io.StringIO()):
            if self.dataset_exists(ref):
                response = self.call(f"version dataset {ref}", self.api.dataset_create_version, str(folder), notes,
                                     quiet=True, dir_mode="zip")
                action = "versioned"
            else:
                response = self.call(f"create dataset {ref}", self.api.dataset_create_new, str(folder),
                                     public=False, quiet=True, dir_mode="zip")
                action = "created"
        if getattr(response, "error", None):
            raise KaggleError(f"{action[:-1]}ing dataset {ref} rejected by Kaggle: {response.error}")
        start, delay = time.monotonic(), self.poll_backoff.delays()
        while (state := self.call(f"dataset status {ref}", self.api.dataset_status, ref)) != "ready":
            if state in ("failed", "deleted"):
                raise KaggleError(f"dataset {ref}: Kaggle reports status {state!r} after upload")
            if time.monotonic() - start > ready_timeout:
                raise KaggleError(f"dataset {ref} still {state!r} after {ready_timeout:.0f}s")
            time.sleep(delay())
        self.log(f"dataset {ref} {action} and ready")
        return action
