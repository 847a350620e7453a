"""Distillation run: find the teacher, build the student, train it with stage 02's Accelerate loop under the
distillation objective, export it loadable with ``ParlerTTSForConditionalGeneration.from_pretrained``.

The student's batches are tokenised with its pruned prompt tokenizer; the teacher reads the same batch with
the prompt ids mapped back to its own (exact: every corpus token is kept). The teacher runs in eval mode
without gradients, on the same device and under the same autocast as the student: on every step, or once per
training example when the teacher cache is on (:mod:`nbhelpers.distill.teacher_cache`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import out_of_space, swap_in
from ..parler.losses import decoder_inputs, valid_mask
from ..parler.model import DESCRIPTION_TOKENIZER_DIR, SOURCE_FILE, ParlerBundle, bnb_config, get_bundle
from ..parler.train import RunPaths, _fp32_forward, parler_of, process_state, run_seed
from ..paths import Workspace, find_artifacts
from . import teacher_cache as tc
from .losses import encoder_match_loss, hidden_match_loss, kd_loss, topk_logits
from .student import PROJECTIONS, StudentSpec, architecture, attach_hidden_projections, build_student
from .vocab import PrunedTokenizer, select_prompt_vocab

STAGE = "03_parler_distill"
PROMPT_TOKENIZER_DIR = "prompt_tokenizer"
REPORT_FILE = "student_report.json"
TEACHER_CACHE_DIR = "teacher_cache"
# the distill profile's settings of stage 02's shared loop (the loop reads them under the same names)
LOOP_KEYS = ("max_steps", "max_epochs", "max_train_utterances", "batch_size", "grad_accum", "learning_rate",
             "weight_decay", "warmup_steps", "lr_schedule", "max_grad_norm", "gradient_checkpointing", "compile",
             "attention", "mixed_precision", "codebook_weights", "max_audio_seconds", "min_audio_seconds",
             "max_prompt_tokens", "max_description_tokens", "codes_batch_size", "encode_workers", "eval_every",
             "save_every", "wandb_project", "sample_every", "sample_max_seconds", "sample_max_chars_per_second",
             "sample_sentences", "sample_description", "gen_eval_every", "gen_eval_items", "gen_eval_max_seconds",
             "gen_eval_language", "profile_steps", "dataset", "hub_license", "profile")


def find_teacher(source: str, workspace: Workspace | None = None) -> str:
    """``auto``: the newest stage-02 export in the workspace or under /kaggle/input; else pass through
    (``tiny``, a hub id / short name, or a local folder)."""
    if source != "auto":
        return source
    found = [p.parent for p in find_artifacts(f"parler/*/export/{SOURCE_FILE}", workspace)]
    if not found:
        raise FileNotFoundError("no fine-tuned teacher found (parler/<run>/export/ in the workspace or a Kaggle "
                                "input): run notebook 02_parler_finetune first, attach its output, or set "
                                "teacher to a model folder or hub id in profiles/distill.toml")
    return str(max(found, key=lambda p: p.stat().st_mtime))


def loop_config(params: dict[str, Any], student_source: str) -> dict[str, Any]:
    """Stage 02's loop settings for the distillation run, all from the distill profile: full training of the
    student on one dataset (no mix, no adapters), the text encoder trained only when the student keeps some."""
    return {**{k: params[k] for k in LOOP_KEYS}, "model": student_source, "mode": "full", "mix": {},
            "freeze_text_encoder": not params["student_text_encoder_layers"], "gen_eval_asr_model": params["asr_model"]}


class DistillObjective:
    """``loss_fn(model, batch)`` for stage 02's loop: CE + temperature KL to the teacher (+ optional hidden-state
    and description-encoder matching). Returns the loss and a dict of its parts for the loss curves.

    ``cache`` (a :mod:`~nbhelpers.distill.teacher_cache` store) serves the teacher's outputs for examples it has
    seen; ``cache_info`` is what :meth:`cache_report` adds to the stage record."""

    def __init__(self, teacher: torch.nn.Module, params: dict[str, Any], *, student_to_teacher_ids: torch.Tensor,
                 decoder_layer_map: list[int] | None, match_encoder: bool,
                 cache: tc.MemoryCache | tc.DiskCache | None = None, cache_info: dict[str, Any] | None = None):
        if teacher.config.prompt_cross_attention:
            raise ValueError("the teacher uses prompt cross-attention, which the distillation objective does not "
                             "support (Indic Parler-TTS and mini-v1 do not use it)")
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher.text_encoder.forward = _fp32_forward(self.teacher.text_encoder.forward)
        self.ids = student_to_teacher_ids
        self.temperature, self.ce_w, self.kd_w = params["temperature"], params["ce_weight"], params["kd_weight"]
        self.topk = params["kd_topk"]
        self.hidden_w = params["hidden_weight"] if decoder_layer_map is not None else 0.0
        self.encoder_w = params["encoder_weight"] if match_encoder else 0.0
        self.layer_map = decoder_layer_map if self.hidden_w > 0 else None
        self.weights = list(params["codebook_weights"]) or None
        self.cache, self.cache_info = cache, dict(cache_info or {"teacher_cache": "off"})
        self.teacher_batches = self.cached_batches = 0

    def _encoder_states(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        raw = model.text_encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        states = model.enc_to_dec_proj(raw) if getattr(model, "enc_to_dec_proj", None) is not None else raw
        return raw, states * batch["attention_mask"][..., None]

    def _run_teacher(self, batch: dict[str, torch.Tensor], prompt_ids: torch.Tensor,
                     common: dict[str, Any]) -> tc.TeacherTargets:
        """One teacher forward: logits (or their top-k view), mapped hidden layers and encoder output, fp32."""
        labels = batch["labels"]
        b, length, k = labels.shape
        with torch.no_grad():
            raw, states = self._encoder_states(self.teacher, batch)
            out = self.teacher(encoder_outputs=(states,), prompt_input_ids=prompt_ids,
                               output_hidden_states=self.layer_map is not None, **common)
        self.teacher_batches += 1
        logits = out.logits[:, -length:].float().reshape(b, k, length, -1)
        hidden = [out.decoder_hidden_states[j + 1][:, -length:].float() for j in self.layer_map or ()]
        return tc.TeacherTargets(topk_logits(logits, self.topk, self.temperature) if self.topk else logits, hidden,
                                 raw.float() if self.encoder_w > 0 else None)

    def teacher_targets(self, batch: dict[str, torch.Tensor], mask: torch.Tensor,
                        common: dict[str, Any]) -> tc.TeacherTargets:
        """The teacher's outputs for this batch: from the cache when every example is in it, else one teacher
        forward whose results are stored; with a cache, always read back through its storage format."""
        prompt_ids = self.ids.to(batch["prompt_input_ids"].device)[batch["prompt_input_ids"]]
        if self.cache is None:
            return self._run_teacher(batch, prompt_ids, common)
        keys = tc.row_keys(prompt_ids, batch["prompt_attention_mask"], batch["input_ids"], batch["attention_mask"],
                           batch["labels"])
        entries = [self.cache.get(key) for key in keys]
        conf = self.teacher.config
        if any(e is None for e in entries):
            fresh = tc.to_entries(self._run_teacher(batch, prompt_ids, common), keys, mask, batch["attention_mask"],
                                  vocab=int(conf.decoder.vocab_size))
            for i, (key, entry) in enumerate(zip(keys, entries, strict=True)):
                if entry is None:
                    self.cache.put(key, fresh[i])
                    entries[i] = fresh[i]
        else:
            self.cached_batches += 1
        return tc.from_entries(entries, mask, batch["attention_mask"], vocab=int(conf.decoder.vocab_size),
                               hidden_width=int(conf.decoder.hidden_size), encoder_width=int(conf.text_encoder.d_model))

    def __call__(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        student = parler_of(model)
        labels = batch["labels"]
        dii = decoder_inputs(student, labels)
        dec = student.config.decoder
        mask = valid_mask(labels, dii, dec.bos_token_id, dec.eos_token_id)
        hidden = self.layer_map is not None
        common = {"decoder_input_ids": dii, "use_cache": False,
                  "prompt_attention_mask": batch["prompt_attention_mask"], "attention_mask": batch["attention_mask"]}
        target = self.teacher_targets(batch, mask, common)
        s_raw, s_states = self._encoder_states(student, batch)
        s_out = model(encoder_outputs=(s_states,), prompt_input_ids=batch["prompt_input_ids"],
                      output_hidden_states=hidden, **common)
        res = kd_loss(s_out.logits, target.logits, labels, mask, temperature=self.temperature, ce_weight=self.ce_w,
                      kd_weight=self.kd_w, codebook_weights=self.weights)
        loss = res["loss"]
        parts = {"ce": res["ce"].item(), "kd": res["kd"].item()}
        if hidden:
            steps = labels.shape[1]
            s_layers = [s_out.decoder_hidden_states[i + 1][:, -steps:] for i in range(len(self.layer_map))]
            h = hidden_match_loss(s_layers, target.hidden, mask.any(-1), getattr(student, PROJECTIONS, None))
            loss = loss + self.hidden_w * h
            parts["hidden"] = h.item()
        if self.encoder_w > 0:
            e = encoder_match_loss(s_raw, target.encoder, batch["attention_mask"])
            loss = loss + self.encoder_w * e
            parts["encoder"] = e.item()
        return loss, parts

    def cache_report(self) -> dict[str, Any]:
        """The cache decision and estimate plus how often the teacher ran (for the stage record)."""
        info = {**self.cache_info, "teacher_forward_batches": self.teacher_batches,
                "teacher_cached_batches": self.cached_batches}
        if self.cache is not None:
            info["teacher_cache_entries"] = len(self.cache)
        return info


def teacher_cache_plan(params: dict[str, Any], teacher: ParlerBundle, data: Any, *, hidden_layers: int,
                       match_encoder: bool) -> tuple[str, dict[str, Any]]:
    """Estimate the teacher cache's size for this run's training split and decide its mode (the
    ``teacher_cache*`` keys); returns the mode and the facts the stage record logs."""
    train = data["train"]
    rows = len(train)
    if params["max_train_utterances"] > 0:
        rows = min(rows, params["max_train_utterances"])
    max_frames = int(params["max_audio_seconds"] * teacher.frame_rate)
    durations = list(train["duration"][:rows]) if "duration" in train.column_names else None
    desc = [0] * rows
    if match_encoder:
        desc = [len(ids) for ids in teacher.description_tokenizer(list(train["text_description"][:rows])).input_ids]
    kept = [(f, d) for f, d in zip(tc.frames_of(durations, rows, teacher.frame_rate, max_frames), desc, strict=True)
            if f <= max_frames]  # the trainer drops longer rows
    conf = teacher.model.config
    sizes = {"codebooks": int(conf.decoder.num_codebooks), "vocab": int(conf.decoder.vocab_size),
             "topk": params["kd_topk"], "hidden_layers": hidden_layers,
             "hidden_width": int(conf.decoder.hidden_size), "encoder_width": int(conf.text_encoder.d_model)}
    estimate = sum(tc.entry_bytes(frames=f, description_tokens=d, **sizes) for f, d in kept)
    max_gb = params["teacher_cache_max_gb"]
    mode, reason = tc.decide(params["teacher_cache"], estimate, max_gb)
    info = {"teacher_cache": mode, "teacher_cache_setting": params["teacher_cache"],
            "teacher_cache_estimate_gb": round(estimate / 1e9, 6), "teacher_cache_max_gb": max_gb,
            "teacher_cache_examples": len(kept), "teacher_cache_reason": reason
            + ("" if durations is not None else " (no duration column: every row counted at max_audio_seconds)"),
            "kd_topk": params["kd_topk"]}
    return mode, info


def make_objective(params: dict[str, Any], teacher: ParlerBundle, student: ParlerBundle, report: dict[str, Any],
                   data: Any, *, workspace: Workspace) -> DistillObjective:
    """The distillation objective for a run: hidden-state matching on the report's ``hidden_layer_map`` (when
    ``hidden_weight`` > 0), encoder matching when the encoder is cut, and the teacher cache the profile asks for
    (on disk in ``distill/<run>/teacher_cache/``)."""
    layer_map = report["hidden_layer_map"] if params["hidden_weight"] > 0 else None
    match_encoder = bool(params["student_text_encoder_layers"])
    mode, info = teacher_cache_plan(params, teacher, data, hidden_layers=len(layer_map or ()),
                                    match_encoder=match_encoder and params["encoder_weight"] > 0)
    cache: tc.MemoryCache | tc.DiskCache | None = None
    if mode == "memory":
        cache = tc.MemoryCache()
    elif mode == "disk":
        folder = RunPaths(workspace.stage_dir("distill"), params["run"]).run_dir / TEACHER_CACHE_DIR
        fingerprint = {"teacher": tc.model_fingerprint(teacher.model), "kd_topk": params["kd_topk"],
                       "temperature": params["temperature"] if params["kd_topk"] else None,
                       "hidden_layers": layer_map, "encoder": match_encoder and params["encoder_weight"] > 0}
        with process_state().main_process_first():  # the main process checks/cleans the folder first
            cache = tc.DiskCache(folder, fingerprint)
        info.update(teacher_cache_dir=str(folder), teacher_cache_found_entries=cache.found_at_start,
                    teacher_cache_rebuilt=cache.rebuilt)
    return DistillObjective(teacher.model, params, student_to_teacher_ids=student_to_teacher_ids(student),
                            decoder_layer_map=layer_map, match_encoder=match_encoder, cache=cache, cache_info=info)


def make_student(params: dict[str, Any], teacher: ParlerBundle, texts: list[str]) -> tuple[ParlerBundle, dict[str, Any]]:
    """The initial student bundle (pruned prompt tokenizer when asked) and its construction report."""
    spec = StudentSpec.from_profile(params)
    if params["prune_prompt_vocab"]:
        kept = select_prompt_vocab(teacher.prompt_tokenizer, texts)
        prompt_tok: Any = PrunedTokenizer(teacher.prompt_tokenizer, kept)
    else:
        kept, prompt_tok = None, teacher.prompt_tokenizer
    student, report = build_student(teacher.model, spec, kept, seed=run_seed(params))
    report["teacher"] = architecture(teacher.model)
    report["student"] = architecture(student)
    if report["narrow_decoder"] and params["hidden_weight"] > 0:
        proj = attach_hidden_projections(student, int(teacher.model.config.decoder.hidden_size), seed=run_seed(params))
        report["hidden_projections"] = {"layers": len(proj), "params": sum(p.numel() for p in proj.parameters()),
                                        "exported": False}
    return ParlerBundle(student, prompt_tok, teacher.description_tokenizer, "student"), report


def student_to_teacher_ids(bundle: ParlerBundle) -> torch.Tensor:
    """Lookup tensor from the student's prompt ids to the teacher's (identity without pruning)."""
    tok = bundle.prompt_tokenizer
    if isinstance(tok, PrunedTokenizer):
        return torch.tensor(tok.kept_ids, dtype=torch.long)
    return torch.arange(int(bundle.model.config.vocab_size))


def save_student(bundle: ParlerBundle, directory: str | Path, report: dict[str, Any]) -> Path:
    """Save the student: weights + generation config at the root (``from_pretrained`` loads it), the prompt
    tokenizer in ``prompt_tokenizer/`` and the description tokenizer in ``description_tokenizer/``; written to a
    temporary folder and swapped in, so a partial export never looks complete. Training-only hidden-state
    projections stay out of it (they live in the training checkpoints)."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with out_of_space("the student export", tmp, cleanup=tmp, checkpoints=directory.parent / "checkpoints"):
        _write_student(bundle, tmp, report)
        swap_in(tmp, directory)
    return directory


