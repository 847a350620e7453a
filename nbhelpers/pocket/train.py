"""The Pocket TTS fine-tuning loop (stage 07) on Accelerate with the shared resume machinery.

Each training item is [voice prompt] [text] [BOS, latents...]: the voice prompt is a crop of another
utterance of the same speaker projected by ``speaker_proj_weight`` (as ``TTSModel.get_state_for_audio_prompt``
does at inference), the text goes through the new lookup table, and the backbone predicts every next
normalised latent (CALM objective, :mod:`nbhelpers.pocket.losses`) plus an EOS logit on the last frame.
Text and voice prompt are each dropped with their own probability so that the model also learns the
unconditional distributions classifier-free guidance needs. Rows of a batch are left-padded in the prefix
and right-padded in the latents; an attention mask hides the padding.

One optimiser step = one global batch (``batch_size`` x processes x ``grad_accum`` utterances of one language,
languages drawn by their profile weights), split into ``grad_accum`` micro-batches whose losses are weighted by
their share of the batch's frames: the gradient equals the whole batch's. Every random number of an utterance
(dropout, voice crop, head noise and times) is drawn when its micro-batch is made, in row order, so the split
does not change them. Every ``val_every`` steps the loss on the held-out validation split is computed with a
fixed seed (the training RNG untouched); scalars go to TensorBoard (``<run>/tb``). Checkpoints hold the flow LM,
optimiser, scheduler, sampler position, RNG, EMA weights and loss history (exact resume), plus a copy in the
package's training-checkpoint format that ``TTSModel.load_model(config, checkpoint=...)`` reads.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import training
from ..budget import TimeBudget
from ..env import recommended_dtype, seed_everything
from ..paths import Workspace, find_artifacts
from ..profiles import load_profile
from ..training import ResumableSampler, TrainResult, mixed_batches
from .latents import Item
from .losses import eos_loss, head_draws, head_loss

PACKAGE_CHECKPOINT = "pocket_model.pt"
LR_SCHEDULES = ("cosine", "linear", "constant")  # after the linear warm-up; the profiles' lr_schedule choices


class RunPaths(training.RunPaths):
    """Folders of one run inside ``<workspace>/pocket``, plus the shared latent cache."""

    tokenizer_dir = property(lambda self: self.run_dir / "tokenizer")
    config = property(lambda self: self.run_dir / "model.yaml")
    latents = property(lambda self: self.root / "latents")
    tensorboard = property(lambda self: self.run_dir / "tb")
    evaluation = property(lambda self: self.run_dir / "eval.json")


def mixed_precision(setting: str = "auto") -> str:
    """Accelerate's precision: fp16 on T4, bf16 on Ampere+, none on CPU."""
    if setting != "auto":
        return setting
    return {"float16": "fp16", "bfloat16": "bf16"}.get(recommended_dtype(), "no")


def speakers(items: list[Item]) -> dict[tuple[str, str], list[int]]:
    """Indices of the utterances of each (language, speaker): where voice prompts are cropped from."""
    out: dict[tuple[str, str], list[int]] = {}
    for i, it in enumerate(items):
        out.setdefault((it.language, it.speaker), []).append(i)
    return out


