"""Audio codes encoded once with the model's DAC and cached on disk.

Training never touches waveforms: every utterance is turned into its (codebooks, frames) code matrix once,
stored under ``<cache_root>/<codec fingerprint>-<data fingerprint>/<split>.pt`` and reused by resumed runs
and by the distillation stage. The key covers the codec's config *and* weights and the dataset's content,
so codes are never reused with another codec or other audio. Each split is written atomically and marked
complete on its own, so an interrupted encode keeps the splits already done.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .model import ParlerBundle, audio_encoder_fingerprint

CODES_VERSION = 1


def dataset_fingerprint(dataset: Any) -> str:
    """A short hash of a ``datasets.DatasetDict`` (or Dataset): the library's own content fingerprints per
    split plus row counts; stable for a dataset saved with ``save_to_disk`` and reloaded."""
    splits = dataset.items() if hasattr(dataset, "items") else [("data", dataset)]
    h = hashlib.sha256()
    for name, split in sorted(splits):
        h.update(f"{name}:{len(split)}:{split._fingerprint}".encode())
    return h.hexdigest()[:16]


def cache_dir(cache_root: str | Path, bundle: ParlerBundle, dataset: Any) -> Path:
    """The folder holding the codes for this codec and this dataset."""
    return Path(cache_root) / f"{audio_encoder_fingerprint(bundle.model)}-{dataset_fingerprint(dataset)}"


def _to_model_rate(audio: dict, target_sr: int, where: str) -> np.ndarray:
    array = np.asarray(audio["array"], dtype=np.float32)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{where}: audio must be a non-empty mono array, got shape {array.shape}. "
                         "Re-run data prep, which writes mono 44.1 kHz audio.")
    sr = int(audio["sampling_rate"])
    if sr != target_sr:
        import soxr

        array = soxr.resample(array, sr, target_sr).astype(np.float32)
    return array


@torch.no_grad()
def encode_split(bundle: ParlerBundle, split: Any, *, batch_size: int = 8, device: str | torch.device = "cpu",
                 desc: str = "codes") -> list[torch.Tensor]:
    """Encode every row's audio to an int16 tensor (codebooks, frames), in length-sorted batches."""
    codec = bundle.model.audio_encoder
    sr, hop = bundle.sampling_rate, int(np.prod(codec.model.encoder_rates))
    dtype = next(codec.parameters()).dtype
    if "duration" in split.column_names:  # data prep's column: no need to decode everything twice
        lengths = [float(d) for d in split["duration"]]
    else:
        lengths = [len(split[i]["audio"]["array"]) / split[i]["audio"]["sampling_rate"] for i in range(len(split))]
    order = sorted(range(len(split)), key=lambda i: lengths[i])
    out: list[torch.Tensor | None] = [None] * len(split)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        idx = order[start:start + batch_size]
        waves = [_to_model_rate(split[i]["audio"], sr, f"row {i} ({split[i].get('id', '?')})") for i in idx]
        batch = torch.zeros(len(waves), 1, max(len(w) for w in waves))
        for row, w in enumerate(waves):
            batch[row, 0, :len(w)] = torch.from_numpy(w)
        codes = codec.encode(batch.to(device, dtype), sample_rate=sr).audio_codes[0]  # (B, K, T)
        for row, (i, w) in enumerate(zip(idx, waves, strict=True)):
            frames = max(1, -(-len(w) // hop))
            out[i] = codes[row, :, :frames].to("cpu", torch.int16)
    return out  # type: ignore[return-value]


def load_or_encode(bundle: ParlerBundle, dataset: Any, cache_root: str | Path, *, splits: tuple[str, ...] | None = None,
                   batch_size: int = 8, device: str | torch.device = "cpu",
                   attached: tuple[str | Path, ...] = ()) -> dict[str, list[torch.Tensor]]:
    """Codes for each split of ``dataset``, read from the cache, copied from an ``attached`` cache root (e.g. an
    earlier Kaggle session's output that only encoded, read-only), or encoded now and cached.

    Returns ``{split: [LongTensor-compatible int16 (K, T) per row]}``; rows keep the dataset's order.
    """
    folder = cache_dir(cache_root, bundle, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    result = {}
    for name in splits or tuple(dataset.keys()):
        path = folder / f"{name}.pt"
        if not path.is_file():
            found = next((c for c in (cache_dir(r, bundle, dataset) / f"{name}.pt" for r in attached) if c.is_file()),
                         None)
            if found is not None:  # copied, so this workspace's output holds everything the next session needs
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                shutil.copyfile(found, tmp)
                os.replace(tmp, path)
        if path.is_file():
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored["version"] == CODES_VERSION and len(stored["codes"]) == len(dataset[name]):
                result[name] = stored["codes"]
                continue
        codes = encode_split(bundle, dataset[name], batch_size=batch_size, device=device, desc=f"DAC codes {name}")
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"version": CODES_VERSION, "codes": codes}, tmp)
        os.replace(tmp, path)
        result[name] = codes
    (folder / "info.json").write_text(json.dumps({
        "codebooks": bundle.num_codebooks, "frame_rate": bundle.frame_rate, "sampling_rate": bundle.sampling_rate,
        "splits": {k: len(v) for k, v in result.items()}, "source": bundle.source}, indent=1))
    return result
