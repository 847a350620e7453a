"""The teacher's outputs for each training example, computed once and reused in later epochs.

The teacher is frozen, in eval mode and deterministic, so what it returns for an example depends only on what
it reads for that example. An entry is therefore keyed by a digest of exactly that: the example's row of the
teacher's prompt ids and mask, description ids and mask, and labels, *as padded in its batch* (padding widths
move positions, e.g. left-padded prompts shift the audio positions). This key is a stable example id: it does
not depend on the sampler's order, on resume or on the process, and a changed dataset, tokenizer or batch
layout can never hit a stale entry. (Batches are fixed length-grouped groups whose order alone is shuffled, so
every epoch presents each example with the same padding.)

An entry holds only what the loss reads, on the positions it reads, stored compactly:

* ``logits``: the codebook logits at the valid positions (``valid_mask``), fp16 ``(n, V)``; or with
  ``kd_topk = k`` the top-k logits (fp16), their code ids (int16/int32) and the full ``logsumexp(logits / T)``
  (fp32) per position (:class:`nbhelpers.distill.losses.TopKLogits`);
* ``hidden``: the mapped teacher layers' outputs at the audio positions where any codebook is valid, fp16;
* ``encoder``: the description encoder's output at the description tokens, fp16 (only when the student's
  encoder is matched).

A tensor that would overflow fp16 is kept in fp32. The loss always reads the teacher through this storage
format once a cache is on, also for a batch it has just computed, so a run's losses do not depend on which
batches happened to be cached (a resumed run that rebuilds its cache gets the same losses as an uninterrupted
one); with the cache off, the loss reads the teacher's fp32 outputs (the same up to fp16 rounding).

``memory`` keeps entries in host RAM (rebuilt by a resumed session); ``disk`` writes each entry to its own file
(written under a temporary name, fsynced, renamed: a file with an entry's name is always complete) below a
manifest naming the teacher's weights and the cache settings; a folder without a matching manifest is deleted
and rebuilt, and an unreadable entry is recomputed. ``auto`` turns a memory cache on only when the estimated
size fits ``teacher_cache_max_gb``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .losses import TopKLogits

MODES = ("auto", "off", "memory", "disk")
FORMAT = 1
MANIFEST = "manifest.json"
ENTRIES = "entries"


@dataclass
class TeacherTargets:
    """What the distillation loss reads from the teacher for one batch (audio positions only)."""

    logits: torch.Tensor | TopKLogits  # (B, K, L, V) or its top-k view
    hidden: list[torch.Tensor]  # one (B, L, D_teacher) per mapped student layer
    encoder: torch.Tensor | None  # (B, S, d_encoder) raw description-encoder output, when matched


def _compact(x: torch.Tensor) -> torch.Tensor:
    """fp16 copy on the CPU, or fp32 where fp16 would overflow a finite value."""
    half = x.detach().to("cpu", torch.float16)
    if not torch.isfinite(half).all() and torch.isfinite(x).all():
        return x.detach().to("cpu", torch.float32)
    return half


def row_keys(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, input_ids: torch.Tensor,
             attention_mask: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """One digest per batch row of everything the teacher reads for it (teacher prompt ids, padded as batched)."""
    parts = [t.detach().to("cpu", torch.int64) for t in (prompt_ids, prompt_mask, input_ids, attention_mask, labels)]
    keys = []
    for b in range(labels.shape[0]):
        h = hashlib.blake2b(digest_size=20)
        for part in parts:
            row = part[b].contiguous()
            h.update(str(tuple(row.shape)).encode())
            h.update(row.numpy().tobytes())
        keys.append(h.hexdigest())
    return keys


def to_entries(targets: TeacherTargets, keys: list[str], mask: torch.Tensor, attention_mask: torch.Tensor, *,
               vocab: int) -> list[dict[str, Any]]:
    """Split a batch's teacher targets into compact per-example entries (valid positions only, on the CPU);
    ``mask`` is the loss's ``(B, L, K)`` valid-position mask."""
    positions = mask.any(-1)
    ids_dtype = torch.int16 if vocab <= 2 ** 15 else torch.int32
    entries = []
    for b, key in enumerate(keys):
        m = mask[b].T  # (K, L), the layout of the logits
        entry: dict[str, Any] = {"key": key}
        if isinstance(targets.logits, TopKLogits):
            t = targets.logits
            entry.update(topk_values=_compact(t.values[b][m]), topk_indices=t.indices[b][m].to("cpu", ids_dtype),
                         lse=t.lse[b][m].detach().to("cpu", torch.float32))
        else:
            entry["logits"] = _compact(targets.logits[b][m])
        if targets.hidden:
            entry["hidden"] = _compact(torch.stack([h[b][positions[b]] for h in targets.hidden]))
        if targets.encoder is not None:
            entry["encoder"] = _compact(targets.encoder[b][attention_mask[b].bool()])
        entries.append(entry)
    return entries


