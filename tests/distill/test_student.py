import pytest
import torch

from nbhelpers.distill.student import (
    StudentSpec,
    build_student,
    component_params,
    hidden_layer_mapping,
    layer_mapping,
)


@pytest.mark.parametrize("teacher,student,expected", [
    (24, 6, [0, 5, 9, 14, 18, 23]),   # the documented Indic Parler-TTS mapping
    (24, 4, [0, 8, 15, 23]),
    (4, 2, [0, 3]),
    (4, 3, [0, 2, 3]),                 # 1.5 rounds half up
    (2, 1, [1]),                       # one layer: keep the last
    (5, 5, [0, 1, 2, 3, 4]),
])
def test_layer_mapping_picks_documented_layers(teacher, student, expected):
    assert layer_mapping(teacher, student) == expected


def test_layer_mapping_rejects_impossible_sizes():
    with pytest.raises(ValueError):
        layer_mapping(4, 5)
    with pytest.raises(ValueError):
        layer_mapping(4, 0)
    with pytest.raises(ValueError):
        hidden_layer_mapping(4, 5)


@pytest.mark.parametrize("teacher,student,expected", [
    (24, 6, [3, 7, 11, 15, 19, 23]),   # stride 4, last to last
    (24, 5, [4, 9, 13, 18, 23]),       # stride 4.8, rounded half up
    (4, 2, [1, 3]),
    (4, 1, [3]),
    (5, 5, [0, 1, 2, 3, 4]),
])
def test_hidden_layer_mapping_for_fresh_students_is_evenly_spaced_last_to_last(teacher, student, expected):
    assert hidden_layer_mapping(teacher, student) == expected


def test_depth_student_copies_mapped_layers(tiny_teacher):
    teacher = tiny_teacher.model
    keep = list(range(0, 200, 2))
    student, report = build_student(teacher, StudentSpec(decoder_layers=2, text_encoder_layers=2), keep)
    assert report["decoder_layer_map"] == [0, 3] and report["text_encoder_layer_map"] == [0, 2]
    t_layers, s_layers = teacher.decoder.model.decoder.layers, student.decoder.model.decoder.layers
    for i, j in enumerate([0, 3]):
        for (n, ps), (_, pt) in zip(s_layers[i].named_parameters(), t_layers[j].named_parameters(), strict=True):
            assert torch.equal(ps, pt), n
    s_blocks, t_blocks = student.text_encoder.encoder.block, teacher.text_encoder.encoder.block
    assert torch.equal(s_blocks[1].layer[1].DenseReluDense.wi.weight, t_blocks[2].layer[1].DenseReluDense.wi.weight)
    assert torch.equal(student.embed_prompts.weight, teacher.embed_prompts.weight[keep])
    assert torch.equal(student.decoder.lm_heads[0].weight, teacher.decoder.lm_heads[0].weight)
    s, t = component_params(student), component_params(teacher)
    assert s["decoder"] < t["decoder"] and s["text_encoder"] < t["text_encoder"]
    assert s["embed_prompts"] == len(keep) * teacher.config.decoder.hidden_size
    assert s["audio_encoder"] == t["audio_encoder"]


def test_narrow_student_is_fresh_and_runs(tiny_teacher):
    teacher = tiny_teacher.model
    student, report = build_student(teacher, StudentSpec(decoder_layers=2, decoder_hidden=16))
    assert report["narrow_decoder"] and report["decoder_layer_map"] is None and report["hidden_layer_map"] == [1, 3]
    assert student.config.decoder.hidden_size == 16 and student.enc_to_dec_proj is not None
    k = teacher.config.decoder.num_codebooks
    labels = torch.randint(0, 64, (2, 7, k))
    out = student(input_ids=torch.randint(3, 200, (2, 5)), attention_mask=torch.ones(2, 5, dtype=torch.long),
                  prompt_input_ids=torch.randint(3, 200, (2, 6)), prompt_attention_mask=torch.ones(2, 6, dtype=torch.long),
                  labels=labels)
    assert out.logits.shape == (2 * k, 6 + 7, teacher.config.decoder.vocab_size)
    assert torch.isfinite(out.loss)


def test_student_saves_and_loads_with_parler(tiny_teacher, tmp_path):
    from parler_tts import ParlerTTSForConditionalGeneration

    student, _ = build_student(tiny_teacher.model, StudentSpec(decoder_layers=1, text_encoder_layers=1), [0, 1, 2, 5, 9])
    student.save_pretrained(tmp_path)
    again = ParlerTTSForConditionalGeneration.from_pretrained(tmp_path)
    assert again.config.vocab_size == 5 and again.config.decoder.num_hidden_layers == 1
    for (n, a), (_, b) in zip(student.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
