"""The Parler-TTS fine-tuning loop on Accelerate, in one place.

One optimiser step = ``grad_accum`` micro-batches. Every step draws one *global* batch (``batch_size`` x
number of processes, length-grouped) from a :class:`ResumableSampler` whose order is the same on every
process; each process takes its slice, so 1 process with batch 4 and 2 processes with batch 2 see the same
utterances per step. Precision: fp16 autocast + grad scaler on T4 with the T5 text encoder kept in fp32,
bf16 on Ampere or newer, fp32 on CPU. Checkpoints hold the trainable weights, optimiser, scheduler, scaler,
sampler position, RNG and the loss history, so a resumed run continues bit-for-bit; a run stopped by the
time budget saves and reports ``resume_needed``.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import functools
import itertools
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import training
from ..budget import TimeBudget
from ..env import recommended_dtype, seed_everything
from ..paths import Workspace, find_artifacts
from ..profiles import load_profile
from ..samples import write_wav
from ..training import ResumableSampler, TrainResult
from .codes import load_or_encode
from .data import Collator, Example, Filters, build_examples, mixed_batches
from .evaluate import GenEval, held_out_items
from .losses import codebook_cross_entropy, codebook_logits, decoder_inputs, valid_mask
from .model import ParlerBundle, get_bundle, parameter_counts
from .report import effective_batch
from .synth import length_kwargs, shortest_seconds

STAGE = "02_parler_finetune"


class RunPaths(training.RunPaths):
    """Folders of one training run inside ``<workspace>/parler``, plus the shared code cache and base models."""

    tensorboard = property(lambda self: self.run_dir / "tb")
    codes = property(lambda self: self.root / "codes")
    base_models = property(lambda self: self.root / "base")


def run_seed(cfg: dict[str, Any]) -> int:
    """The run's seed: the profile's own ``seed`` if it sets one, else the suite-wide seed."""
    return int(cfg.get("seed", load_profile("suite", cfg["profile"])["seed"]))


def step_budget(cfg: dict[str, Any], batches_per_epoch: int) -> int:
    """The run's optimiser steps: ``max_steps``, or with ``max_epochs`` > 0 as many steps as that many passes over
    the training batches take (``grad_accum`` global batches a step, rounded up, so every batch is seen)."""
    epochs = cfg["max_epochs"]
    if epochs <= 0:
        return cfg["max_steps"]
    return max(1, math.ceil(epochs * batches_per_epoch / cfg["grad_accum"]))


def speed_fallbacks(cfg: dict[str, Any], parler: torch.nn.Module, device: torch.device, *,
                    quantised: bool) -> dict[str, str]:
    """{setting: why it is not applied as asked} for ``compile`` and ``attention``; empty when both apply. sdpa is
    the decoder's own default (the T5 text encoder has no sdpa in transformers 4.46 and stays eager)."""
    out = {}
    actual = parler.decoder.config._attn_implementation
    if actual != cfg["attention"]:
        out["attention"] = (f"{cfg['attention']} asked, the decoder runs {actual}: this model was built with it "
                            "(a distillation student, or a model without that implementation)")
    if cfg["compile"]:
        if quantised:
            out["compile"] = "bitsandbytes 8/4-bit layers do not compile: eager training"
        elif device.type == "cpu" and not any(map(shutil.which, ("g++", "c++", "clang++"))):
            out["compile"] = "torch.compile on CPU needs a C++ compiler (g++) and none is installed: eager training"
    return out


def process_state() -> Any:
    """Accelerate's per-process state, created the way the trainer's ``Accelerator`` expects it: on a machine
    without CUDA with ``cpu=True``, so that a launch of N processes (``accelerate launch --multi_gpu``, i.e.
    torchrun) trains as N gloo processes rather than N independent single processes."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def mixed_precision(setting: str = "auto") -> str:
    """Accelerate's precision name: 'fp16' on pre-Ampere GPUs (T4), 'bf16' on Ampere+, 'no' on CPU."""
    if setting != "auto":
        return setting
    return {"float16": "fp16", "bfloat16": "bf16"}.get(recommended_dtype(), "no")


