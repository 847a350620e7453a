"""Teacher vs student in one run, same inputs and device: parameters per component, size on disk, peak
memory and latency of generation, real-time factor, teacher-forced CE and code accuracy on the test split,
quality metrics from the benchmark stage when its module is importable, and an optional int8 (dynamic,
CPU) copy of the student measured the same way."""

from __future__ import annotations

import copy
import io
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..parler.data import Collator, Example
from ..parler.losses import decoder_inputs, valid_mask
from ..parler.model import ParlerBundle
from .losses import kd_loss
from .student import component_params


def folder_size(path: str | Path) -> int:
    """Bytes of every file under ``path`` (a model export)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def weights_size(model: torch.nn.Module) -> int:
    """Bytes of the serialised state dict (the on-disk weight size, also for a quantised copy)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


class _RssPeak:
    """Peak resident memory of this process above the level at entry, sampled every 5 ms (CPU runs)."""

    def __enter__(self) -> _RssPeak:
        import psutil

        self._proc = psutil.Process()
        self.base = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_generation(bundle: ParlerBundle, sentences: list[str], description: str, *, seed: int = 0,
                       frames: int | None = None, max_seconds: float = 5.0, warmup: int = 1,
                       repeats: int = 1, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Generate every sentence (fixed seed per sentence) and time it; ``frames`` forces an exact length so
    models with random weights are compared on equal work. Returns mean latency, audio seconds, real-time
    factor (latency / audio seconds), peak memory in MiB (CUDA allocator, or process RSS on CPU) and audio."""
    model = bundle.model.eval()
    device = next(model.decoder.parameters()).device
    k = bundle.num_codebooks
    if frames is not None:
        length = {"min_new_tokens": frames + k - 1, "max_new_tokens": frames + k - 1}
    else:
        length = {"max_length": max(2 * k, int(max_seconds * bundle.frame_rate))}
    desc = bundle.description_tokenizer([description], return_tensors="pt").to(device)

    def run(text: str, i: int) -> np.ndarray:
        prompt = bundle.prompt_tokenizer([text], return_tensors="pt").to(device)
        torch.manual_seed(seed + i)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None and device.type == "cuda"):
            audio = model.generate(input_ids=desc.input_ids, attention_mask=desc.attention_mask,
                                   prompt_input_ids=prompt.input_ids, prompt_attention_mask=prompt.attention_mask,
                                   do_sample=True, **length)
        return audio[0].float().cpu().numpy().reshape(-1)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for i in range(warmup):
            run(sentences[i % len(sentences)], i)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        latencies, audios = [], []
        with _RssPeak() as rss:
            for _ in range(repeats):
                for i, text in enumerate(tqdm(sentences, desc=f"generate {bundle.source}", leave=False)):
                    _sync(device)
                    t0 = time.perf_counter()
                    audio = run(text, i)
                    _sync(device)
                    latencies.append(time.perf_counter() - t0)
                    audios.append(audio)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20 if device.type == "cuda" else rss.mib
    seconds = [len(a) / bundle.sampling_rate for a in audios]
    return {"latency_s": float(np.mean(latencies)), "audio_s": float(np.mean(seconds)),
            "rtf": float(np.sum(latencies) / max(np.sum(seconds), 1e-9)), "peak_memory_mib": round(float(peak), 2),
            "device": str(device), "audios": audios[:len(sentences)]}


@torch.no_grad()
def teacher_forced_metrics(bundle: ParlerBundle, examples: list[Example], *, batch_size: int = 8) -> dict[str, float]:
    """Masked CE and top-1 code accuracy with teacher forcing on ``examples`` (the test split)."""
    model = bundle.model.eval()
    device = next(model.decoder.parameters()).device
    collate = Collator(bundle)
    ce_sum = correct = count = 0.0
    dec = model.config.decoder
    for i in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[i:i + batch_size]).items()}
        labels = batch.pop("labels")
        dii = decoder_inputs(model, labels)
        out = model(**batch, decoder_input_ids=dii, use_cache=False)
        mask = valid_mask(labels, dii, dec.bos_token_id, dec.eos_token_id)
        n = float(mask.sum())
        ce_sum += float(kd_loss(out.logits, None, labels, mask)["ce"]) * n
        b, t, kk = labels.shape
        pred = out.logits.reshape(b, kk, -1, out.logits.shape[-1])[:, :, -t:].argmax(-1).transpose(1, 2)
        correct += float(((pred == labels) & mask).sum())
        count += n
    return {"test_ce": ce_sum / max(count, 1), "code_accuracy": correct / max(count, 1), "test_positions": int(count)}


def quality_metrics(audios: list[np.ndarray], sr: int, texts: list[str], language: str = "kn") -> dict[str, Any]:
    """MOS estimate and ASR character error rate through ``nbhelpers.bench.quality`` when it is importable
    on this stack; otherwise says why (the 06 benchmark scores the saved WAVs on the main stack)."""
    try:
        from ..bench import quality  # type: ignore[attr-defined]
    except ImportError as err:
        return {"quality": f"unavailable here ({err}); score the saved WAVs with notebook 06"}
    out: dict[str, Any] = {}
    try:
        hyps = [quality.transcribe(a, sr, language) for a in audios]
        out["cer"] = float(np.mean([quality.cer(r, h) for r, h in zip(texts, hyps)]))
        scores = [quality.dnsmos(a, sr) for a in audios]
        out["mos"] = float(np.mean([s.get("ovrl", next(iter(s.values()))) if isinstance(s, dict) else s
                                    for s in scores]))
    except Exception as err:  # quality tools are optional here: report, never fail the comparison
        out["quality"] = f"failed: {type(err).__name__}: {err}"
    return out


def int8_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy of ``model`` with every Linear layer dynamically quantised to int8."""
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).to("cpu").eval(), {torch.nn.Linear},
                                                  dtype=torch.qint8)


