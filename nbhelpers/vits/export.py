"""Outputs of a VITS run: an inference bundle (weights + config + ONNX), sample WAVs for the fixed Bangla test
sentences, the loss plot from TensorBoard logs, ONNX Runtime inference checked against PyTorch, and a
side-by-side CPU timing of the two backends."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import latest_checkpoint, save_checkpoint
from ..paths import Workspace
from .config import SAMPLE_RATE, TEST_SENTENCES, load_coqui_config, save_config, tokenizer_and_scales

BUNDLES = "model"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}  # bundle files per ONNX variant
LOSS_TAGS = ("loss_mel", "loss_kl", "loss_duration", "loss_gen", "loss_disc", "loss_feat")


def best_checkpoint(run_dir: str | Path) -> Path:
    """best_model.pth when an epoch finished (lowest loss), else the newest checkpoint_N.pth."""
    run_dir = Path(run_dir)
    best = run_dir / "best_model.pth"
    if best.is_file():
        return best
    ckpts = sorted(run_dir.glob("checkpoint_*.pth"), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    if not ckpts:
        raise FileNotFoundError(f"{run_dir} holds no best_model.pth or checkpoint_N.pth. Fix: train first "
                                "(nbhelpers.vits.train) or point at the run folder that has them.")
    return ckpts[-1]


def load_model(checkpoint: str | Path, config_path: str | Path | None = None) -> Any:
    """A VITS in eval mode from a checkpoint and its config.json (default: beside the checkpoint); a LoRA run's
    checkpoint comes back as a plain VITS with its adapters folded into the weights (:mod:`.lora`)."""
    from TTS.tts.models.vits import Vits

    from .lora import adapter_layout, checkpoint_weights, merge_from_state

    checkpoint = Path(checkpoint)
    config = load_coqui_config(config_path or checkpoint.parent / "config.json")
    model = Vits(config)
    state = checkpoint_weights(checkpoint)
    if adapter_layout(state):
        model.load_state_dict(merge_from_state(model, state))
        return model.eval()
    model.load_checkpoint(config, str(checkpoint), eval=True)
    return model


def fold_weight_norm(model: Any) -> Any:
    """Remove the weight-norm parametrizations in place, so inference uses plain weights instead of recomputing
    them at every call (the ONNX export folds them the same way). Inference only: the state-dict keys change, so
    publish or save the model before folding."""
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight")
    return model


def synthesize(model: Any, text: str, *, deterministic: bool = False) -> np.ndarray:
    """Float32 mono audio at the model's sample rate. ``deterministic`` zeroes the noise scales (used to compare
    backends); otherwise coqui's inference noise is used, as in normal synthesis."""
    import torch

    ids = torch.LongTensor(model.tokenizer.text_to_ids(text))[None].to(next(model.parameters()).device)
    saved = model.inference_noise_scale, model.inference_noise_scale_dp
    if deterministic:
        model.inference_noise_scale = model.inference_noise_scale_dp = 0.0
    try:
        with torch.inference_mode():
            out = model.inference(ids, aux_input={"x_lengths": torch.LongTensor([ids.shape[1]])})
    finally:
        model.inference_noise_scale, model.inference_noise_scale_dp = saved
    return out["model_outputs"][0, 0].float().cpu().numpy()


def speak_samples(synth: Any, out_dir: str | Path, model_state: str, texts: tuple[str, ...] = TEST_SENTENCES,
                  prefix: str = "sample") -> Path:
    """One WAV per test sentence via ``synth(text) -> audio`` and their ``samples.jsonl`` (the samples contract,
    :mod:`nbhelpers.samples`, with ``model_state`` naming the model that spoke); returns that file."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from ..samples import sample_row, write_samples

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(tqdm(texts, desc="samples", unit="sentence")):
        path = out_dir / f"{prefix}_{i:02d}.wav"
        sf.write(path, synth(text), SAMPLE_RATE)
        rows.append(sample_row(text, path, model_state))
    return write_samples(rows, out_dir)


def loss_curves(run_dir: str | Path, tags: tuple[str, ...] = LOSS_TAGS) -> dict[str, tuple[list[int], list[float]]]:
    """Per-step training losses read back from the run's TensorBoard event files (all sessions of the run)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, dict[int, float]] = {}
    for events in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in tags:
            full = f"TrainIterStats/{tag}"
            if full in acc.Tags()["scalars"]:
                curves.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(full)})
    return {t: (sorted(v), [v[s] for s in sorted(v)]) for t, v in curves.items()}