def _fp32_forward(forward):
    """Wrap a module's forward so it runs outside autocast: T5 overflows in fp16 (upstream keeps it fp32)."""
    @functools.wraps(forward)
    def run(*args, **kwargs):
        device = "cuda" if torch.cuda.is_available() else "cpu"
        with torch.autocast(device_type=device, enabled=False):
            return forward(*args, **kwargs)
    return run


def lora_target_regex(targets: list[str]) -> str:
    """PEFT target regex restricted to the Parler decoder's attention/FFN layers (never T5 or the codec)."""
    return r".*decoder\.model\.decoder\.layers\.\d+\.(self_attn|encoder_attn)?\.?(" + "|".join(targets) + r")$"


def prepare_model(bundle: ParlerBundle, cfg: dict[str, Any]) -> torch.nn.Module:
    """Freeze what the mode freezes, add LoRA adapters, switch on gradient checkpointing; returns the module
    to train (the Parler model itself, or a PeftModel around it)."""
    model = bundle.model
    mode = cfg["mode"]
    if cfg.get("codebook_weights"):
        model.config.decoder.codebook_weights = list(cfg["codebook_weights"])
    model.freeze_encoders(freeze_text_encoder=cfg["freeze_text_encoder"] or mode != "full")
    model.text_encoder.forward = _fp32_forward(model.text_encoder.forward)
    if cfg["gradient_checkpointing"]:
        model.config.use_cache = model.config.decoder.use_cache = False
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if mode == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if mode in ("8bit", "4bit"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg["gradient_checkpointing"],
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=cfg["lora_rank"], lora_alpha=cfg["lora_alpha"], lora_dropout=cfg["lora_dropout"],
                      target_modules=lora_target_regex(list(cfg["lora_targets"])), bias="none")
    return get_peft_model(model, lora)


def parler_of(model: torch.nn.Module) -> torch.nn.Module:
    """The ParlerTTSForConditionalGeneration inside a (possibly PEFT-wrapped, DDP-wrapped) model."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def set_train_mode(model: torch.nn.Module, training: bool) -> None:
    """Train mode for the parts being trained; frozen encoders always in eval mode (no dropout noise)."""
    model.train(training)
    inner = parler_of(model)
    for part in (inner.audio_encoder, inner.text_encoder):
        if not any(p.requires_grad for p in part.parameters()):
            part.eval()


def batch_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor],
               weights: list[float] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Forward one batch with teacher forcing and return the codebook-weighted masked CE."""
    inner = parler_of(model)
    dec = inner.config.decoder
    labels = batch["labels"]
    dii = decoder_inputs(inner, labels)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                prompt_input_ids=batch["prompt_input_ids"], prompt_attention_mask=batch["prompt_attention_mask"],
                decoder_input_ids=dii, use_cache=False)
    logits = codebook_logits(out.logits, labels.shape[0], dec.num_codebooks, labels.shape[1])
    mask = valid_mask(labels, dii, dec.bos_token_id, dec.eos_token_id)
    return codebook_cross_entropy(logits, labels, mask, weights)


@torch.no_grad()
def generate_samples(bundle: ParlerBundle, model: torch.nn.Module, sentences: list[str], description: str, *,
                     max_seconds: float, seed: int, max_chars_per_second: float = 0.0,
                     autocast: Any = contextlib.nullcontext) -> list[np.ndarray]:
    """Speak each sentence with the same description and a fixed sampling seed (the training RNG streams
    are left untouched, so periodic samples do not change the run); each lasts at least its characters over
    ``max_chars_per_second`` seconds (``synth.length_kwargs``)."""
    inner = parler_of(model)
    was_training = inner.training
    inner.eval()
    device = next(inner.decoder.parameters()).device
    out = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for i, text in enumerate(sentences):
            torch.manual_seed(seed + i)
            desc = bundle.description_tokenizer([description], return_tensors="pt").to(device)
            prompt = bundle.prompt_tokenizer([text], return_tensors="pt").to(device)
            with autocast():
                audio = inner.generate(input_ids=desc.input_ids, attention_mask=desc.attention_mask,
                                       prompt_input_ids=prompt.input_ids, prompt_attention_mask=prompt.attention_mask,
                                       **length_kwargs(bundle, max_seconds=max_seconds,
                                                       min_seconds=shortest_seconds([text], max_chars_per_second)),
                                       do_sample=True, temperature=1.0)
            out.append(audio[0].float().cpu().numpy().reshape(-1))
    inner.train(was_training)
    if was_training:
        set_train_mode(model, True)
    return out


