"""Distillation run: find the teacher, build the student, train it with stage 02's Accelerate loop under the
distillation objective, export it loadable with ``ParlerTTSForConditionalGeneration.from_pretrained``.

The student's batches are tokenised with its pruned prompt tokenizer; the teacher reads the same batch with
the prompt ids mapped back to its own (exact: every corpus token is kept). The teacher runs on the fly in
eval mode without gradients, on the same device and under the same autocast as the student.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ..parler.losses import decoder_inputs, valid_mask
from ..parler.model import DESCRIPTION_TOKENIZER_DIR, SOURCE_FILE, ParlerBundle, get_bundle
from ..parler.train import _fp32_forward, parler_of
from ..paths import Workspace, find_artifacts
from ..profiles import load_profile
from .losses import encoder_match_loss, hidden_match_loss, kd_loss
from .student import StudentSpec, architecture, build_student
from .vocab import PrunedTokenizer, select_prompt_vocab

STAGE = "03_parler_distill"
PROMPT_TOKENIZER_DIR = "prompt_tokenizer"
REPORT_FILE = "student_report.json"
# keys of the distill profile that override stage 02's training settings inside the shared loop
LOOP_KEYS = ("max_steps", "batch_size", "grad_accum", "learning_rate", "weight_decay", "warmup_steps",
             "lr_schedule", "max_grad_norm", "gradient_checkpointing", "mixed_precision", "codebook_weights",
             "max_audio_seconds", "codes_batch_size", "eval_every", "save_every", "sample_every",
             "sample_max_seconds", "sample_sentences", "sample_description")


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
    """Stage 02's training settings for this profile with the distillation run's overrides."""
    cfg = load_profile("parler", params["profile"])
    cfg.update({k: params[k] for k in LOOP_KEYS})
    cfg.update(model=student_source, dataset=params["dataset"], mode="full",
               freeze_text_encoder=not params["student_text_encoder_layers"])
    return cfg


class DistillObjective:
    """``loss_fn(model, batch)`` for stage 02's loop: CE + temperature KL to the teacher (+ optional hidden-state
    and description-encoder matching). Returns the loss and a dict of its parts for the loss curves."""

    def __init__(self, teacher: torch.nn.Module, params: dict[str, Any], *, student_to_teacher_ids: torch.Tensor,
                 decoder_layer_map: list[int] | None, match_encoder: bool):
        if teacher.config.prompt_cross_attention:
            raise ValueError("the teacher uses prompt cross-attention, which the distillation objective does not "
                             "support (Indic Parler-TTS and mini-v1 do not use it)")
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher.text_encoder.forward = _fp32_forward(self.teacher.text_encoder.forward)
        self.ids = student_to_teacher_ids
        self.temperature, self.ce_w, self.kd_w = float(params["temperature"]), float(params["ce_weight"]), \
            float(params["kd_weight"])
        self.hidden_w = float(params["hidden_weight"]) if decoder_layer_map is not None else 0.0
        self.encoder_w = float(params["encoder_weight"]) if match_encoder else 0.0
        self.layer_map = decoder_layer_map
        self.weights = list(params["codebook_weights"]) or None

    def _encoder_states(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        raw = model.text_encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        states = model.enc_to_dec_proj(raw) if getattr(model, "enc_to_dec_proj", None) is not None else raw
        return raw, states * batch["attention_mask"][..., None]

    def __call__(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        student = parler_of(model)
        labels = batch["labels"]
        dii = decoder_inputs(student, labels)
        hidden = self.hidden_w > 0
        common = {"decoder_input_ids": dii, "use_cache": False, "output_hidden_states": hidden,
                  "prompt_attention_mask": batch["prompt_attention_mask"], "attention_mask": batch["attention_mask"]}
        ids = self.ids.to(batch["prompt_input_ids"].device)
        with torch.no_grad():
            t_raw, t_states = self._encoder_states(self.teacher, batch)
            t_out = self.teacher(encoder_outputs=(t_states,), prompt_input_ids=ids[batch["prompt_input_ids"]], **common)
        s_raw, s_states = self._encoder_states(student, batch)
        s_out = model(encoder_outputs=(s_states,), prompt_input_ids=batch["prompt_input_ids"], **common)
        dec = student.config.decoder
        mask = valid_mask(labels, dii, dec.bos_token_id, dec.eos_token_id)
        res = kd_loss(s_out.logits, t_out.logits, labels, mask, temperature=self.temperature, ce_weight=self.ce_w,
                      kd_weight=self.kd_w, codebook_weights=self.weights)
        loss = res["loss"]
        parts = {"ce": res["ce"].item(), "kd": res["kd"].item()}
        if hidden:
            h = hidden_match_loss(s_out.decoder_hidden_states, t_out.decoder_hidden_states, self.layer_map,
                                  labels.shape[1], mask.any(-1))
            loss = loss + self.hidden_w * h
            parts["hidden"] = h.item()
        if self.encoder_w > 0:
            e = encoder_match_loss(s_raw, t_raw, batch["attention_mask"])
            loss = loss + self.encoder_w * e
            parts["encoder"] = e.item()
        return loss, parts


def make_student(params: dict[str, Any], teacher: ParlerBundle, texts: list[str]) -> tuple[ParlerBundle, dict[str, Any]]:
    """The initial student bundle (pruned prompt tokenizer when asked) and its construction report."""
    spec = StudentSpec.from_profile(params)
    if params["prune_prompt_vocab"]:
        kept = select_prompt_vocab(teacher.prompt_tokenizer, texts)
        prompt_tok: Any = PrunedTokenizer(teacher.prompt_tokenizer, kept)
    else:
        kept, prompt_tok = None, teacher.prompt_tokenizer
    student, report = build_student(teacher.model, spec, kept, seed=int(params["seed"]))
    report["teacher"] = architecture(teacher.model)
    report["student"] = architecture(student)
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
    temporary folder and swapped in, so a partial export never looks complete."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = bundle.model
    if getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    if "forward" in vars(model.text_encoder):
        del model.text_encoder.forward
    model.config.use_cache = model.config.decoder.use_cache = True
    model.save_pretrained(tmp, safe_serialization=True)
    model.generation_config.save_pretrained(tmp)
    bundle.prompt_tokenizer.save_pretrained(tmp / PROMPT_TOKENIZER_DIR)
    bundle.description_tokenizer.save_pretrained(tmp / DESCRIPTION_TOKENIZER_DIR)
    (tmp / REPORT_FILE).write_text(json.dumps(report, indent=1, default=str))
    (tmp / SOURCE_FILE).write_text(json.dumps({"source": "student", "stage": STAGE}))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory


def load_student(directory: str | Path, *, torch_dtype: torch.dtype | None = None) -> ParlerBundle:
    """A saved student with its own prompt tokenizer (pruned ids) and the description tokenizer."""
    from parler_tts import ParlerTTSForConditionalGeneration
    from transformers import AutoTokenizer

    directory = Path(directory)
    model = ParlerTTSForConditionalGeneration.from_pretrained(directory, torch_dtype=torch_dtype)
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

