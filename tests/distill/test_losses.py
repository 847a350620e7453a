import pytest
import torch

from nbhelpers.distill.losses import encoder_match_loss, hidden_match_loss, kd_loss, valid_mask
from nbhelpers.distill.student import StudentSpec, build_student
from nbhelpers.parler.data import delayed_labels
from nbhelpers.parler.losses import decoder_inputs


def delayed_batch(model, lengths, seed=0):
    """Labels like stage 02's collator makes them (delay pattern, EOS tail, -100 padding) for random codes."""
    dec = model.config.decoder
    k, g = dec.num_codebooks, torch.Generator().manual_seed(seed)
    rows = [delayed_labels(torch.randint(0, dec.vocab_size - 1, (k, n), generator=g), dec.bos_token_id,
                           dec.eos_token_id) for n in lengths]
    t = max(r.shape[0] for r in rows)
    labels = torch.stack([torch.cat([r, torch.full((t - r.shape[0], k), -100)]) for r in rows])
    b = len(lengths)
    inputs = {"input_ids": torch.randint(3, 200, (b, 6), generator=g), "attention_mask": torch.ones(b, 6, dtype=torch.long),
              "prompt_input_ids": torch.randint(3, 200, (b, 5), generator=g),
              "prompt_attention_mask": torch.ones(b, 5, dtype=torch.long)}
    return inputs, labels, decoder_inputs(model, labels)


@pytest.fixture(scope="module")
def batch(tiny_teacher):
    model = tiny_teacher.model.eval()
    inputs, labels, dec_ids = delayed_batch(model, [9, 5])
    with torch.no_grad():
        out = model(**inputs, decoder_input_ids=dec_ids, output_hidden_states=True)
        upstream = model(**inputs, labels=labels)  # upstream shifts the labels itself and computes its loss
    dec = model.config.decoder
    mask = valid_mask(labels, dec_ids, dec.bos_token_id, dec.eos_token_id)
    return {"inputs": inputs, "labels": labels, "dec_ids": dec_ids, "out": out, "mask": mask, "upstream": upstream}


def test_mask_and_ce_match_upstream_loss(batch):
    assert batch["mask"].any() and not batch["mask"].all()  # padding, BOS and EOS tails are excluded
    res = kd_loss(batch["out"].logits, None, batch["labels"], batch["mask"])
    assert torch.allclose(batch["out"].logits, batch["upstream"].logits, atol=1e-6)
    assert torch.allclose(res["ce"], batch["upstream"].loss, atol=1e-5)


def test_kd_is_zero_when_student_is_teacher(batch):
    logits = batch["out"].logits
    res = kd_loss(logits, logits.clone(), batch["labels"], batch["mask"], temperature=2.0)
    assert res["kd"].abs() < 1e-6
    pure_kd = kd_loss(logits, logits.clone(), batch["labels"], batch["mask"], ce_weight=0.0)
    assert pure_kd["loss"].abs() < 1e-6


def test_kd_is_positive_for_a_different_student(tiny_teacher, batch):
    student, _ = build_student(tiny_teacher.model, StudentSpec(decoder_layers=2))
    with torch.no_grad():
        s_out = student.eval()(**batch["inputs"], decoder_input_ids=batch["dec_ids"])
    res = kd_loss(s_out.logits, batch["out"].logits, batch["labels"], batch["mask"], ce_weight=0.0)
    assert res["kd"] > 1e-4 and (res["per_codebook_kd"] > 0).all()


def test_masked_positions_do_not_contribute(batch):
    logits, labels, mask = batch["out"].logits, batch["labels"], batch["mask"]
    b, t, k = labels.shape
    student = logits.clone() + 0.3 * torch.randn_like(logits)
    base = kd_loss(student, logits, labels, mask)
    # scramble every masked audio position of the student and the teacher: nothing may change
    pos = (~mask).permute(0, 2, 1).reshape(b * k, t)
    noisy_s, noisy_t = student.clone(), logits.clone()
    noisy_s[:, -t:][pos] = torch.randn_like(noisy_s[:, -t:][pos]) * 5
    noisy_t[:, -t:][pos] = torch.randn_like(noisy_t[:, -t:][pos]) * 5
    again = kd_loss(noisy_s, noisy_t, labels, mask)
    assert torch.allclose(base["loss"], again["loss"]) and torch.allclose(base["kd"], again["kd"])
    # ... while a valid position does change it
    valid = mask.permute(0, 2, 1).reshape(b * k, t)
    row, col = valid.nonzero()[0].tolist()
    noisy_s[row, -t + col] += 3.0 * torch.randn(noisy_s.shape[-1])
    assert not torch.allclose(base["loss"], kd_loss(noisy_s, noisy_t, labels, mask)["loss"])


def test_temperature_and_codebook_weights(batch):
    logits, labels, mask = batch["out"].logits, batch["labels"], batch["mask"]
    student = logits + 0.5 * torch.randn_like(logits)
    res = kd_loss(student, logits, labels, mask, codebook_weights=[1, 0, 0, 0], ce_weight=0.0)
    assert torch.allclose(res["kd"], res["per_codebook_kd"][0])
    with pytest.raises(ValueError):
        kd_loss(student, logits, labels, mask, codebook_weights=[1, 1])
    with pytest.raises(ValueError):
        kd_loss(student, logits, labels, mask, temperature=0)


def test_hidden_and_encoder_matching(batch):
    hs = batch["out"].decoder_hidden_states
    steps = batch["labels"].shape[1]
    pos = batch["mask"].any(-1)
    assert hidden_match_loss(hs, hs, [0, 1, 2, 3], steps, pos) == 0
    moved = [h + 1.0 for h in hs]
    assert hidden_match_loss(moved, hs, [0, 1, 2, 3], steps, pos) == pytest.approx(1.0)
    enc = batch["out"].encoder_last_hidden_state
    am = torch.tensor([[1, 1, 0], [1, 0, 0]])
    a, b2 = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    b2[:, 2] = 9.0  # only masked tokens differ
    assert encoder_match_loss(a, b2, am) == 0 and encoder_match_loss(a, b2, None) > 0
    assert enc.shape[0] == 2