def write_wavs(folder: Path, prefix: str, audios: list[np.ndarray], sr: int) -> list[Path]:
    """``<folder>/<prefix>_<i>.wav`` for each clip."""
    return [write_wav(Path(folder) / f"{prefix}_{i}.wav", a, sr) for i, a in enumerate(audios)]


def attached_codes(workspace: Workspace) -> tuple[Path, ...]:
    """Code caches of attached outputs (``parler/codes`` under the Kaggle inputs), which a run reuses."""
    own = RunPaths(workspace.stage_dir("parler")).codes
    return tuple(p for p in find_artifacts("parler/codes", workspace) if p != own)


def encode_sources(bundle: ParlerBundle, cfg: dict[str, Any], workspace: Workspace, sources: list[Any], *,
                   splits: tuple[str, ...] | None, device: Any) -> list[tuple[Any, dict[str, list[torch.Tensor]]]]:
    """(dataset, codes) per source (a name, folder or DatasetDict), trimmed to ``max_train_utterances``, its codes
    from the workspace's cache, an attached one, or encoded now by ``encode_workers`` processes; ``splits`` None:
    every split."""
    out = []
    for source in sources:
        data = limit_train(load_dataset(source, workspace), int(cfg.get("max_train_utterances", 0)))
        out.append((data, load_or_encode(bundle, data, RunPaths(workspace.stage_dir("parler")).codes,
                                         splits=splits or tuple(data.keys()), attached=attached_codes(workspace),
                                         batch_size=cfg["codes_batch_size"], device=device,
                                         workers=cfg["encode_workers"])))
    return out


def load_dataset(dataset: Any, workspace: Workspace | None = None) -> Any:
    """A DatasetDict from an object, a saved folder, or a prepared dataset name (``kn_smoke``) found in
    ``workspace`` or under /kaggle/input."""
    import datasets

    if isinstance(dataset, (datasets.DatasetDict, dict)):
        return dataset
    path = Path(dataset)
    if not path.exists():
        from ..data.layout import DatasetPaths

        path = DatasetPaths.find(str(dataset), workspace).parler_hf
    return datasets.load_from_disk(str(path))


def limit_train(data: Any, n: int) -> Any:
    """Keep the first ``n`` training utterances (0 keeps all): smoke runs stay within their time limit."""
    if n <= 0 or len(data["train"]) <= n:
        return data
    import datasets

    return datasets.DatasetDict({**data, "train": data["train"].select(range(n))})


def evaluate(model: torch.nn.Module, examples: list[Example], collate: Collator, *, batch_size: int, device: Any,
             weights: list[float] | None, accelerator: Any) -> float:
    """Mean validation loss (examples weighted equally), sharded across processes and reduced."""
    set_train_mode(model, False)
    mine = examples[accelerator.process_index::accelerator.num_processes]
    total = torch.zeros(2, device=device)
    with torch.no_grad():
        for i in range(0, len(mine), batch_size):
            chunk = mine[i:i + batch_size]
            batch = {k: v.to(device) for k, v in collate(chunk).items()}
            with accelerator.autocast():
                loss, _ = batch_loss(model, batch, weights)
            total += torch.tensor([loss.item() * len(chunk), len(chunk)], device=device)
    total = accelerator.reduce(total, "sum")
    set_train_mode(model, True)
    return float(total[0] / total[1].clamp(min=1))


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB: process peak RSS