def make_batch(items: list[Item], indices: list[int], *, by_speaker: dict[tuple[str, str], list[int]],
               voice_frames: int, text_dropout: float, voice_dropout: float, mean: torch.Tensor, std: torch.Tensor,
               multiplier: int = 1) -> dict[str, torch.Tensor]:
    """Pad one batch and draw its randomness, utterance by utterance: text kept with 1 - ``text_dropout``; a voice
    prompt (a random crop of up to ``voice_frames`` frames of another utterance of the same speaker, un-normalised
    as the inference path feeds it) kept with 1 - ``voice_dropout``; the head's noise and times
    (:func:`~nbhelpers.pocket.losses.head_draws`, ``multiplier`` draws per frame). All from torch's global RNG, in
    row order: the rows drawn as one batch or as consecutive micro-batches get the same numbers."""
    rows = [items[i] for i in indices]
    b, d = len(rows), rows[0].latents.shape[1]
    tokens, voices, draws = [], [], []
    for i, row in zip(indices, rows, strict=True):
        keep_text = bool(torch.rand(()) >= text_dropout)
        tokens.append(row.tokens if keep_text else row.tokens[:0])
        voice = torch.zeros(0, d)
        if voice_frames > 0 and bool(torch.rand(()) >= voice_dropout):
            others = [j for j in by_speaker[(row.language, row.speaker)] if j != i] or [i]
            src = items[others[int(torch.randint(len(others), ()))]].latents
            n = min(voice_frames, src.shape[0])
            start = int(torch.randint(src.shape[0] - n + 1, ()))
            voice = src[start:start + n] * std + mean
        voices.append(voice)
        draws.append(head_draws(row.frames, d, multiplier))
    t_max = max(r.frames for r in rows)
    batch = {
        "tokens": torch.zeros(b, max(1, max(len(t) for t in tokens)), dtype=torch.long),
        "token_len": torch.tensor([len(t) for t in tokens]),
        "voice": torch.zeros(b, max(1, max(len(v) for v in voices)), d),
        "voice_len": torch.tensor([len(v) for v in voices]),
        "latents": torch.zeros(b, t_max, d),
        "latent_len": torch.tensor([r.frames for r in rows]),
        "noise": torch.zeros(b, multiplier, t_max, d),
        "time": torch.zeros(b, multiplier, t_max),
        "pair": torch.zeros(b, 2, multiplier, t_max),
    }
    for k, (t, v, r, dr) in enumerate(zip(tokens, voices, rows, draws, strict=True)):
        batch["tokens"][k, :len(t)] = t
        batch["voice"][k, :len(v)] = v
        batch["latents"][k, :r.frames] = r.latents
        batch["noise"][k, :, :r.frames] = dr["noise"]
        batch["time"][k, :, :r.frames] = dr["time"]
        batch["pair"][k, :, :, :r.frames] = dr["pair"]
    return batch