def plot_losses(run_dir: str | Path, path: str | Path, title: str = "VITS training losses",
                tags: tuple[str, ...] = LOSS_TAGS) -> Path:
    """Save a PNG with one panel per loss (the mel loss dwarfs the others, so panels, not one axis); ``tags`` name the
    coqui training-log losses to draw (VITS's by default)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curves = loss_curves(run_dir, tags)
    if not curves:
        raise FileNotFoundError(f"no TensorBoard training losses in {run_dir}. Fix: train at least one step.")
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 2.8), squeeze=False)
    for ax, (tag, (steps, values)) in zip(axes[0], curves.items(), strict=True):
        ax.plot(steps, values, marker="." if len(steps) < 50 else None)
        ax.set_title(tag)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss (dimensionless)")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def export_onnx(model: Any, path: str | Path) -> Path:
    """Export the generator with coqui's ``Vits.export_onnx`` (inputs ``input``, ``input_lengths``, ``scales``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the tracer warns about every Python-level shape check in coqui's code
        warnings.simplefilter("ignore")
        model.export_onnx(output_path=str(path), verbose=False)
    return path


class OnnxVits:
    """ONNX Runtime inference for an exported VITS (fp32 or the int8 variant of :mod:`nbhelpers.vits.quantize`):
    same tokenizer as PyTorch, same noise/length scales."""

    def __init__(self, onnx_path: str | Path, config: Any, providers: list[str] | None = None,
                 threads: int | None = None, spinning: bool = True):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        if not spinning:  # idle threads sleep instead of busy-waiting: fairer on a shared, oversubscribed CPU
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options,
                                            providers=providers or ["CPUExecutionProvider"])
        self.tokenizer, self.scales = tokenizer_and_scales(config)

    def synthesize(self, text: str, *, deterministic: bool = False) -> np.ndarray:
        """Float32 mono audio, like :func:`synthesize` for the PyTorch model."""
        ids = np.asarray(self.tokenizer.text_to_ids(text), dtype=np.int64)[None]
        noise, length, noise_dp = self.scales
        scales = np.array([0.0 if deterministic else noise, length, 0.0 if deterministic else noise_dp], np.float32)
        out = self.session.run(["output"], {"input": ids, "input_lengths": np.array([ids.shape[1]], np.int64),
                                            "scales": scales})[0]
        return out[0, 0].astype(np.float32)


def onnx_file(bundle: str | Path, variant: str = "fp32") -> Path:
    """The bundle's ONNX model of ``variant`` (fp32 | int8), with the command that creates it when missing."""
    if variant not in ONNX_FILES:
        raise ValueError(f"unknown ONNX variant {variant!r}: use one of {sorted(ONNX_FILES)}")
    path = Path(bundle) / ONNX_FILES[variant]
    if not path.is_file():
        fix = (f"python -m nbhelpers.vits quantize --bundle {bundle}" if variant == "int8" else
               "publish the bundle with export_onnx = true (profile) or re-run finish()")
        raise FileNotFoundError(f"{path} is missing. Fix: {fix}")
    return path


def fastest_backend(bundle: str | Path, records: list[dict[str, Any]]) -> tuple[str, str]:
    """The CPU backend to speak with, and why: among PyTorch and the bundle's ONNX models whose check passed when
    stage 04 published the bundle (its record's ``onnx_vs_pytorch`` / ``int8_vs_fp32``), the one stage 04 timed
    fastest; PyTorch when nothing else is verified."""
    bundle = Path(bundle).resolve()
    rec = next((r for r in reversed(records) if r.get("stage") == "04_vits_bangla_finetune"
                and r.get("outputs", {}).get("bundle") and Path(r["outputs"]["bundle"]).resolve() == bundle), None)
    if rec is None:
        return "torch", "no stage-04 record checked this bundle's ONNX models"
    m = rec.get("metrics", {})
    speed = {"torch": 1.0}
    if (bundle / ONNX_FILES["fp32"]).is_file() and m.get("onnx_vs_pytorch", {}).get("ok") and m.get("onnx_speedup"):
        speed["onnx"] = float(m["onnx_speedup"])
        if ((bundle / ONNX_FILES["int8"]).is_file() and m.get("int8_vs_fp32", {}).get("ok")
                and m.get("onnx_int8_speedup")):
            speed["onnx-int8"] = float(m["onnx_int8_speedup"])
    best = max(speed, key=speed.get)
    if best == "torch":
        return best, "no ONNX model of this bundle passed its check and ran faster than PyTorch"
    return best, (f"passed its check when published and ran {speed[best]:.2f}x PyTorch's speed on CPU "
                  f"(stage 04's timing)")


