"""Build a smaller student Parler-TTS from a (fine-tuned) teacher.

Three independent cuts, each optional:

* **decoder depth**: the student keeps ``decoder_layers`` of the teacher's layers, copied, chosen evenly
  spaced and always including the first and the last (the distil-whisper recipe, see :func:`layer_mapping`);
  or, with ``decoder_hidden``, a **narrower decoder** of a new width that starts from fresh weights and
  learns purely by distillation (its layers are matched to evenly spaced teacher layers through learnt
  projections, see :func:`hidden_layer_mapping` and :func:`attach_hidden_projections`);
* **description encoder depth**: the T5 encoder keeps ``text_encoder_layers`` blocks chosen the same way
  (the relative-position bias, which T5 stores only in block 0, is always copied from block 0); it is then
  trained to reproduce the teacher encoder's outputs (:func:`nbhelpers.distill.losses.encoder_match_loss`);
* **prompt vocabulary**: only the prompt-embedding rows in ``keep_prompt_ids`` survive, in that order, so
  new id ``i`` is old id ``keep_prompt_ids[i]`` (:mod:`nbhelpers.distill.vocab` chooses them and ships the
  matching tokenizer).

The audio codec is shared and copied unchanged, so teacher and student read and write the same codes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import torch
from parler_tts import ParlerTTSConfig, ParlerTTSForConditionalGeneration

import nbhelpers.parler.model  # noqa: F401  (registers the DAC wrapper that honours small codec widths)

DECODER_LAYER = re.compile(r"^decoder\.model\.decoder\.layers\.(\d+)\.(.+)$")
ENCODER_BLOCK = re.compile(r"^text_encoder\.encoder\.block\.(\d+)\.(.+)$")
REL_BIAS = "layer.0.SelfAttention.relative_attention_bias.weight"
COMPONENTS = ("text_encoder", "audio_encoder", "decoder", "embed_prompts", "enc_to_dec_proj")
# training-only submodule of a narrow student: never exported (see nbhelpers.distill.train.save_student)
PROJECTIONS = "distill_projections"


def layer_mapping(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer copied into each student layer: ``round_half_up(i * (L - 1) / (n - 1))``.

    Evenly spaced, first and last always kept; with one student layer only the last teacher layer
    (the one next to the output heads) is kept. Examples: 24 -> 6: [0, 5, 9, 14, 18, 23];
    24 -> 4: [0, 8, 15, 23]; 4 -> 2: [0, 3]; 2 -> 1: [1].
    """
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"a student needs between 1 and {teacher_layers} layers, got {student_layers}")
    if student_layers == 1:
        return [teacher_layers - 1]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [int(i * step + 0.5) for i in range(student_layers)]


