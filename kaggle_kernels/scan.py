"""Secret scan of everything `kaggle_kernels` sends to Kaggle: token-shaped text (Hugging Face ``hf_...``,
Kaggle ``KGAT_...`` tokens, 32-hex Kaggle keys) and the values of the credential variables in this process's
environment, found by value, whatever the name around it. Findings name the file, the notebook cell or line,
and show a redacted excerpt: the secret itself is never printed."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Token shapes, found by value (a token under an innocent name is still a token).
TOKEN_SHAPES: dict[str, re.Pattern[str]] = {
    "Hugging Face token": re.compile(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}(?![A-Za-z0-9])"),
    "Kaggle API token": re.compile(r"(?<![A-Za-z0-9_])KGAT_[A-Za-z0-9]{20,}(?![A-Za-z0-9])"),
    "Kaggle API key (32 hex digits)": re.compile(r"(?<![0-9A-Fa-f])[0-9a-f]{32}(?![0-9A-Fa-f])"),
}
CREDENTIAL_VARIABLES = ("KAGGLE_KEY", "KAGGLE_API_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
FIX = ("remove it (a notebook reads HF_TOKEN from Kaggle Secrets: Add-ons > Secrets, "
       "kaggle_secrets.UserSecretsClient; the suite's set-up cell does this), and revoke the token if it was ever "
       "pushed or committed")
_EXCERPT = 40  # characters shown either side of a finding
_BINARY_PROBE = 8192


class SecretFoundError(ValueError):
    """Something about to be pushed holds a credential; the message lists where (redacted)."""


@dataclass(frozen=True)
class Finding:
    """One credential-shaped value: which file, where in it, what it looks like, and a redacted excerpt."""

    file: str
    where: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.file} {self.where}: {self.kind}: {self.excerpt}"


def _known_values() -> dict[str, str]:
    """Credential values of this process's environment (any shape), by variable name."""
    return {v: os.environ[v] for v in CREDENTIAL_VARIABLES if len(os.environ.get(v, "")) >= 8}


def _matches(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every credential in ``text``."""
    found = [(m.start(), m.end(), kind) for kind, rx in TOKEN_SHAPES.items() for m in rx.finditer(text)]
    for name, value in _known_values().items():
        start = text.find(value)
        while start >= 0:
            found.append((start, start + len(value), f"the value of ${name}"))
            start = text.find(value, start + 1)
    return sorted(found, key=lambda f: (f[0], -f[1]))  # the longest first where two start together


def redact(text: str) -> str:
    """``text`` with every credential replaced by its kind (``hf_***`` for a Hugging Face token)."""
    out, pos = [], 0
    for start, end, kind in _matches(text):
        if start < pos:
            continue
        shown = text[start:start + 5] if kind.startswith("Kaggle API token") else text[start:start + 3]
        out += [text[pos:start], f"{shown}***" if kind.endswith("token") else f"<{kind}>"]
        pos = end
    return "".join(out) + text[pos:]


def find_in_text(text: str) -> list[tuple[str, str]]:
    """(kind, redacted excerpt of its line) of each credential in ``text``; nothing when it holds none."""
    result = []
    for line in text.splitlines():
        spans = _matches(line)
        for start, end, kind in spans:
            lo, hi = max(0, start - _EXCERPT), min(len(line), end + _EXCERPT)
            for s, e, _ in spans:  # never cut a secret at the excerpt's edge: it would escape redaction
                lo = s if s < lo < e else lo
                hi = e if s < hi < e else hi
            result.append((kind, ("…" if lo else "") + redact(line[lo:hi]).strip() + ("…" if hi < len(line) else "")))
    return result


def _lines(text: str) -> Iterator[tuple[int, str]]:
    yield from enumerate(text.splitlines(), 1)


def _scan_notebook(name: str, text: str) -> list[Finding]:
    """Every cell (source, outputs, attachments, metadata) by its 1-based number, and the notebook metadata."""
    try:
        nb = json.loads(text)
        cells = nb.get("cells", [])
    except (ValueError, AttributeError):
        return _scan_text(name, text)
    found = []
    for i, cell in enumerate(cells, 1):
        kind = cell.get("cell_type", "cell")
        source = cell.get("source") or ""
        for n, line in _lines("".join(source) if isinstance(source, list) else str(source)):
            found += [Finding(name, f"cell {i} ({kind} source, line {n})", k, e) for k, e in find_in_text(line)]
        parts = [(f"output {j}", out) for j, out in enumerate(cell.get("outputs") or [], 1)]
        parts += [(part, cell[part]) for part in ("attachments", "metadata") if cell.get(part)]
        for part, value in parts:
            text = json.dumps(value, ensure_ascii=False).replace("\\n", "\n")  # one finding per output line
            found += [Finding(name, f"cell {i} ({kind} {part})", k, e) for k, e in find_in_text(text)]
    rest = {k: v for k, v in nb.items() if k != "cells"}
    found += [Finding(name, "notebook metadata", k, e) for k, e in find_in_text(json.dumps(rest, ensure_ascii=False))]
    return found


def _scan_text(name: str, text: str) -> list[Finding]:
    return [Finding(name, f"line {n}", k, e) for n, line in _lines(text) for k, e in find_in_text(line)]


def scan_bytes(name: str, data: bytes) -> list[Finding]:
    """Findings in one file's content: notebooks cell by cell, zip archives member by member, text line by
    line; other binary content (NUL bytes: checkpoints, audio) is skipped."""
    if data[:4] == b"PK\x03\x04":
        found = []
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for member in zf.namelist():
                    found += scan_bytes(f"{name}:{member}", zf.read(member))
            return found
        except zipfile.BadZipFile:
            pass
    if b"\0" in data[:_BINARY_PROBE]:
        return []
    text = data.decode("utf-8", errors="replace")
    return _scan_notebook(name, text) if name.endswith(".ipynb") else _scan_text(name, text)


def scan_folder(folder: Path) -> list[Finding]:
    """Findings in every file under ``folder`` (what the client uploads from it), names relative to it."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as f:
            if b"\0" in f.read(_BINARY_PROBE) and not zipfile.is_zipfile(path):
                continue  # binary content (a checkpoint, audio): not read whole
        found += scan_bytes(path.relative_to(folder).as_posix(), path.read_bytes())
    return found


def refuse_secrets(path: Path, what: str) -> None:
    """Raise :class:`SecretFoundError` listing every credential in ``path`` (a file, or a folder to upload),
    redacted, with the fix."""
    found = scan_folder(path) if path.is_dir() else scan_bytes(str(path), path.read_bytes())
    if found:
        shown = "\n".join(f"  {f}" for f in found[:20]) + (f"\n  ... and {len(found) - 20} more" if len(found) > 20
                                                             else "")
        raise SecretFoundError(f"refusing to push {what} ({path}): {len(found)} credential(s) would be stored on "
                               f"Kaggle:\n{shown}\nFix: {FIX}")
