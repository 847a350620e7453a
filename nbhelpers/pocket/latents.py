"""Training items for Pocket TTS: each utterance's audio encoded once with the model's Mimi codec,
normalised with the model's latent statistics (``flow_lm.emb_mean`` / ``emb_std``) and cached on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

CACHE_VERSION = 1


@dataclass
class Item:
    """One utterance ready for training: token ids, normalised latents [T, D], speaker."""

    id: str
    text: str
    speaker: str
    tokens: torch.Tensor
    latents: torch.Tensor
    language: str = ""  # the code of its entry in the profile's ``languages`` ("" in a one-language run)

    @property
    def frames(self) -> int:
        return int(self.latents.shape[0])


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """A pocket manifest (JSON list of {audio_path, text, language, duration, ...}) with absolute audio paths;
    a clear error names the row and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pocket manifest {path} not found: run data prep (notebook 01) first")
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{path}: expected a non-empty JSON list of utterances")
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in ("audio_path", "text") if not row.get(k)]
        if missing:
            raise ValueError(f"{path} row {i}: missing {missing}; every row needs audio_path and text")
        audio = Path(row["audio_path"])
        audio = audio if audio.is_absolute() else path.parent / audio
        if not audio.is_file():
            raise FileNotFoundError(f"{path} row {i}: audio file {audio} does not exist (re-run data prep)")
        out.append({**row, "audio_path": str(audio), "id": row.get("id") or audio.stem,
                    "speaker": row.get("speaker") or "speaker"})
    return out


def load_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Mono float32 audio [1, samples] at ``sample_rate`` (resampled with soxr if needed)."""
    import soundfile as sf

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(1)
    if sr != sample_rate:
        import soxr

        audio = soxr.resample(audio, sr, sample_rate).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(audio))[None]


@torch.no_grad()
def encode_raw(tts_model, rows: list[dict[str, Any]], desc: str = "mimi encode") -> list[torch.Tensor]:
    """Un-normalised Mimi latents [T, D] of every row's audio (one utterance at a time: no padding), on the GPU
    when there is one (the codec goes back to where it was afterwards)."""
    mimi = tts_model.mimi.eval()
    home = next(mimi.parameters()).device
    device = torch.device("cuda") if torch.cuda.is_available() else home
    mimi.to(device)
    out = []
    for row in tqdm(rows, desc=desc):
        audio = load_audio(row["audio_path"], tts_model.config.mimi.sample_rate).to(device)
        out.append(mimi.encode_to_latent(audio[None]).float()[0].cpu())
    mimi.to(home)
    return out


def fingerprint(tts_model, rows: list[dict[str, Any]], stats: str) -> str:
    """Key of a latent cache: Mimi weights, the normalisation source and every row's audio file and text."""
    h = hashlib.sha256(f"v{CACHE_VERSION}:{stats}".encode())
    for name, tensor in sorted(tts_model.mimi.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if stats == "model":
        for buf in (tts_model.flow_lm.emb_mean, tts_model.flow_lm.emb_std):
            h.update(buf.detach().cpu().numpy().tobytes())
    for row in rows:
        st = Path(row["audio_path"]).stat()
        h.update(f"{row['audio_path']}|{st.st_size}|{st.st_mtime_ns}|{row['text']}".encode())
    return h.hexdigest()[:16]


def set_latent_statistics(tts_model, raw: list[torch.Tensor]) -> None:
    """Per-dimension mean and std of ``raw`` latents into the model's normalisation buffers (a random model
    has none; generation de-normalises with the same buffers, so they travel with every checkpoint)."""
    cat = torch.cat(raw, 0)
    flow = tts_model.flow_lm
    flow.emb_mean.copy_(cat.mean(0).to(flow.emb_mean))
    flow.emb_std.copy_(cat.std(0).clamp(min=1e-4).to(flow.emb_std))


def load_or_encode(tts_model, rows: list[dict[str, Any]], cache_dir: str | Path, *, stats: str = "model",
                   split: str = "train") -> tuple[list[torch.Tensor], Path]:
    """Normalised latents of ``rows``, from the cache when its key matches, else encoded and cached.

    ``stats="model"`` uses the model's statistics (released weights); ``"data"`` first sets them from these
    rows' latents (random-weight models) and the cache stores them so a reload restores the same buffers.
    """
    if stats not in ("model", "data"):
        raise ValueError(f"stats must be 'model' or 'data', got {stats!r}")
    key = fingerprint(tts_model, rows, stats)
    path = Path(cache_dir) / f"{split}-{key}.pt"
    flow = tts_model.flow_lm
    if path.is_file():
        cached = torch.load(path, map_location="cpu", weights_only=True)
        if stats == "data":
            flow.emb_mean.copy_(cached["emb_mean"])
            flow.emb_std.copy_(cached["emb_std"])
        return cached["latents"], path
    raw = encode_raw(tts_model, rows, desc=f"mimi encode ({split})")
    if stats == "data":
        set_latent_statistics(tts_model, raw)
    mean, std = flow.emb_mean.detach().cpu().float(), flow.emb_std.detach().cpu().float()
    latents = [(r - mean) / std for r in raw]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"latents": latents, "emb_mean": mean, "emb_std": std, "ids": [r["id"] for r in rows]}, tmp)
    tmp.replace(path)
    return latents, path


def build_items(tts_model, rows: list[dict[str, Any]], latents: list[torch.Tensor], *, max_frames: int,
                languages: list[str] | None = None) -> tuple[list[Item], list[str]]:
    """Items for training (text prepared by the package's own ``prepare_text_prompt``, as at generation time);
    utterances longer than ``max_frames`` are left out and named in the second list; ``languages`` gives each row's
    language code (default "")."""
    from pocket_tts.models.text_chunking import prepare_text_prompt

    tokenizer = tts_model.flow_lm.conditioner.tokenizer
    m = tts_model
    items, dropped = [], []
    for row, lat, lang in zip(rows, latents, languages or [""] * len(rows), strict=True):
        if lat.shape[0] > max_frames or lat.shape[0] < 2:
            dropped.append(row["id"])
            continue
        text, _ = prepare_text_prompt(row["text"], m.pad_with_spaces_for_short_inputs, m.remove_semicolons,
                                      m.append_terminal_punctuation, m.capitalize_first_letter, m.replace_characters)
        tokens = torch.tensor(tokenizer.encode(text), dtype=torch.long)  # the text exactly as generation sees it
        items.append(Item(row["id"], row["text"], str(row["speaker"]), tokens, lat, lang))
    return items, dropped
