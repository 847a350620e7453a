"""Audio codes encoded once with the model's DAC and cached on disk.

Training never touches waveforms: every utterance is turned into its (codebooks, frames) code matrix once,
stored under ``<cache_root>/<codec fingerprint>-<data fingerprint>/<split>.pt`` and reused by resumed runs
and by the distillation stage. The key covers the codec's config *and* weights and the dataset's content,
so codes are never reused with another codec or other audio. Each split is written atomically and marked
complete on its own, so an interrupted encode keeps the splits already done.
"""

from __future__ import annotations

import contextlib
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


def code_batches(split: Any, batch_size: int) -> list[list[int]]:
    """Row indices in length-sorted batches: the unit of work, identical however many processes encode (a row's
    codes depend on the batch it is padded in, so the batches are fixed before they are shared out)."""
    if "duration" in split.column_names:  # data prep's column: no need to decode everything twice
        lengths = [float(d) for d in split["duration"]]
    else:
        lengths = [len(split[i]["audio"]["array"]) / split[i]["audio"]["sampling_rate"] for i in range(len(split))]
    order = sorted(range(len(split)), key=lambda i: lengths[i])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


@torch.no_grad()
def _encode_batches(codec: torch.nn.Module, sr: int, split: Any, batches: list[list[int]], device: Any,
                    progress: Any) -> dict[int, torch.Tensor]:
    """{row: int16 (codebooks, frames)} for the rows of ``batches``; ``progress(n)`` after each batch of n rows."""
    hop = int(np.prod(codec.model.encoder_rates))
    dtype = next(codec.parameters()).dtype
    out = {}
    for idx in batches:
        waves = [_to_model_rate(split[i]["audio"], sr, f"row {i} ({split[i].get('id', '?')})") for i in idx]
        batch = torch.zeros(len(waves), 1, max(len(w) for w in waves))
        for row, w in enumerate(waves):
            batch[row, 0, :len(w)] = torch.from_numpy(w)
        codes = codec.encode(batch.to(device, dtype), sample_rate=sr).audio_codes[0]  # (B, K, T)
        for row, (i, w) in enumerate(zip(idx, waves, strict=True)):
            frames = max(1, -(-len(w) // hop))
            out[i] = codes[row, :, :frames].to("cpu", torch.int16)
        progress(len(idx))
    return out


_PROGRESS: Any = None  # a worker process's queue of finished row counts (set by _init_worker)


def _init_worker(queue: Any, threads: int) -> None:
    global _PROGRESS
    _PROGRESS = queue
    torch.set_num_threads(threads)


def _encode_shard(codec: tuple[type, Any, dict[str, torch.Tensor], torch.dtype], sr: int, split: Any,
                  batches: list[list[int]], device: str, out: str) -> str:
    """One worker's shard: rebuild the codec from (class, config, weights, dtype) on ``device`` (weight-normed
    modules cannot be pickled whole), encode and save {row: codes} to ``out`` (a file, not a pipe: shards of a
    large corpus are big); returns ``out``."""
    cls, config, state, dtype = codec
    model = cls(config)
    model.load_state_dict(state)
    codes = _encode_batches(model.to(device, dtype).eval(), sr, split, batches, device, _PROGRESS.put)
    torch.save(codes, out)
    return out


def worker_devices(device: str | torch.device, workers: int) -> list[str]:
    """One device per encoding process: ``workers`` 0 means one per visible GPU on CUDA (1 on CPU); on CUDA the
    processes are spread over the GPUs in turn."""
    device = torch.device(device)
    if device.type != "cuda":
        return ["cpu"] * max(1, workers)
    gpus = torch.cuda.device_count()
    return [f"cuda:{w % gpus}" for w in range(workers or gpus)]


def encode_split(bundle: ParlerBundle, split: Any, *, batch_size: int = 8, device: str | torch.device = "cpu",
                 workers: int = 1, desc: str = "codes") -> list[torch.Tensor]:
    """Encode every row's audio to an int16 tensor (codebooks, frames), in length-sorted batches; with more than one
    worker (``worker_devices``) the batches are dealt out to that many processes and merged back by row, so the
    codes are the same as one process's."""
    codec, sr = bundle.model.audio_encoder, bundle.sampling_rate
    batches = code_batches(split, batch_size)
    devices = worker_devices(device, workers)[:len(batches)]
    bar = tqdm(total=len(split), desc=desc + (f" ({len(devices)} processes)" if len(devices) > 1 else ""), leave=False)
    if len(devices) <= 1:
        found = _encode_batches(codec, sr, split, batches, device, bar.update)
    else:
        found = _encode_in_processes(codec, sr, split, batches, devices, bar)
    bar.close()
    return [found[i] for i in range(len(split))]


def _encode_in_processes(codec: torch.nn.Module, sr: int, split: Any, batches: list[list[int]], devices: list[str],
                         bar: Any) -> dict[int, torch.Tensor]:
    """Deal ``batches`` out round-robin to one spawned process per device; the bar counts rows as they finish."""
    import queue as queues
    import tempfile
    from concurrent.futures import ProcessPoolExecutor, wait

    ctx = torch.multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    progress = ctx.Queue()
    state = {k: v.detach().to("cpu") for k, v in codec.state_dict().items()}
    recipe = (type(codec), codec.config, state, next(codec.parameters()).dtype)  # each process builds its own copy
    threads = max(1, torch.get_num_threads() // len(devices))
    found: dict[int, torch.Tensor] = {}
    with tempfile.TemporaryDirectory(prefix="parler-codes-") as tmp, \
            ProcessPoolExecutor(len(devices), mp_context=ctx, initializer=_init_worker,
                                initargs=(progress, threads)) as pool:
        jobs = [pool.submit(_encode_shard, recipe, sr, split, batches[w::len(devices)], dev, f"{tmp}/{w}.pt")
                for w, dev in enumerate(devices)]
        pending = set(jobs)
        while pending:
            pending = wait(pending, timeout=0.2)[1]
            with contextlib.suppress(queues.Empty):
                while True:
                    bar.update(progress.get_nowait())
        for job in jobs:  # in worker order, each shard's rows by index: the merge does not depend on timing
            found.update(torch.load(job.result(), map_location="cpu", weights_only=True))
    return found


def load_or_encode(bundle: ParlerBundle, dataset: Any, cache_root: str | Path, *, splits: tuple[str, ...] | None = None,
                   batch_size: int = 8, device: str | torch.device = "cpu", workers: int = 1,
                   attached: tuple[str | Path, ...] = ()) -> dict[str, list[torch.Tensor]]:
    """Codes for each split of ``dataset``, read from the cache, copied from an ``attached`` cache root (e.g. an
    earlier Kaggle session's output that only encoded, read-only), or encoded now and cached.

    Returns ``{split: [LongTensor-compatible int16 (K, T) per row]}``; rows keep the dataset's order. ``workers``:
    encoding processes (:func:`encode_split`).
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
        codes = encode_split(bundle, dataset[name], batch_size=batch_size, device=device, workers=workers,
                             desc=f"DAC codes {name}")
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"version": CODES_VERSION, "codes": codes}, tmp)
        os.replace(tmp, path)
        result[name] = codes
    (folder / "info.json").write_text(json.dumps({
        "codebooks": bundle.num_codebooks, "frame_rate": bundle.frame_rate, "sampling_rate": bundle.sampling_rate,
        "splits": {k: len(v) for k, v in result.items()}, "source": bundle.source}, indent=1))
    return result