def from_entries(entries: list[dict[str, Any]], mask: torch.Tensor, attention_mask: torch.Tensor, *,
                 vocab: int, hidden_width: int, encoder_width: int) -> TeacherTargets:
    """Reassemble a batch's teacher targets (fp32, on ``mask``'s device, zeros where the loss does not look)."""
    b, length, k = mask.shape
    dev = mask.device
    positions = mask.any(-1)
    first = entries[0]
    if "topk_values" in first:
        top = first["topk_values"].shape[-1]
        values = torch.zeros(b, k, length, top, device=dev)
        indices = torch.zeros(b, k, length, top, dtype=torch.long, device=dev)
        lse = torch.zeros(b, k, length, device=dev)
        for i, e in enumerate(entries):
            m = mask[i].T
            values[i][m] = e["topk_values"].to(dev, torch.float32)
            indices[i][m] = e["topk_indices"].to(dev, torch.long)
            lse[i][m] = e["lse"].to(dev, torch.float32)
        logits: torch.Tensor | TopKLogits = TopKLogits(values, indices, lse)
    else:
        logits = torch.zeros(b, k, length, vocab, device=dev)
        for i, e in enumerate(entries):
            logits[i][mask[i].T] = e["logits"].to(dev, torch.float32)
    hidden = []
    if "hidden" in first:
        for layer in range(first["hidden"].shape[0]):
            h = torch.zeros(b, length, hidden_width, device=dev)
            for i, e in enumerate(entries):
                h[i][positions[i]] = e["hidden"][layer].to(dev, torch.float32)
            hidden.append(h)
    encoder = None
    if "encoder" in first:
        encoder = torch.zeros(b, attention_mask.shape[1], encoder_width, device=dev)
        for i, e in enumerate(entries):
            encoder[i][attention_mask[i].bool()] = e["encoder"].to(dev, torch.float32)
    return TeacherTargets(logits, hidden, encoder)


def entry_bytes(*, frames: int, description_tokens: int, codebooks: int, vocab: int, topk: int, hidden_layers: int,
                hidden_width: int, encoder_width: int) -> int:
    """Bytes of one example's entry: ``codebooks x (frames + 1)`` valid positions x (``vocab`` fp16 logits, or
    ``topk`` fp16 logits + ids + an fp32 logsumexp), plus ``frames + codebooks`` positions of each mapped hidden
    layer and the description tokens' encoder outputs in fp16."""
    positions = codebooks * (frames + 1)
    per_position = topk * (2 + (2 if vocab <= 2 ** 15 else 4)) + 4 if topk else vocab * 2
    return (positions * per_position + hidden_layers * (frames + codebooks) * hidden_width * 2
            + description_tokens * encoder_width * 2)