def compare(systems: dict[str, ParlerBundle], *, sentences: list[str], description: str,
            test_examples: dict[str, list[Example]] | None = None, disk: dict[str, str | Path] | None = None,
            frames: int | None = None, max_seconds: float = 5.0, seed: int = 0, warmup: int = 1, repeats: int = 1,
            dtype: torch.dtype | None = None, quality: bool = True) -> dict[str, dict[str, Any]]:
    """One row of figures per system (e.g. ``teacher``, ``student``, ``student_int8``), measured in turn on the
    same sentences, description, seed and device; audio arrays are returned under ``audios``."""
    rows: dict[str, dict[str, Any]] = {}
    for name, bundle in systems.items():
        base = rows.get(name.removesuffix("_int8")) if name.endswith("_int8") else None
        if base is not None:  # quantised Linear weights are no longer parameters: count the float model's
            row: dict[str, Any] = {k: v for k, v in base.items() if k.startswith("params_")}
        else:
            row = {f"params_{k}": v for k, v in component_params(bundle.model).items()}
        row["weights_mib"] = round(weights_size(bundle.model) / 2**20, 3)
        if disk and name in disk:
            row["disk_mib"] = round(folder_size(disk[name]) / 2**20, 3)
        if test_examples and name in test_examples:
            row.update(teacher_forced_metrics(bundle, test_examples[name]))
        row.update(measure_generation(bundle, sentences, description, seed=seed, frames=frames,
                                      max_seconds=max_seconds, warmup=warmup, repeats=repeats, dtype=dtype))
        if quality:
            row.update(quality_metrics(row["audios"], bundle.sampling_rate, sentences))
        rows[name] = row
    if "teacher" in rows:
        t = rows["teacher"]
        for name, row in rows.items():
            if name != "teacher":
                row["params_total_ratio"] = row["params_total"] / t["params_total"]
                row["params_decoder_ratio"] = row["params_decoder"] / t["params_decoder"]
                if row["device"] == t["device"]:
                    row["speedup"] = t["latency_s"] / row["latency_s"]
    return rows