def start_wandb(project: str, paths: RunPaths, cfg: dict[str, Any]):
    """Optional Weights & Biases logging beside TensorBoard (off unless the profile sets ``wandb_project``).
    The run id is kept in the run folder so a resumed session continues the same W&B run; the API key comes
    from the environment (a Kaggle/Colab secret), never from the notebook."""
    try:
        import wandb
    except ImportError as err:
        raise ImportError(f"wandb_project={project!r} asks for Weights & Biases logging, but wandb is not installed: "
                          "`pip install wandb` (and set WANDB_API_KEY as a secret), or set wandb_project = \"\" "
                          "to log to TensorBoard only") from err
    id_file = paths.run_dir / "wandb_id.txt"
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    if not id_file.is_file():
        id_file.write_text(wandb.util.generate_id())
    config = {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool))}
    return wandb.init(project=project, name=paths.run, id=id_file.read_text().strip(), resume="allow",
                      dir=str(paths.run_dir), config=config)


def train(cfg: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None, run: str = "run",
          budget: TimeBudget | None = None, resume: bool = True, stop_after: int | None = None,
          bundle: ParlerBundle | None = None, loss_fn: Any = None, stage_dir: str = "parler") -> TrainResult:
    """Fine-tune (or resume) according to ``cfg`` (a loaded ``parler`` profile); returns status and history.

    The distillation stage reuses this loop: ``bundle`` replaces the model named by ``cfg["model"]``,
    ``loss_fn(model, batch) -> (loss, {part: float})`` replaces the CE (its parts are averaged into the
    history), and ``stage_dir`` is the workspace folder for the run (the code cache stays in ``parler/``).

    ``stop_after`` stops (with a checkpoint, status ``resume_needed``) once that step is reached: the same
    path a budget stop takes, used by tests and by the notebook to split long runs.
    """
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from torch.utils.tensorboard import SummaryWriter
    from transformers import get_scheduler

    ws = workspace or Workspace()
    paths = RunPaths(ws.stage_dir(stage_dir), run)
    suite = load_profile("suite", cfg["profile"])
    seed = run_seed(cfg)
    budget = budget or TimeBudget.from_profile(suite)
    precision = mixed_precision(cfg["mixed_precision"])
    process_state()  # first, so that every entry point sets up the processes the same way
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    device, main = accelerator.device, accelerator.is_main_process
    wandb_run = start_wandb(cfg["wandb_project"], paths, cfg) if main and cfg["wandb_project"] else None
    seed_everything(seed)

    quant = cfg["mode"] if cfg["mode"] in ("8bit", "4bit") else None
    with accelerator.main_process_first():
        if bundle is None:
            bundle = get_bundle(cfg["model"], workspace_dir=paths.base_models, seed=seed, quantization=quant,
                                attn_implementation=None if cfg["attention"] == "sdpa" else cfg["attention"],
                                torch_dtype=torch.float32 if quant else None,
                                compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
        if quant is None:
            bundle.model.to(device)
        # the run's dataset (weight 1.0), then the mix's other datasets with their weights
        sources = {"dataset": dataset if dataset is not None else cfg["dataset"], **{k: k for k in cfg["mix"]}}
        mix_weights = [1.0, *(float(w) for w in cfg["mix"].values())]
        encoded = encode_sources(bundle, cfg, ws, list(sources.values()), splits=("train", "validation"),
                                 device=device)
    filters = Filters.from_profile(cfg, bundle.frame_rate)
    parts = [(build_examples(bundle, d["train"], c["train"], filters=filters),
              build_examples(bundle, d["validation"], c["validation"], filters=filters, name="validation")[0])
             for d, c in encoded]
    train_ex = [e for (kept, _), _ in parts for e in kept]
    val_ex = [e for _, val in parts for e in val]
    dropped: dict[str, list[int]] = {}
    for (_, why), _ in parts:
        for reason, rows in why.items():
            dropped.setdefault(reason, []).extend(rows)
    collate = Collator(bundle)
    # the generation evaluation speaks the run's own dataset's held-out test items (main process only)
    gen_eval = GenEval(held_out_items(encoded[0][0], cfg["gen_eval_items"]), cfg, seed=seed) \
        if main and cfg["gen_eval_every"] > 0 else None

    model = prepare_model(bundle, cfg)
    counts = parameter_counts(model)
    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = cfg["batch_size"] * world
    lengths = [[e.frames for e in kept] for (kept, _), _ in parts]
    short = [name for name, n in zip(sources, lengths, strict=False) if len(n) < global_batch]
    if short:
        raise ValueError(f"{', '.join(map(str, short))}: too few training utterances to fill one global batch of "
                         f"{global_batch} ({cfg['batch_size']} x {world} processes): lower batch_size")
    batches = mixed_batches(lengths, mix_weights, global_batch, seed)
    sampler = ResumableSampler(len(train_ex), seed=seed, batches=batches)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"],
                                  betas=(0.9, 0.99), eps=1e-8)

    meta = {"mode": cfg["mode"], "model": cfg["model"], "global_batch": global_batch, "seed": seed,
            "grad_accum": cfg["grad_accum"]}
    if cfg["mix"]:  # the batch order depends on the mix: resuming with another one would not be the same run
        meta["mix"] = {str(k): float(v) for k, v in cfg["mix"].items()}
    state = training.Run(paths, meta=meta, max_steps=step_budget(cfg, len(batches)), save_every=cfg["save_every"],
                         keep=suite["keep_checkpoints"], budget=budget, stop_after=stop_after, main=main,
                         rank=rank, world=world, desc="parler train", profile_steps=cfg["profile_steps"])
    scheduler = get_scheduler(cfg["lr_schedule"], optimizer, num_warmup_steps=cfg["warmup_steps"],
                              num_training_steps=state.max_steps)
    if resume:
        state.resume(find_artifacts(f"{stage_dir}/{run}/checkpoints", ws), model=model, optimizer=optimizer,
                     scheduler=scheduler, scaler=accelerator.scaler, sampler=sampler)
    model, optimizer = accelerator.prepare(model, optimizer)
    fallbacks = speed_fallbacks(cfg, parler_of(model), device, quantised=quant is not None)
    for setting, why in fallbacks.items():
        accelerator.print(f"{setting}: {why}")
    # the training forward only: sampling and evaluation call generate() with other shapes and stay eager
    train_model = model if "compile" in fallbacks or not cfg["compile"] else torch.compile(model, dynamic=True)
    state.restore_rng()

    writer = SummaryWriter(str(paths.tensorboard), purge_step=state.step) if main else None
    weights = list(cfg["codebook_weights"]) or None
    sentences, description = list(cfg["sample_sentences"]), cfg["sample_description"]
    sr = bundle.sampling_rate

    def samples(tag: str, at: int) -> list[np.ndarray]:
        audios = generate_samples(bundle, model, sentences, description, max_seconds=cfg["sample_max_seconds"],
                                  max_chars_per_second=cfg["sample_max_chars_per_second"], seed=seed,
                                  autocast=accelerator.autocast)
        if writer is not None:
            for i, a in enumerate(audios):
                writer.add_audio(f"{tag}/sentence_{i}", torch.from_numpy(np.clip(a, -1, 1))[None], at, sample_rate=sr)
        return audios

    def checkpoint() -> Path | None:
        folder = state.save(model=accelerator.unwrap_model(model), optimizer=optimizer, scheduler=scheduler,
                            scaler=accelerator.scaler, sampler=sampler, trainable_only=True, gather=gather_object)
        accelerator.wait_for_everyone()
        return folder

    if main and state.step == 0:
        write_wavs(paths.samples, "before", samples("samples_before", 0), sr)
    set_train_mode(model, True)

    stream = state.batches(sampler)
    accum = cfg["grad_accum"]
    state.start(device)
    while state.step < state.max_steps:
        losses, parts = [], {}
        for micro in range(accum):
            idx = next(stream)[rank::world]
            batch = {k: v.to(device) for k, v in collate([train_ex[i] for i in idx]).items()}
            sync = contextlib.nullcontext() if micro == accum - 1 else accelerator.no_sync(model)
            with sync, accelerator.autocast():
                loss, extra = loss_fn(train_model, batch) if loss_fn else batch_loss(train_model, batch, weights)
                accelerator.backward(loss / accum)
            losses.append(loss.detach())
            # the objective's parts (distillation) or stage 02's per-codebook cross-entropy
            named = extra.items() if isinstance(extra, dict) else ((f"codebook_{i}", v) for i, v in enumerate(extra))
            for key, value in named:
                parts[key] = parts.get(key, 0.0) + float(value.detach() if torch.is_tensor(value) else value) / accum
        grad_norm = accelerator.clip_grad_norm_(params, cfg["max_grad_norm"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        step = state.step
        loss_mean = accelerator.reduce(torch.stack(losses).mean(), "mean").item()
        entry = {"step": step, "loss": loss_mean, "lr": scheduler.get_last_lr()[0], "grad_norm": float(grad_norm),
                 **parts}
        if cfg["eval_every"] > 0 and (step % cfg["eval_every"] == 0 or step == state.max_steps):
            # the unwrapped model: no DDP collectives inside evaluation (processes may get unequal shares)
            entry["eval_loss"] = evaluate(accelerator.unwrap_model(model), val_ex, collate,
                                          batch_size=cfg["batch_size"], device=device, weights=weights,
                                          accelerator=accelerator)
        if gen_eval is not None and gen_eval.due(step):
            entry["gen_eval"] = {"step": step, **gen_eval.run(bundle, parler_of(model), step=step, writer=writer,
                                                              autocast=accelerator.autocast, wandb_run=wandb_run)}
            set_train_mode(model, True)
        scalars = {f"train/{key}" if key != "eval_loss" else "eval/loss": entry[key]
                   for key in ("loss", "lr", "grad_norm", "eval_loss", *parts)
                   if key in entry and math.isfinite(entry[key])}
        if writer is not None:
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, step)
        if wandb_run is not None:
            wandb_run.log(scalars, step=step)
        if main and cfg["sample_every"] > 0 and step % cfg["sample_every"] == 0:
            samples("samples", step)
        if state.end_step(entry, checkpoint, loss=f"{loss_mean:.3f}"):
            break
    metrics = state.finish(device)
    if writer is not None:
        writer.close()
    if wandb_run is not None:
        wandb_run.finish()
    history = state.history
    metrics.update({
        "max_epochs": cfg["max_epochs"], "epochs_done": round(state.step * accum / len(batches), 3),
        "params_trainable": counts["trainable"], "params_total": counts["total"],
        "peak_memory_gib": round(_peak_memory_gib(device), 3), "precision": accelerator.mixed_precision,
        "processes": world, "batch_size": cfg["batch_size"], "grad_accum": accum,
        "effective_batch": effective_batch(cfg["batch_size"], world, accum), "seed": seed,
        "train_utterances": len(train_ex), "compile": "compile" not in fallbacks and cfg["compile"],
        "attention": parler_of(model).decoder.config._attn_implementation, "fallbacks": fallbacks,
        "dropped_too_long": len(dropped.get("too_long", [])),
        "dropped": {why: len(rows) for why, rows in dropped.items()}})
    if cfg["mix"]:
        ends = list(itertools.accumulate(len(n) for n in lengths))  # batch -> dataset by its first index
        share = collections.Counter(bisect.bisect_right(ends, b[0]) for b in batches)
        metrics["mix"] = {str(name): {"weight": w, "utterances": len(n), "batches_per_epoch": share[i]}
                          for i, (name, w, n) in enumerate(zip(sources, mix_weights, lengths, strict=True))}
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    if evals:
        metrics["final_eval_loss"] = evals[-1]
    gens = [h["gen_eval"] for h in history if "gen_eval" in h]
    if gens:  # the latest generation evaluation (per-clip details stay in the history)
        metrics["gen_eval"] = {k: v for k, v in gens[-1].items() if k != "clips"}
    return TrainResult(state.status, state.step, history, paths, state.checkpoint, metrics,
                       accelerator.unwrap_model(model), bundle)