def compare_backends(model: Any, onnx: OnnxVits, texts: tuple[str, ...] = TEST_SENTENCES,
                     tolerance: float = 1e-3) -> dict[str, Any]:
    """Deterministic PyTorch vs ONNX Runtime audio for the same texts: lengths must match and the largest
    sample difference must stay within ``tolerance`` (audio is in [-1, 1]). The pairs are time-aligned, so
    PESQ/STOI are reported too (``aligned``)."""
    from ..measure.quality import aligned_pairs_quality

    worst, lengths_match, pairs = 0.0, True, []
    for text in texts:
        a, b = synthesize(model, text, deterministic=True), onnx.synthesize(text, deterministic=True)
        if a.shape != b.shape:
            lengths_match = False
            n = min(len(a), len(b))
            a, b = a[:n], b[:n]
        else:
            pairs.append((a, b))
        worst = max(worst, float(np.max(np.abs(a - b))) if len(a) else 0.0)
    return {"max_abs_diff": worst, "lengths_match": lengths_match, "tolerance": tolerance,
            "ok": lengths_match and worst <= tolerance, "sentences": len(texts),
            "aligned": aligned_pairs_quality(pairs, SAMPLE_RATE)}


@dataclass
class Backend:
    """One way to synthesise, for :func:`time_backends`: ``synth(text, deterministic=...) -> audio``, the model (or
    ONNX path) for the parameter count, the files for the size on disk, and the weights' dtype."""

    synth: Callable[..., np.ndarray]
    model: Any
    files: list[Path]
    dtype: str = "float32"
    threads: int | None = None


def time_backends(backends: dict[str, Backend], texts: tuple[str, ...] = TEST_SENTENCES, repeats: int = 2,
                  warmup: int = 1, system: str = "vits-bn", deterministic: bool = True,
                  notes: str = "") -> dict[str, dict[str, Any]]:
    """Measure each backend side by side on the same texts with the suite's harness
    (``nbhelpers.measure.harness.measure_synthesis``). Deterministic noise makes all backends produce the same
    audio length. Returns tts-bench/1 records keyed like ``backends``."""
    from ..measure.harness import measure_synthesis

    records = {}
    for name, b in backends.items():
        records[name] = measure_synthesis(
            system, name, lambda text, s=b.synth: (s(text, deterministic=deterministic), SAMPLE_RATE), list(texts),
            dtype=b.dtype, device="cpu", warmup=warmup, repeats=repeats, model=b.model, disk_paths=b.files,
            threads=b.threads, language="bn", notes=notes)
    return records


def inference_config(config: Any) -> Any:
    """The config for the inference bundle: no discriminator (not needed to synthesise, half the size)."""
    config = copy.deepcopy(config)
    config.model_args.init_discriminator = False
    return config


def publish_bundle(model: Any, config: Any, step: int, workspace: Workspace, *, onnx: bool = True,
                   int8: bool = False, meta: dict[str, Any] | None = None, keep: int | None = 2) -> Path:
    """Atomically write ``<workspace>/vits/model/step-N/`` with model.pth (generator), config.json,
    model.onnx and (``int8``) model.int8.onnx, so later stages (06 benchmark) find a complete bundle with
    ``latest_checkpoint``."""
    import torch

    inf_config = inference_config(config)

    def write(folder: Path) -> None:
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("disc.")}
        torch.save({"model": state, "step": step}, folder / "model.pth")
        save_config(inf_config, folder / "config.json")
        if onnx:
            export_onnx(model, folder / ONNX_FILES["fp32"])
            if int8:
                from .quantize import quantize_vits

                quantize_vits(folder / ONNX_FILES["fp32"], folder / ONNX_FILES["int8"], inf_config)

    return save_checkpoint(workspace.stage_dir("vits", BUNDLES), step, write, meta=meta, keep=keep)


def latest_bundle(workspace: Workspace | None = None) -> Path | None:
    """The newest complete inference bundle of this stage."""
    return latest_checkpoint((workspace or Workspace()).stage_dir("vits", BUNDLES, create=False))


def quantize_bundle(bundle: str | Path, texts: Sequence[str] | None = None) -> Path:
    """Add model.int8.onnx to a published bundle (from its model.onnx and config.json); ``texts`` default to
    :data:`nbhelpers.vits.quantize.CALIBRATION_SENTENCES`."""
    from .quantize import CALIBRATION_SENTENCES, quantize_vits

    bundle = Path(bundle)
    return quantize_vits(onnx_file(bundle, "fp32"), bundle / ONNX_FILES["int8"],
                         load_coqui_config(bundle / "config.json"), texts or CALIBRATION_SENTENCES)