def _write_student(bundle: ParlerBundle, tmp: Path, report: dict[str, Any]) -> None:
    """The files of :func:`save_student`, written into the folder ``tmp``."""
    tmp.mkdir(parents=True)
    model = bundle.model
    if getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    if "forward" in vars(model.text_encoder):
        del model.text_encoder.forward
    model.config.use_cache = model.config.decoder.use_cache = True
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith(PROJECTIONS + ".")}
    model.save_pretrained(tmp, state_dict=weights, safe_serialization=True)
    model.generation_config.save_pretrained(tmp)
    bundle.prompt_tokenizer.save_pretrained(tmp / PROMPT_TOKENIZER_DIR)
    bundle.description_tokenizer.save_pretrained(tmp / DESCRIPTION_TOKENIZER_DIR)
    (tmp / REPORT_FILE).write_text(json.dumps(report, indent=1, default=str))
    (tmp / SOURCE_FILE).write_text(json.dumps({"source": "student", "stage": STAGE}))


def load_student(directory: str | Path, *, torch_dtype: torch.dtype | None = None, quantization: str | None = None,
                 device_map: Any = None) -> ParlerBundle:
    """A saved student with its own prompt tokenizer (pruned ids) and the description tokenizer; ``quantization``
    ``"8bit"`` / ``"4bit"`` loads a bitsandbytes copy (CUDA only, placed by ``device_map``)."""
    from parler_tts import ParlerTTSForConditionalGeneration
    from transformers import AutoTokenizer

    directory = Path(directory)
    model = ParlerTTSForConditionalGeneration.from_pretrained(
        directory, torch_dtype=torch_dtype, device_map=device_map,
        quantization_config=bnb_config(quantization) if quantization else None)
    ptok_dir = directory / PROMPT_TOKENIZER_DIR
    if (ptok_dir / "pruned_vocab.json").is_file():
        prompt_tok: Any = PrunedTokenizer.from_pretrained(ptok_dir)
    else:
        prompt_tok = AutoTokenizer.from_pretrained(ptok_dir)
    desc_tok = AutoTokenizer.from_pretrained(directory / DESCRIPTION_TOKENIZER_DIR)
    prompt_tok.padding_side, desc_tok.padding_side = "left", "right"
    return ParlerBundle(model, prompt_tok, desc_tok, "student")


def load_teacher(source: str, *, workspace: Workspace, seed: int) -> ParlerBundle:
    """The teacher bundle (``tiny`` is materialised under ``<workspace>/parler/base`` like stage 02 does)."""
    return get_bundle(source, workspace_dir=workspace.stage_dir("parler", "base"), seed=seed)

