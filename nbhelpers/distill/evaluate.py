"""Teacher vs student in one run, same inputs and device: parameters per component, size on disk, peak
memory and latency of generation, real-time factor, teacher-forced CE and code accuracy on the test split,
the benchmark stage's quality metrics (Whisper CER, DNSMOS, MCD-DTW to the test split's recordings) with the
student's ratios to the teacher, and an optional int8 (dynamic, CPU) copy of the student measured the same way."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..measure.asr import OFFLINE_BASE
from ..measure.harness import set_metric
from ..measure.quality import DNSMOS_FIELDS
from ..parler.data import Collator, Example
from ..parler.losses import decoder_inputs, valid_mask
from ..parler.model import ParlerBundle
from ..parler.synth import ParlerSynth, SynthSettings, describe, fastest_settings
from .losses import kd_loss
from .student import component_params

QUALITY_TOLERANCE = 0.10  # issue 5: on GPU profiles the student's CER and MOS estimate within 10 % of the teacher's


@dataclass(frozen=True)
class Reference:
    """A test-split row to synthesise and compare with its recording (MCD-DTW)."""

    text: str
    description: str
    audio: np.ndarray
    sampling_rate: int


def reference_rows(split: Any, n: int) -> list[Reference]:
    """The first ``n`` rows of a test split (``text``, ``text_description``, decoded ``audio``) as references."""
    refs = []
    for i in range(min(n, len(split))):
        row = split[i]
        audio = np.asarray(row["audio"]["array"], dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"test split row {i} ({row['text'][:40]!r}): audio must be non-empty mono, got shape "
                             f"{audio.shape}; re-run stage 01 to rebuild the dataset")
        refs.append(Reference(row["text"], row["text_description"], audio, int(row["audio"]["sampling_rate"])))
    return refs


def folder_size(path: str | Path) -> int:
    """Bytes of every file under ``path`` (a model export)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def weights_size(model: torch.nn.Module) -> int:
    """Bytes of the serialised state dict (the on-disk weight size, also for a quantised copy)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def generation_settings(device: torch.device, dtype: torch.dtype | None) -> SynthSettings:
    """The synthesis path every system of a comparison is timed with: the fastest verified one for ``device``
    (``parler.synth.fastest_settings``) with float16 weights only when ``dtype`` (the profile's, else the model's own)
    is float16, and without its int8 decoder (the int8 student is a system of its own, so teacher and student stay
    float)."""
    return replace(fastest_settings(device), int8_decoder=False,
                   dtype="float16" if dtype == torch.float16 else "float32")


@torch.no_grad()
def measure_generation(bundle: ParlerBundle, sentences: list[str], description: str, *, name: str, seed: int = 0,
                       frames: int | None = None, max_seconds: float = 5.0, warmup: int = 1, repeats: int = 1,
                       dtype: torch.dtype | None = None, disk_paths: tuple = (),
                       descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    """Time generation of every sentence through the benchmark harness (``measure_synthesis``: warm-up,
    repeats, latency, real-time factor, peak RSS / CUDA memory, size), spoken by ``ParlerSynth`` with
    :func:`generation_settings` (it takes over ``bundle.model``). Each sentence has a fixed sampling seed and
    ``description`` (or its own from ``descriptions``); ``frames`` forces an exact length so models with random
    weights are compared on equal work. Returns the harness record (its ``notes`` name the path used) plus
    ``audios`` (first pass) and ``synthesis`` (the synthesiser's report)."""
    from ..measure.harness import measure_synthesis

    weights = next(bundle.model.decoder.parameters())
    device = weights.device
    synth = ParlerSynth(bundle, generation_settings(device, dtype or weights.dtype), device=device)
    index = {text: i for i, text in enumerate(sentences)}
    path = describe(synth.report())

    def speak(text: str) -> tuple[np.ndarray, int]:
        voice = (descriptions or {}).get(text, description)
        audio = synth.synthesize([text], voice, seed=seed + index[text], frames=frames, max_seconds=max_seconds)
        return audio[0], bundle.sampling_rate

    collected: list = []
    before = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        dtype_used = str(next(synth.model.decoder.parameters()).dtype).removeprefix("torch.")  # as it runs
        rec = measure_synthesis(name, "parler-tts", speak, sentences, dtype=dtype_used,
                                device=str(device), warmup=warmup, repeats=repeats, model=synth.model,
                                disk_paths=disk_paths, collect=collected, language="kn",
                                notes=f"{'fixed length' if frames else 'until EOS'}; {path}", progress=False)
    rec["audios"] = [audio for _, audio, _ in collected]
    rec["cuda_allocated_before_mib"] = before
    rec["synthesis"] = synth.report()
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


def quality_metrics(audios: list[np.ndarray], sr: int, texts: list[str], *, language: str = "kn",
                    references: dict[str, Reference] | None = None,
                    asr_model: str = OFFLINE_BASE) -> dict[str, Any]:
    """Means over the clips of Whisper CER/WER (``asr_model``, greedy, in ``language``), DNSMOS and, for texts
    with a reference recording, MCD-DTW through ``nbhelpers.measure.quality``. A metric that cannot be computed
    (e.g. a hub ASR model that cannot be downloaded) is None with its reason in ``quality_unavailable``."""
    from ..measure import quality

    def asr() -> dict[str, float]:
        heard = [quality.transcribe(a, sr, language, max_new_tokens=quality.asr_token_cap(t), asr_model=asr_model)
                 for t, a in zip(texts, audios, strict=True)]
        return {"cer": float(np.mean([quality.cer(t, h) for t, h in zip(texts, heard, strict=True)])),
                "wer": float(np.mean([quality.wer(t, h) for t, h in zip(texts, heard, strict=True)]))}

    def mos() -> dict[str, float]:
        scores = [quality.dnsmos(a, sr) for a in audios]
        return {k: float(np.mean([s[k] for s in scores])) for k in DNSMOS_FIELDS}

    def mcd() -> dict[str, Any]:
        refs = references or {}
        pairs = [(refs[t], a) for t, a in zip(texts, audios, strict=True) if t in refs]
        if not pairs:
            raise ValueError("no evaluation text is a test-split row with a recording (eval_test_rows = 0)")
        return {"mcd_db": float(np.mean([quality.mcd_dtw(r.audio, r.sampling_rate, a, sr) for r, a in pairs])),
                "mcd_n": len(pairs)}

    out: dict[str, Any] = {}
    for fields, compute in ((("cer", "wer"), asr), (DNSMOS_FIELDS, mos), (("mcd_db",), mcd)):
        try:
            out.update(compute())
        except Exception as err:  # a failed metric is reported with its reason, the run is kept
            for f in fields:
                out[f] = None
                out.setdefault("quality_unavailable", {})[f] = f"{type(err).__name__}: {err}"
    return out


def quality_vs_teacher(row: dict[str, Any], teacher: dict[str, Any],
                       tolerance: float = QUALITY_TOLERANCE) -> dict[str, Any]:
    """The issue-5 quality target for one system against the teacher: ``cer_vs_teacher`` and
    ``mos_vs_teacher`` (system / teacher; None when either is unmeasured or the teacher's is 0), and
    ``quality_within_10pct``: CER at most ``1 + tolerance`` times the teacher's and DNSMOS overall at least
    ``1 - tolerance`` times it (being better is within); None unless all four numbers were measured."""
    cer_s, cer_t = row.get("cer"), teacher.get("cer")
    mos_s, mos_t = row.get("dnsmos_ovrl"), teacher.get("dnsmos_ovrl")
    measured = None not in (cer_s, cer_t, mos_s, mos_t)
    return {"cer_vs_teacher": cer_s / cer_t if cer_s is not None and cer_t else None,
            "mos_vs_teacher": mos_s / mos_t if mos_s is not None and mos_t else None,
            "quality_within_10pct": (cer_s <= (1 + tolerance) * cer_t and mos_s >= (1 - tolerance) * mos_t)
            if measured else None}


def record_quality(record: dict[str, Any], row: dict[str, Any]) -> None:
    """Copy a row's quality figures into its tts-bench/1 record (None with the reason when not measured)."""
    for field in ("cer", "wer", *DNSMOS_FIELDS, "mcd_db"):
        if field in row:
            set_metric(record, f"quality.{field}", row[field], (row.get("quality_unavailable") or {}).get(field))


def int8_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy of ``model`` with every Linear layer dynamically quantised to int8."""
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).to("cpu").eval(), {torch.nn.Linear},
                                                  dtype=torch.qint8)


def compare(systems: dict[str, ParlerBundle | Callable[[], ParlerBundle]], *, sentences: list[str], description: str,
            test_examples: dict[str, list[Example]] | None = None, disk: dict[str, str | Path] | None = None,
            references: list[Reference] | None = None, frames: int | None = None, max_seconds: float = 5.0,
            seed: int = 0, warmup: int = 1, repeats: int = 1, dtype: torch.dtype | None = None, quality: bool = True,
            language: str = "kn", asr_model: str = OFFLINE_BASE) -> dict[str, dict[str, Any]]:
    """One row of figures per system (e.g. ``teacher``, ``student``, ``student_int8``), measured in turn on the
    same texts (``sentences`` then the ``references``' test-split rows, each with its own description), seed and
    device; quality is scored once every system is timed (no ASR/MOS model is in memory while one is timed). Audio
    arrays are returned under ``audios``, their texts under ``texts`` and the full harness record under ``record``.
    A system given as a function is loaded when its turn comes and freed after it (a quantised copy of a large
    model is never in memory beside the others'), and ``<system>_<quantisation>`` shares ``<system>``'s counts."""
    refs = {r.text: r for r in references or ()}
    texts = list(dict.fromkeys([*sentences, *refs]))
    rows: dict[str, dict[str, Any]] = {}
    rates: dict[str, int] = {}
    for name, entry in tqdm(systems.items(), desc="teacher vs student", leave=False):
        bundle = entry() if callable(entry) else entry
        rates[name] = bundle.sampling_rate
        base = rows.get(name.partition("_")[0]) if "_" in name else None
        if base is not None:  # quantised Linear weights are no longer parameters: count the float model's
            row: dict[str, Any] = {k: v for k, v in base.items() if k.startswith("params_")}
        else:
            row = {f"params_{k}": v for k, v in component_params(bundle.model).items()}
        row["weights_mib"] = round(weights_size(bundle.model) / 2**20, 3)
        if disk and name in disk:
            row["disk_mib"] = round(folder_size(disk[name]) / 2**20, 3)
        if test_examples and name in test_examples:
            row.update(teacher_forced_metrics(bundle, test_examples[name]))
        rec = measure_generation(bundle, texts, description, name=name, seed=seed, frames=frames,
                                 max_seconds=max_seconds, warmup=warmup, repeats=repeats, dtype=dtype,
                                 descriptions={t: r.description for t, r in refs.items()})
        row["audios"], row["texts"] = rec.pop("audios"), texts
        row["synthesis"] = rec.pop("synthesis")
        row["synthesis_path"] = describe(row["synthesis"])
        before = rec.pop("cuda_allocated_before_mib")
        # own weights + the peak working memory of generation above what was resident before (the other
        # systems' weights stay loaded in a side-by-side run, so the raw process peak would not separate them)
        work = (rec["peak_cuda_mib"] - before) if before is not None else (rec["peak_rss_mib"] - rec["rss_before_mib"])
        row.update(device=rec["device"], latency_s=rec["latency_s_median"], rtf=rec["rtf"], audio_s=rec["audio_s"],
                   generation_work_mib=round(max(work, 0.0), 2), peak_memory_mib=round(row["weights_mib"] + max(work, 0.0), 2),
                   peak_memory_kind="CUDA allocator" if before is not None else "process RSS")
        row["record"] = rec
        rows[name] = row
        if callable(entry):
            del bundle
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if quality:
        for name, row in tqdm(rows.items(), desc="quality (ASR, DNSMOS, MCD)", leave=False):
            row.update(quality_metrics(row["audios"], rates[name], texts, language=language,
                                       references=refs, asr_model=asr_model))
            record_quality(row["record"], row)
    if "teacher" in rows:
        t = rows["teacher"]
        for name, row in rows.items():
            if name != "teacher":
                row["params_total_ratio"] = row["params_total"] / t["params_total"]
                row["params_decoder_ratio"] = row["params_decoder"] / t["params_decoder"]
                if row["device"] == t["device"]:
                    row["speedup"] = t["latency_s"] / row["latency_s"]
                    row.update(quality_vs_teacher(row, t))
    return rows


SUMMARY_FIELDS = ("params_total", "params_decoder", "params_text_encoder", "params_embed_prompts", "weights_mib",
                  "disk_mib", "peak_memory_mib", "latency_s", "rtf", "speedup", "test_ce", "code_accuracy", "cer",
                  "dnsmos_ovrl", "mcd_db", "params_total_ratio", "params_decoder_ratio", "cer_vs_teacher",
                  "mos_vs_teacher", "quality_within_10pct", "synthesis_path")


def summary_rows(comparison: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per system with the headline figures (the notebook's comparison table)."""
    return [{"system": name, "device": row.get("device"),
             **{f: row[f] for f in SUMMARY_FIELDS if row.get(f) is not None}} for name, row in comparison.items()]
