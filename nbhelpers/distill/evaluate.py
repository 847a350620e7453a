"""Teacher vs student in one run, same inputs and device: parameters per component, size on disk, peak
memory and latency of generation, real-time factor, teacher-forced CE and code accuracy on the test split,
quality metrics from the benchmark stage when its module is importable, and an optional int8 (dynamic,
CPU) copy of the student measured the same way."""

from __future__ import annotations

import copy
import io
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


@torch.no_grad()
def measure_generation(bundle: ParlerBundle, sentences: list[str], description: str, *, name: str, seed: int = 0,
                       frames: int | None = None, max_seconds: float = 5.0, warmup: int = 1, repeats: int = 1,
                       dtype: torch.dtype | None = None, disk_paths: tuple = ()) -> dict[str, Any]:
    """Time generation of every sentence through the benchmark harness (``measure_synthesis``: warm-up,
    repeats, latency, real-time factor, peak RSS / CUDA memory, size). Each sentence has a fixed sampling seed;
    ``frames`` forces an exact length so models with random weights are compared on equal work. Returns the
    harness record plus ``audios`` (first pass)."""
    from ..bench.harness import measure_synthesis

    model = bundle.model.eval()
    device = next(model.decoder.parameters()).device
    k = bundle.num_codebooks
    if frames is not None:
        length = {"min_new_tokens": frames + k - 1, "max_new_tokens": frames + k - 1}
    else:
        length = {"max_length": max(2 * k, int(max_seconds * bundle.frame_rate))}
    desc = bundle.description_tokenizer([description], return_tensors="pt").to(device)
    index = {text: i for i, text in enumerate(sentences)}
    autocast = dtype is not None and device.type == "cuda"

    def synth(text: str) -> tuple[np.ndarray, int]:
        prompt = bundle.prompt_tokenizer([text], return_tensors="pt").to(device)
        torch.manual_seed(seed + index[text])
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            audio = model.generate(input_ids=desc.input_ids, attention_mask=desc.attention_mask,
                                   prompt_input_ids=prompt.input_ids, prompt_attention_mask=prompt.attention_mask,
                                   do_sample=True, **length)
        return audio[0].float().cpu().numpy().reshape(-1), bundle.sampling_rate

    collected: list = []
    before = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        rec = measure_synthesis(name, "parler-tts", synth, sentences, dtype=str(dtype or next(model.parameters()).dtype)
                                .removeprefix("torch."), device=str(device), warmup=warmup, repeats=repeats,
                                model=model, disk_paths=disk_paths, collect=collected, language="kn",
                                notes="fixed length" if frames else "until EOS", progress=False)
    rec["audios"] = [audio for _, audio, _ in collected]
    rec["cuda_allocated_before_mib"] = before
    return rec


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
    """ASR character error rate and DNSMOS through ``nbhelpers.bench.quality``; a metric whose tools are not
    installed on this stack (faster-whisper, speechmos live on the main stack) is reported as unavailable
    with the reason, and notebook 06 scores the saved WAVs there."""
    from ..bench import quality

    out: dict[str, Any] = {}
    for field, compute in (
            ("cer", lambda: float(np.mean([quality.cer(t, quality.transcribe(a, sr, language))
                                           for t, a in zip(texts, audios, strict=True)]))),
            ("dnsmos_ovrl", lambda: float(np.mean([quality.dnsmos(a, sr)["dnsmos_ovrl"] for a in audios])))):
        try:
            out[field] = compute()
        except ImportError as err:
            out[field] = None
            out.setdefault("quality_unavailable", {})[field] = f"not installed on this stack: {err.name}"
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
    same sentences, description, seed and device; audio arrays are returned under ``audios`` and the full
    harness record under ``record``."""
    rows: dict[str, dict[str, Any]] = {}
    for name, bundle in tqdm(systems.items(), desc="teacher vs student", leave=False):
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
        rec = measure_generation(bundle, sentences, description, name=name, seed=seed, frames=frames,
                                 max_seconds=max_seconds, warmup=warmup, repeats=repeats, dtype=dtype)
        row["audios"] = rec.pop("audios")
        before = rec.pop("cuda_allocated_before_mib")
        # own weights + the peak working memory of generation above what was resident before (the other
        # systems' weights stay loaded in a side-by-side run, so the raw process peak would not separate them)
        work = (rec["peak_cuda_mib"] - before) if before is not None else (rec["peak_rss_mib"] - rec["rss_before_mib"])
        row.update(device=rec["device"], latency_s=rec["latency_s_median"], rtf=rec["rtf"], audio_s=rec["audio_s"],
                   generation_work_mib=round(max(work, 0.0), 2), peak_memory_mib=round(row["weights_mib"] + max(work, 0.0), 2),
                   peak_memory_kind="CUDA allocator" if before is not None else "process RSS")
        if quality:
            row.update(quality_metrics(row["audios"], bundle.sampling_rate, sentences))
        row["record"] = rec
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


SUMMARY_FIELDS = ("params_total", "params_decoder", "params_text_encoder", "params_embed_prompts", "weights_mib",
                  "disk_mib", "peak_memory_mib", "latency_s", "rtf", "speedup", "test_ce", "code_accuracy", "cer",
                  "dnsmos_ovrl", "params_total_ratio", "params_decoder_ratio")


def summary_rows(comparison: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per system with the headline figures (the notebook's comparison table)."""
    return [{"system": name, "device": row.get("device"),
             **{f: row[f] for f in SUMMARY_FIELDS if row.get(f) is not None}} for name, row in comparison.items()]