class PocketObjective(nn.Module):
    """The flow LM plus its training forward (one module, so Accelerate/DDP wrap exactly what is trained)."""

    def __init__(self, flow_lm: nn.Module, cfg: dict[str, Any]):
        super().__init__()
        self.flow_lm = flow_lm
        self.cfg = cfg

    def prefix(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded [voice prompt][text] embeddings [B, P, dim] and their validity mask [B, P]."""
        fl = self.flow_lm
        text = fl.conditioner(batch["tokens"])
        voice = F.linear(batch["voice"].to(fl.speaker_proj_weight.dtype), fl.speaker_proj_weight)
        rows = []
        for k in range(text.shape[0]):
            parts = []
            if int(batch["voice_len"][k]) > 0:
                if fl.insert_bos_before_voice:
                    parts.append(fl.bos_before_voice[0].to(voice.dtype))
                parts.append(voice[k, :int(batch["voice_len"][k])])
            parts.append(text[k, :int(batch["token_len"][k])].to(voice.dtype))
            rows.append(torch.cat(parts, 0))
        p = max(r.shape[0] for r in rows)
        prefix = torch.stack([F.pad(r, (0, 0, p - r.shape[0], 0)) for r in rows])
        lengths = torch.tensor([r.shape[0] for r in rows], device=prefix.device)
        valid = torch.arange(p, device=prefix.device)[None] >= (p - lengths)[:, None]
        return prefix, valid

    def backbone(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-frame backbone outputs [B, T, z] (teacher forcing: position i sees BOS and latents < i)."""
        fl = self.flow_lm
        prefix, valid = self.prefix(batch)
        lat = batch["latents"]
        b, t, _ = lat.shape
        seq = torch.cat([fl.bos_emb.expand(b, 1, -1).to(lat.dtype), lat[:, :-1]], 1)
        x = torch.cat([prefix, fl.input_linear(seq).to(prefix.dtype)], 1)
        n = x.shape[1]
        keys = torch.cat([valid, torch.ones(b, t, dtype=torch.bool, device=x.device)], 1)
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        mask = (causal[None] & keys[:, None, :]) | torch.eye(n, dtype=torch.bool, device=x.device)[None]
        for layer in fl.transformer.layers:
            x = layer(x, None, attn_mask=mask[:, None])
        x = fl.out_norm(x)[:, prefix.shape[1]:]
        return fl.z_proj(x) if fl.z_proj is not None else x

    def forward(self, batch: dict[str, torch.Tensor], distill: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, fl = self.cfg, self.flow_lm
        z = self.backbone(batch)
        t = z.shape[1]
        frames = torch.arange(t, device=z.device)[None]
        valid = frames < batch["latent_len"][:, None]
        last = frames == (batch["latent_len"] - 1)[:, None]
        eos = eos_loss(fl.out_eos(z).squeeze(-1).float(), last, valid.float())
        # the batch's pre-drawn noise and times of the valid frames, in z[valid]'s order: [M, N, ...]
        draws = {"noise": batch["noise"].transpose(0, 1)[:, valid], "time": batch["time"].transpose(0, 1)[:, valid],
                 "pair": batch["pair"].permute(1, 2, 0, 3)[:, :, valid]}
        device_type = z.device.type
        with torch.autocast(device_type=device_type, enabled=False):  # the small head and its jvp in fp32
            head, parts = head_loss(fl.flow_net, z[valid].float(), batch["latents"][valid].float(), draws,
                                    flow_type=fl.flow_type, distill=bool(distill),
                                    distill_weight=cfg["distill_weight"], time_mean=cfg["time_mean"],
                                    time_std=cfg["time_std"])
        loss = head + cfg["eos_weight"] * eos
        return loss, {**parts, "eos": float(eos.detach())}


class EMA:
    """Exponential moving average of the trained parameters (``ema_decay``, ramped up over the first steps)."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {n: p.detach().clone().float() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for n, p in module.named_parameters():
            if n in self.shadow:
                self.shadow[n].mul_(d).add_(p.detach().float(), alpha=1 - d)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}


def package_payload(tts_model, ema: EMA | None) -> dict[str, Any]:
    """The training-checkpoint layout ``TTSModel.load_model(config, checkpoint=...)`` reads: ``model`` with
    ``flow_lm.*`` and ``mimi.*`` weights, ``ema`` with the EMA shadow of the trained flow-LM parameters."""
    model = {f"flow_lm.{k}": v.detach().cpu() for k, v in tts_model.flow_lm.state_dict().items()}
    model.update({f"mimi.{k}": v.detach().cpu() for k, v in tts_model.mimi.state_dict().items()})
    out: dict[str, Any] = {"model": model}
    if ema is not None:
        out["ema"] = {f"flow_lm.{k}": v.to(model[f"flow_lm.{k}"].dtype) for k, v in ema.shadow.items()}
    return out


def lr_schedule(optimizer: torch.optim.Optimizer, kind: str, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then ``kind``: cosine decay to 10% of the peak rate, linear decay to 10%, or constant."""
    if kind not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule {kind!r} is not one of {LR_SCHEDULES}")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        decay = {"cosine": 0.5 * (1 + math.cos(math.pi * progress)), "linear": 1 - progress, "constant": 1.0}[kind]
        return 0.1 + 0.9 * decay
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def language_weights(cfg: dict[str, Any], items: list[Item]) -> dict[str, float]:
    """Each language of ``items`` (in order; their items must be contiguous) with its sampling weight from the
    profile's ``languages`` (1.0 in a one-language run)."""
    order = list(dict.fromkeys(it.language for it in items))
    runs = sum(1 for a, b in zip(items, items[1:], strict=False) if a.language != b.language) + 1
    if runs != len(order):
        raise ValueError("training items must be grouped by language (prepare() builds them so)")
    table = cfg.get("languages") or {}
    return {lang: float(table[lang]["weight"]) if lang in table else 1.0 for lang in order}


@torch.no_grad()
def validation_loss(objective: PocketObjective, items: list[Item], cfg: dict[str, Any], *, seed: int,
                    device: torch.device, autocast: Any, mean: torch.Tensor, std: torch.Tensor) -> dict[str, float]:
    """Frame-weighted loss (diagonal flow term + EOS, no dropout, no self-distillation) over held-out ``items``,
    overall (``val_loss``) and per language (``val_loss_<code>`` when there are several), with a fixed seed for
    voice crops and noise so evaluations compare; the caller's RNG streams are left as they were."""
    by_speaker = speakers(items)
    sums: dict[str, float] = {}
    frames: dict[str, int] = {}
    was_training = objective.training
    objective.eval()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        size = cfg["batch_size"]
        for lang in dict.fromkeys(it.language for it in items):
            idx = [i for i, it in enumerate(items) if it.language == lang]
            for start in range(0, len(idx), size):
                chunk = idx[start:start + size]
                batch = make_batch(items, chunk, by_speaker=by_speaker, voice_frames=cfg["voice_prompt_frames"],
                                   text_dropout=0.0, voice_dropout=0.0, mean=mean, std=std)
                batch = {k: v.to(device) for k, v in batch.items()}
                with autocast():
                    loss, _ = objective(batch, torch.tensor(False))
                n = sum(items[i].frames for i in chunk)
                sums[lang] = sums.get(lang, 0.0) + float(loss) * n
                frames[lang] = frames.get(lang, 0) + n
    objective.train(was_training)
    out = {"val_loss": sum(sums.values()) / sum(frames.values())}
    if len(sums) > 1:
        out.update({f"val_loss_{lang}": sums[lang] / frames[lang] for lang in sums})
    return out


def train(cfg: dict[str, Any], tts_model, items: list[Item], *, paths: RunPaths, budget: TimeBudget | None = None,
          resume: bool = True, stop_after: int | None = None, workspace: Workspace | None = None,
          val_items: list[Item] | None = None) -> TrainResult:
    """Train (or resume) ``tts_model.flow_lm`` on ``items`` per ``cfg`` (a loaded ``pocket`` profile); the
    validation loss over ``val_items`` every ``val_every`` steps.

    ``stop_after`` saves and stops with ``resume_needed`` at that step, the path a budget stop takes.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import gather_object
    from torch.utils.tensorboard import SummaryWriter

    ws = workspace or Workspace()
    suite = load_profile("suite", cfg["profile"])
    seed = suite["seed"]
    budget = budget or TimeBudget.from_profile(suite)
    # a rank whose batch dropped every voice prompt (or text) leaves those weights out of its graph
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(mixed_precision=mixed_precision(cfg["mixed_precision"]), cpu=not torch.cuda.is_available(),
                              kwargs_handlers=[ddp])
    device, main = accelerator.device, accelerator.is_main_process
    world, rank = accelerator.num_processes, accelerator.process_index
    seed_everything(seed)

    flow_lm = tts_model.flow_lm.to(device)
    flow_lm.train()
    objective = PocketObjective(flow_lm, cfg)
    accum, micro_size = cfg["grad_accum"], cfg["batch_size"]
    global_batch = micro_size * world * accum
    weights = language_weights(cfg, items)
    frames = [[it.frames for it in items if it.language == lang] for lang in weights]
    short = {lang or "the dataset": len(n) for lang, n in zip(weights, frames, strict=True) if len(n) < global_batch}
    if short:
        raise ValueError(f"too few training utterances {short} to fill one global batch of {global_batch} "
                         f"(batch_size {micro_size} x {world} processes x grad_accum {accum}): lower batch_size or grad_accum")
    # single-language batches of similar lengths, each language's share of every epoch proportional to its weight
    batches = mixed_batches(frames, list(weights.values()), global_batch, seed)
    sampler = ResumableSampler(len(items), seed=seed, batches=batches)
    by_speaker = speakers(items)
    params = [p for p in flow_lm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"],
                                  betas=(0.9, 0.95))
    max_steps = cfg["max_steps"]
    scheduler = lr_schedule(optimizer, cfg["lr_schedule"], cfg["warmup_steps"], max_steps)
    ema = EMA(flow_lm, cfg["ema_decay"])

    meta = {"model": cfg["model"], "flow_type": flow_lm.flow_type, "global_batch": global_batch, "seed": seed,
            "grad_accum": accum}
    if len(weights) > 1:  # the batch order depends on the languages and weights: another mix is another run
        meta["languages"] = weights
    state = training.Run(paths, meta=meta, max_steps=max_steps, save_every=cfg["save_every"],
                         keep=suite["keep_checkpoints"], budget=budget, stop_after=stop_after, main=main,
                         rank=rank, world=world, desc="pocket train", profile_steps=cfg["profile_steps"])
    if resume:
        extra = state.resume(find_artifacts(f"pocket/{paths.run}/checkpoints", ws), model=flow_lm,
                             optimizer=optimizer, scheduler=scheduler, scaler=accelerator.scaler, sampler=sampler)
        if extra is not None:
            ema.load_state_dict(extra["ema"])
    objective, optimizer = accelerator.prepare(objective, optimizer)
    state.restore_rng()

    mean, std = flow_lm.emb_mean.detach().cpu().float(), flow_lm.emb_std.detach().cpu().float()

    def checkpoint() -> Path | None:
        # every process draws its own dropout/noise numbers: Run.save keeps each one's RNG (a collective call)
        folder = state.save(model=flow_lm, optimizer=optimizer, scheduler=scheduler, scaler=accelerator.scaler,
                            sampler=sampler, extra={"ema": ema.state_dict()}, gather=gather_object,
                            write_more=lambda tmp: torch.save(package_payload(tts_model, ema), tmp / PACKAGE_CHECKPOINT))
        accelerator.wait_for_everyone()
        return folder

    stream = state.batches(sampler)
    val_every = cfg["val_every"] if val_items else 0
    writer = SummaryWriter(str(paths.tensorboard), purge_step=state.step) if main else None
    state.start(device)
    while state.step < max_steps:
        rows = next(stream)[rank::world]  # this process's share of one global batch (one language)
        distill = torch.rand(()) < cfg["distill_share"]  # once per optimiser step
        total_frames = sum(items[i].frames for i in rows)
        loss_sum, parts = torch.zeros((), device=device), {}
        for micro in range(accum):
            chunk = rows[micro * micro_size:(micro + 1) * micro_size]
            batch = make_batch(items, chunk, by_speaker=by_speaker, voice_frames=cfg["voice_prompt_frames"],
                               text_dropout=cfg["text_dropout"], voice_dropout=cfg["voice_dropout"],
                               mean=mean, std=std, multiplier=cfg["head_batch_multiplier"])
            batch = {k: v.to(device) for k, v in batch.items()}
            share = sum(items[i].frames for i in chunk) / total_frames  # micro-batch means -> the batch's mean
            sync = contextlib.nullcontext() if micro == accum - 1 else accelerator.no_sync(objective)
            with sync:
                with accelerator.autocast():
                    loss, micro_parts = objective(batch, distill)
                accelerator.backward(loss * share)
            loss_sum += loss.detach() * share
            for key, value in micro_parts.items():
                parts[key] = parts.get(key, 0.0) + value * share
        grad_norm = accelerator.clip_grad_norm_(params, cfg["max_grad_norm"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(flow_lm)
        state.step += 1
        step = state.step
        entry = {"step": step, "language": items[rows[0]].language, "loss": accelerator.reduce(loss_sum, "mean").item(),
                 "lr": scheduler.get_last_lr()[0], "grad_norm": float(grad_norm), **parts}
        if main and val_every and (step % val_every == 0 or step == max_steps):
            entry.update(validation_loss(accelerator.unwrap_model(objective), val_items, cfg, seed=seed, device=device,
                                         autocast=accelerator.autocast, mean=mean, std=std))
        if writer is not None:
            for key, value in entry.items():
                if key not in ("step", "language"):
                    writer.add_scalar(f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}",
                                      value, step)
        if state.end_step(entry, checkpoint, loss=f"{entry['loss']:.3f}", flow=f"{parts['flow']:.3f}"):
            break
    metrics = state.finish(device)
    if writer is not None:
        writer.close()
    history = state.history
    metrics.update({"precision": accelerator.mixed_precision, "processes": world, "batch_per_process": micro_size,
                    "grad_accum": accum, "effective_batch": global_batch, "seed": seed,
                    "train_utterances": len(items), "lr_schedule": cfg["lr_schedule"]})
    vals = [h["val_loss"] for h in history if "val_loss" in h]
    if vals:
        metrics["final_val_loss"] = vals[-1]
    if len(weights) > 1:
        metrics["languages"] = {lang: {"weight": w, "utterances": len(n),
                                       "steps": sum(1 for h in history if h.get("language") == lang)}
                                for (lang, w), n in zip(weights.items(), frames, strict=True)}
    flow_lm.eval()
    return TrainResult(state.status, state.step, history, paths, state.checkpoint, metrics)