def hidden_layer_mapping(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer whose output a fresh (narrow) student layer learns to match: ``round_half_up((i + 1) * L / n) - 1``.

    Evenly spaced with stride ``L / n`` and last to last, so no student layer is spent imitating the teacher's
    shallowest layer. Examples: 24 -> 6: [3, 7, 11, 15, 19, 23]; 24 -> 5: [4, 9, 13, 18, 23]; 4 -> 2: [1, 3];
    4 -> 1: [3]. (A copied-layer student matches the layers it was copied from: :func:`layer_mapping`.)
    """
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"a student needs between 1 and {teacher_layers} layers, got {student_layers}")
    return [int((i + 1) * teacher_layers / student_layers + 0.5) - 1 for i in range(student_layers)]


def attach_hidden_projections(student: ParlerTTSForConditionalGeneration, teacher_hidden: int, seed: int = 0
                              ) -> torch.nn.ModuleList:
    """Give a narrow student one learnt linear map (its width -> the teacher's) per decoder layer, as the
    submodule ``distill_projections``: trained with the student by the shared loop and saved in its training
    checkpoints, but left out of the exported model. Initialised from ``seed`` without touching the global RNG."""
    width = int(student.config.decoder.hidden_size)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        projections = torch.nn.ModuleList(torch.nn.Linear(width, teacher_hidden)
                                          for _ in range(student.config.decoder.num_hidden_layers))
    student.add_module(PROJECTIONS, projections)
    return projections


@dataclass
class StudentSpec:
    """What to cut. ``None`` keeps the teacher's value; ``decoder_hidden`` switches to a fresh narrow decoder."""

    decoder_layers: int
    decoder_hidden: int | None = None
    decoder_ffn: int | None = None
    decoder_heads: int | None = None
    text_encoder_layers: int | None = None

    @classmethod
    def from_profile(cls, params: dict[str, Any]) -> StudentSpec:
        """Read the ``student_*`` keys of the distill profile (0 means 'keep the teacher's')."""
        def opt(key: str) -> int | None:
            value = int(params.get(key, 0) or 0)
            return value or None
        return cls(decoder_layers=params["student_decoder_layers"], decoder_hidden=opt("student_decoder_hidden"),
                   decoder_ffn=opt("student_decoder_ffn"), decoder_heads=opt("student_decoder_heads"),
                   text_encoder_layers=opt("student_text_encoder_layers"))


def component_params(model: torch.nn.Module) -> dict[str, int]:
    """Parameters per Parler-TTS component plus ``total`` (the architecture-diff and target figures)."""
    counts = {name: sum(p.numel() for p in getattr(model, name).parameters())
              for name in COMPONENTS if getattr(model, name, None) is not None}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def architecture(model: ParlerTTSForConditionalGeneration) -> dict[str, Any]:
    """The sizes that differ between teacher and student, for the notebook's architecture table."""
    dec, txt = model.config.decoder, model.config.text_encoder
    return {"decoder_layers": dec.num_hidden_layers, "decoder_hidden": dec.hidden_size, "decoder_ffn": dec.ffn_dim,
            "decoder_heads": dec.num_attention_heads, "text_encoder_layers": txt.num_layers,
            "text_encoder_hidden": txt.d_model, "prompt_vocab": model.config.vocab_size,
            "codebooks": dec.num_codebooks, **{f"params_{k}": v for k, v in component_params(model).items()}}


def student_config(teacher: ParlerTTSForConditionalGeneration, spec: StudentSpec,
                   prompt_vocab: int | None = None) -> ParlerTTSConfig:
    """The teacher's config with the student's sizes (built from ``to_dict()``: a deep copy of a live
    config carries an attention implementation T5 rejects)."""
    cfg = teacher.config.to_dict()
    dec, txt = cfg["decoder"], cfg["text_encoder"]
    dec["num_hidden_layers"] = spec.decoder_layers
    if spec.decoder_hidden is not None:
        ratio = spec.decoder_hidden / dec["hidden_size"]
        heads = spec.decoder_heads or max(1, round(dec["num_attention_heads"] * ratio))
        if spec.decoder_hidden % heads:
            raise ValueError(f"decoder_hidden={spec.decoder_hidden} is not divisible by {heads} heads; "
                             "set student_decoder_heads to a divisor")
        dec.update(hidden_size=spec.decoder_hidden, num_attention_heads=heads,
                   ffn_dim=spec.decoder_ffn or max(1, round(dec["ffn_dim"] * ratio)),
                   num_key_value_heads=None, num_cross_attention_key_value_heads=None)
        if dec.get("cross_attention_hidden_size") not in (None, txt["d_model"]):
            dec["cross_attention_hidden_size"] = txt["d_model"]
    elif spec.decoder_ffn or spec.decoder_heads:
        raise ValueError("decoder_ffn / decoder_heads only apply to a narrow decoder (set decoder_hidden too)")
    if spec.text_encoder_layers is not None:
        if not 1 <= spec.text_encoder_layers <= txt["num_layers"]:
            raise ValueError(f"text_encoder_layers must be 1..{txt['num_layers']}, got {spec.text_encoder_layers}")
        txt["num_layers"] = spec.text_encoder_layers
    if prompt_vocab is not None:
        cfg["vocab_size"] = prompt_vocab
    for sub in ("text_encoder", "audio_encoder", "decoder"):
        cfg[sub].pop("_attn_implementation_autoset", None)
    return ParlerTTSConfig.from_dict(cfg)


def _source_key(key: str, dec_map: list[int] | None, enc_map: list[int] | None) -> str:
    """The teacher weight a student weight is copied from (same name unless a layer was renumbered)."""
    if dec_map is not None and (m := DECODER_LAYER.match(key)):
        return f"decoder.model.decoder.layers.{dec_map[int(m[1])]}.{m[2]}"
    if enc_map is not None and (m := ENCODER_BLOCK.match(key)):
        if m[2] == REL_BIAS:
            return f"text_encoder.encoder.block.0.{m[2]}"
        return f"text_encoder.encoder.block.{enc_map[int(m[1])]}.{m[2]}"
    return key


def build_student(teacher: ParlerTTSForConditionalGeneration, spec: StudentSpec,
                  keep_prompt_ids: list[int] | None = None, seed: int = 0
                  ) -> tuple[ParlerTTSForConditionalGeneration, dict[str, Any]]:
    """A student initialised from ``teacher`` per ``spec``; returns it with a report (layer mappings,
    copied and freshly initialised weights) that is saved next to the student."""
    narrow = spec.decoder_hidden is not None and spec.decoder_hidden != teacher.config.decoder.hidden_size
    t_dec, t_enc = teacher.config.decoder.num_hidden_layers, teacher.config.text_encoder.num_layers
    dec_map = None if narrow else layer_mapping(t_dec, spec.decoder_layers)
    hidden_map = hidden_layer_mapping(t_dec, spec.decoder_layers) if narrow else dec_map
    enc_map = layer_mapping(t_enc, spec.text_encoder_layers) if spec.text_encoder_layers else None
    vocab = len(keep_prompt_ids) if keep_prompt_ids is not None else None
    if keep_prompt_ids is not None and (min(keep_prompt_ids) < 0 or max(keep_prompt_ids) >= teacher.config.vocab_size):
        raise ValueError(f"keep_prompt_ids must lie in 0..{teacher.config.vocab_size - 1}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        student = ParlerTTSForConditionalGeneration(student_config(teacher, spec, vocab))
    teacher_sd = teacher.state_dict()
    fresh_prefixes = ("decoder.", "embed_prompts.", "enc_to_dec_proj.", "embed_positions.") if narrow else ()
    new_sd, copied, fresh = {}, [], []
    for key, value in student.state_dict().items():
        if key.startswith(fresh_prefixes):
            fresh.append(key)
            continue
        src = _source_key(key, dec_map, enc_map)
        if src not in teacher_sd:
            fresh.append(key)
            continue
        weight = teacher_sd[src]
        if key == "embed_prompts.weight" and keep_prompt_ids is not None:
            weight = weight[torch.tensor(keep_prompt_ids, dtype=torch.long)]
        if weight.shape != value.shape:
            raise RuntimeError(f"cannot copy teacher weight {src} {tuple(weight.shape)} into student {key} "
                               f"{tuple(value.shape)}")
        new_sd[key] = weight.detach().clone()
        copied.append(key)
    student.load_state_dict(new_sd, strict=False)
    student.eval()  # like from_pretrained: a train-mode codec would draw random numbers while encoding the codes
    student.generation_config = teacher.generation_config.__class__.from_dict(teacher.generation_config.to_dict())
    report = {"spec": asdict(spec), "narrow_decoder": narrow, "decoder_layer_map": dec_map, "hidden_layer_map": hidden_map,
              "text_encoder_layer_map": enc_map, "prompt_vocab": vocab or teacher.config.vocab_size,
              "teacher_prompt_vocab": teacher.config.vocab_size, "copied_tensors": len(copied),
              "fresh_tensors": len(fresh), "fresh_examples": fresh[:8]}
    return student, report


def architecture_diff(teacher: dict[str, Any], student: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{what, teacher, student, student/teacher}`` from two :func:`architecture` dicts (notebook table)."""
    rows = []
    for key, t in teacher.items():
        s = student.get(key)
        rows.append({"what": key, "teacher": t, "student": s,
                     "student/teacher": round(s / t, 3) if isinstance(t, (int, float)) and t else None})
    return rows
