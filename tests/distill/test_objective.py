import pytest
import torch

from nbhelpers.distill.pipeline import params_for
from nbhelpers.distill.train import DistillObjective, make_student, student_to_teacher_ids
from nbhelpers.parler.data import Collator, Example


def _batch(bundle, texts, k):
    g = torch.Generator().manual_seed(0)
    examples = [Example(torch.randint(0, 64, (k, 6 + i), generator=g).to(torch.int16),
                        bundle.prompt_tokenizer(t)["input_ids"],
                        bundle.description_tokenizer("A calm voice.")["input_ids"], i) for i, t in enumerate(texts)]
    return Collator(bundle)(examples)


def test_objective_trains_a_narrow_pruned_student_with_a_smaller_encoder(kannada_corpus):
    from nbhelpers.parler.model import build_tiny

    tiny_teacher = build_tiny(seed=5)  # the objective freezes its teacher: keep the shared fixture untouched
    params = params_for("smoke", {"student_decoder_layers": 1, "student_decoder_hidden": 16,
                                  "student_text_encoder_layers": 1})
    student, report = make_student(params, tiny_teacher, kannada_corpus)
    assert report["narrow_decoder"] and report["prompt_vocab"] < report["teacher_prompt_vocab"]
    ids = student_to_teacher_ids(student)
    objective = DistillObjective(tiny_teacher.model, params, student_to_teacher_ids=ids, decoder_layer_map=None,
                                 match_encoder=True)
    batch = _batch(student, kannada_corpus[:3], tiny_teacher.num_codebooks)
    # the teacher reads exactly its own tokenisation of the same texts
    teacher_prompts = [tiny_teacher.prompt_tokenizer(t)["input_ids"] for t in kannada_corpus[:3]]
    mapped = ids[batch["prompt_input_ids"]]
    for row, mask, expected in zip(mapped, batch["prompt_attention_mask"], teacher_prompts, strict=True):
        assert row[mask.bool()].tolist() == expected
    student.model.train()
    loss, parts = objective(student.model, batch)
    assert torch.isfinite(loss) and {"ce", "kd", "encoder"} <= set(parts) and "hidden" not in parts
    loss.backward()
    assert student.model.decoder.lm_heads[0].weight.grad is not None
    assert student.model.text_encoder.encoder.block[0].layer[0].SelfAttention.q.weight.grad is not None
    assert all(p.grad is None for p in tiny_teacher.model.parameters())


def test_cli_mapping_and_help(capsys):
    from nbhelpers.distill.__main__ import main

    assert main(["mapping", "24", "6"]) == 0
    assert '"student_from_teacher": [0, 5, 9, 14, 18, 23]' in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["run", "--help"])
    assert stop.value.code == 0 and "--stop-after" in capsys.readouterr().out
