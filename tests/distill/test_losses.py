import pytest
import torch

from nbhelpers.distill.losses import encoder_match_loss, hidden_match_loss, kd_loss, topk_logits, valid_mask
from nbhelpers.distill.student import StudentSpec, build_student
from nbhelpers.parler.data import delayed_labels
from nbhelpers.parler.losses import codebook_logits, decoder_inputs


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
    layers = [h[:, -steps:] for h in hs[1:]]
    assert hidden_match_loss(layers, layers, pos) == 0
    moved = [h + 1.0 for h in layers]
    assert hidden_match_loss(moved, layers, pos) == pytest.approx(1.0)
    # only the valid positions count
    scrambled = [h.clone() for h in layers]
    for h in scrambled:
        h[~pos] = 50.0
    assert hidden_match_loss(scrambled, layers, pos) == 0
    enc = batch["out"].encoder_last_hidden_state
    am = torch.tensor([[1, 1, 0], [1, 0, 0]])
    a, b2 = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    b2[:, 2] = 9.0  # only masked tokens differ
    assert encoder_match_loss(a, b2, am) == 0 and encoder_match_loss(a, b2, None) > 0
    assert enc.shape[0] == 2


def test_hidden_matching_projects_a_narrow_student_and_trains_the_projection(batch):
    steps = batch["labels"].shape[1]
    pos = batch["mask"].any(-1)
    teacher = [h[:, -steps:] for h in batch["out"].decoder_hidden_states[1:3]]  # width 32
    narrow = [torch.randn(t.shape[0], steps, 16, requires_grad=True) for t in teacher]
    with pytest.raises(ValueError, match="projections"):
        hidden_match_loss(narrow, teacher, pos)
    projections = torch.nn.ModuleList(torch.nn.Linear(16, 32) for _ in teacher)
    loss = hidden_match_loss(narrow, teacher, pos, projections)
    assert loss > 0
    loss.backward()
    assert all(p.weight.grad is not None and p.weight.grad.abs().sum() > 0 for p in projections)
    assert all(h.grad is not None for h in narrow)
    # a projection that reproduces the teacher exactly gives zero
    exact = torch.nn.ModuleList(torch.nn.Linear(32, 32) for _ in teacher)
    for p in exact:
        torch.nn.init.eye_(p.weight)
        torch.nn.init.zeros_(p.bias)
    assert hidden_match_loss(teacher, teacher, pos, exact) == 0


def _full_kl(student, teacher, temperature):
    log_q = torch.log_softmax(student / temperature, -1)
    log_p = torch.log_softmax(teacher / temperature, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def test_topk_kl_is_the_kl_of_the_coarsened_distributions(batch):
    labels, mask = batch["labels"], batch["mask"]
    b, t, k = labels.shape
    g = torch.Generator().manual_seed(1)
    model_layout = batch["out"].logits + 0.7 * torch.randn(batch["out"].logits.shape, generator=g)
    teacher = codebook_logits(batch["out"].logits, b, k, t)  # (B, K, L, V): the audio positions
    student = codebook_logits(model_layout, b, k, t)
    temp, vocab = 2.0, teacher.shape[-1]
    full = kd_loss(model_layout, batch["out"].logits, labels, mask, temperature=temp, ce_weight=0.0)
    assert torch.allclose(kd_loss(model_layout, teacher, labels, mask, temperature=temp)["kd"], full["kd"])
    # k = V - 1: the tail is a single code, so the coarsened KL is the full KL
    almost = kd_loss(model_layout, topk_logits(teacher, vocab - 1, temp), labels, mask, temperature=temp, ce_weight=0.0)
    assert torch.allclose(almost["per_codebook_kd"], full["per_codebook_kd"], rtol=1e-4, atol=1e-6)
    # small k: explicit k + 1 bucket KL, never above the full KL, zero for the teacher itself
    top = topk_logits(teacher, 5, temp)
    got = kd_loss(model_layout, top, labels, mask, temperature=temp, ce_weight=0.0)
    p = torch.softmax(teacher / temp, -1)
    q = torch.softmax(student / temp, -1)
    p_s, q_s = p.gather(-1, top.indices), q.gather(-1, top.indices)
    p_r, q_r = 1 - p_s.sum(-1), 1 - q_s.sum(-1)
    by_hand = (p_s * (p_s / q_s).log()).sum(-1) + p_r * (p_r / q_r).log()
    m = mask.permute(0, 2, 1).float()
    expected = (by_hand * m).sum(dim=(0, 2)) / m.sum(dim=(0, 2)) * temp ** 2
    assert torch.allclose(got["per_codebook_kd"], expected, rtol=1e-4, atol=1e-6)
    assert (got["per_codebook_kd"] <= full["per_codebook_kd"] + 1e-6).all() and got["kd"] > 0
    assert kd_loss(batch["out"].logits, top, labels, mask, temperature=temp, ce_weight=0.0)["kd"].abs() < 1e-5
    # gradients stay finite, also where the student puts almost no mass outside the teacher's top-k
    peaked = student.clone()
    peaked.scatter_(-1, top.indices, 60.0)
    peaked = peaked.reshape(b * k, t, vocab).requires_grad_(True)
    kd_loss(peaked, top, labels, mask, temperature=temp, ce_weight=0.0)["kd"].backward()
    assert torch.isfinite(peaked.grad).all()
    with pytest.raises(ValueError, match="kd_topk"):
        topk_logits(teacher, vocab, temp)
