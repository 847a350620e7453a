import pytest
import torch

from nbhelpers.distill.train import DistillObjective, make_student, student_to_teacher_ids
from nbhelpers.parler.data import Collator, Example
from nbhelpers.profiles import load_profile


def _batch(bundle, texts, k):
    g = torch.Generator().manual_seed(0)
    examples = [Example(torch.randint(0, 64, (k, 6 + i), generator=g).to(torch.int16),
                        bundle.prompt_tokenizer(t)["input_ids"],
                        bundle.description_tokenizer("A calm voice.")["input_ids"], i) for i, t in enumerate(texts)]
    return Collator(bundle)(examples)


def test_objective_trains_a_narrow_pruned_student_with_a_smaller_encoder(kannada_corpus):
    from nbhelpers.parler.model import build_tiny

    tiny_teacher = build_tiny(seed=5)  # the objective freezes its teacher: keep the shared fixture untouched
    params = load_profile("distill", "smoke", {"student_decoder_layers": 1, "student_decoder_hidden": 16,
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


def test_narrow_student_matches_hidden_states_through_projections_that_are_not_exported(kannada_corpus, tmp_path):
    from parler_tts import ParlerTTSForConditionalGeneration
    from safetensors.torch import load_file

    from nbhelpers.distill.student import PROJECTIONS
    from nbhelpers.distill.train import load_student, save_student
    from nbhelpers.parler.model import ParlerBundle, build_tiny

    teacher = build_tiny(seed=5)  # 4 layers, width 32
    params = load_profile("distill", "smoke", {"student_decoder_layers": 2, "student_decoder_hidden": 16})
    student, report = make_student(params, teacher, kannada_corpus)
    assert report["narrow_decoder"] and report["decoder_layer_map"] is None
    assert report["hidden_layer_map"] == [1, 3] and report["hidden_projections"]["layers"] == 2
    projections = getattr(student.model, PROJECTIONS)
    assert [(p.in_features, p.out_features) for p in projections] == [(16, 32), (16, 32)]
    objective = DistillObjective(teacher.model, params, student_to_teacher_ids=student_to_teacher_ids(student),
                                 decoder_layer_map=report["hidden_layer_map"], match_encoder=False)
    student.model.train()
    loss, parts = objective(student.model, _batch(student, kannada_corpus[:3], teacher.num_codebooks))
    assert parts["hidden"] > 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.weight.grad is not None and p.weight.grad.abs().sum() > 0 for p in projections)
    # the projections are trainable parameters of the training model (so the loop optimises and checkpoints them)
    names = {n for n, p in student.model.named_parameters() if p.requires_grad}
    assert {f"{PROJECTIONS}.0.weight", f"{PROJECTIONS}.1.bias"} <= names
    folder = save_student(ParlerBundle(student.model, student.prompt_tokenizer, student.description_tokenizer,
                                       "student"), tmp_path / "student", report)
    saved = load_file(str(folder / "model.safetensors"))
    assert saved and not [k for k in saved if PROJECTIONS in k]
    again = ParlerTTSForConditionalGeneration.from_pretrained(folder)
    assert not hasattr(again, PROJECTIONS) and again.config.decoder.hidden_size == 16
    for name, value in again.state_dict().items():
        assert torch.equal(value, student.model.state_dict()[name]), name
    assert load_student(folder).model.config.decoder.num_hidden_layers == 2
    assert hasattr(student.model, PROJECTIONS)  # exporting leaves the training model as it was


def test_copied_student_has_no_projections(kannada_corpus):
    from nbhelpers.distill.student import PROJECTIONS
    from nbhelpers.parler.model import build_tiny

    student, report = make_student(load_profile("distill", "smoke"), build_tiny(seed=5), kannada_corpus)
    assert report["hidden_layer_map"] == report["decoder_layer_map"] == [0, 3]
    assert not hasattr(student.model, PROJECTIONS) and "hidden_projections" not in report
