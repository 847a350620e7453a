"""Exact resume of the shared training state: data order, RNG, optimizer, scheduler."""

import torch

from nbhelpers.training import ResumableSampler, load_training_state, resume_point, save_training_state


def test_sampler_resumes_mid_epoch_and_varies_by_epoch():
    a = ResumableSampler(10, seed=3)
    it = iter(a)
    first = [next(it) for _ in range(4)]
    state = a.state_dict()
    rest = list(it)
    b = ResumableSampler(10, seed=3)
    b.load_state_dict(state)
    assert list(b) == rest
    assert sorted(first + rest) == list(range(10))
    assert list(a) != first + rest  # epoch 1 has another order
    assert a.state_dict()["epoch"] == 2


def test_sampler_batches_and_ranks_partition():
    batches = [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    r0 = list(ResumableSampler(9, seed=1, batches=batches, rank=0, world_size=2))
    r1 = list(ResumableSampler(9, seed=1, batches=batches, rank=1, world_size=2))
    assert len(r0) == len(r1) == 2
    assert not {tuple(b) for b in r0} & {tuple(b) for b in r1}


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + s))
    data = torch.randn(32, 4, generator=torch.Generator().manual_seed(99))
    sampler = ResumableSampler(32, seed=5)
    return model, opt, sched, data, sampler


def _train(model, opt, sched, data, sampler, steps, it=None):
    it = it or iter(sampler)
    for _ in range(steps):
        try:
            i = next(it)
        except StopIteration:
            it = iter(sampler)
            i = next(it)
        loss = model(data[i:i + 1]).pow(2).mean()  # dropout makes the result depend on the RNG state
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return it


def test_resume_equals_uninterrupted_run(tmp_path):
    ref = _setup()
    _train(*ref, steps=50)

    run = _setup()
    _train(*run, steps=23)
    model, opt, sched, _, sampler = run
    save_training_state(tmp_path, 23, model=model, optimizer=opt, scheduler=sched, sampler=sampler)
    _train(*run, steps=5)  # work after the checkpoint that the "crash" loses

    resumed = _setup(seed=123)  # different init: everything must come from the checkpoint
    model, opt, sched, data, sampler = resumed
    info = load_training_state(resume_point(tmp_path), model=model, optimizer=opt, scheduler=sched, sampler=sampler)
    assert info["step"] == 23
    _train(*resumed, steps=50 - 23)
    for a, b in zip(ref[0].state_dict().values(), resumed[0].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_trainable_only_checkpoint_is_smaller(tmp_path):
    model, opt, *_ = _setup()
    model[0].requires_grad_(False)
    path = save_training_state(tmp_path, 1, model=model, trainable_only=True)
    state = torch.load(path / "training_state.pt", weights_only=False)
    assert set(state["model"]) == {"2.weight", "2.bias"}