def decide(setting: str, estimate_bytes: int, max_gb: float) -> tuple[str, str]:
    """The cache mode to use and why: ``auto`` -> ``memory`` when the estimate fits ``max_gb``, else ``off``;
    ``memory`` / ``disk`` are refused with a clear error when the estimate exceeds the limit."""
    if setting not in MODES:
        raise ValueError(f"teacher_cache must be one of {MODES}, got {setting!r}")
    gb, fits = estimate_bytes / 1e9, estimate_bytes <= max_gb * 1e9
    if setting == "off":
        return "off", "teacher_cache = off: the teacher runs on every step"
    if setting == "auto":
        if fits:
            return "memory", f"auto: estimated {gb:.3g} GB fits teacher_cache_max_gb = {max_gb:g}"
        return "off", f"auto: estimated {gb:.3g} GB exceeds teacher_cache_max_gb = {max_gb:g}; the teacher runs every step"
    if not fits:
        raise ValueError(f"teacher_cache = {setting!r} needs about {gb:.3g} GB, more than teacher_cache_max_gb = "
                         f"{max_gb:g}: raise the limit, set kd_topk (e.g. 32) to store top-k logits, or use "
                         "teacher_cache = \"auto\" / \"off\"")
    return setting, f"{setting}: estimated {gb:.3g} GB within teacher_cache_max_gb = {max_gb:g}"


def model_fingerprint(model: torch.nn.Module) -> str:
    """Digest of a model's config and weights: a disk cache written by another teacher is never reused."""
    h = hashlib.blake2b(digest_size=20)
    config = getattr(model, "config", None)
    if config is not None:
        h.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class MemoryCache:
    """Entries in host RAM for this process's examples (a resumed session rebuilds them)."""

    mode = "memory"

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key`` or None."""
        return self.entries.get(key)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Keep ``entry`` under ``key``."""
        self.entries[key] = entry

    def __len__(self) -> int:
        return len(self.entries)


def _write_atomic(path: Path, write: Any) -> None:
    """``write(tmp_path)``, fsync, then rename to ``path``: a file under its final name is always complete."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    write(tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class DiskCache:
    """One file per entry under ``folder/entries/``, below a manifest of the teacher and cache settings;
    kept across sessions, so a resumed run reloads what the earlier session computed."""

    mode = "disk"

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any]):
        self.folder, self.fingerprint = Path(folder), {"format": FORMAT, **fingerprint}
        self.rebuilt = ""
        manifest = self.folder / MANIFEST
        try:
            found = json.loads(manifest.read_text())
        except (OSError, ValueError):
            found = None
        if found != self.fingerprint:
            if self.folder.exists():
                self.rebuilt = "no manifest (interrupted or foreign folder)" if found is None else \
                    "manifest of another teacher or other cache settings"
                shutil.rmtree(self.folder)
            (self.folder / ENTRIES).mkdir(parents=True)
            _write_atomic(manifest, lambda p: p.write_text(json.dumps(self.fingerprint, indent=1)))
        for stale in (self.folder / ENTRIES).glob(".tmp-*"):  # writes a killed session left unfinished
            stale.unlink(missing_ok=True)
        self.found_at_start = len(self)

    def _path(self, key: str) -> Path:
        return self.folder / ENTRIES / f"{key}.pt"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key``, or None when absent or unreadable (it is then recomputed and rewritten)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a damaged file: recompute rather than fail the run
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Write ``entry`` atomically under ``key``."""
        _write_atomic(self._path(key), lambda p: torch.save(entry, p))

    def __len__(self) -> int:
        return sum(1 for _ in (self.folder / ENTRIES).glob("*.pt"))


def frames_of(durations: list[float] | None, rows: int, frame_rate: float, max_frames: int) -> list[int]:
    """Codec frames per training row from the dataset's ``duration`` column; without durations every row counts
    as ``max_frames`` (an upper bound)."""
    if durations is None:
        return [max_frames] * rows
    return [math.ceil(float(d) * frame_rate) for d in durations]
