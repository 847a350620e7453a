"""Several datasets in one run: each gives the share of batches its weight asks for, every epoch; a run resumes only
with the mix it started with."""

import collections

import pytest
from parler_settings import OVERRIDES

from nbhelpers.parler.data import length_grouped_batches, mixed_batches


def _dataset_of(index: int, sizes: list[int]) -> int:
    for d, end in enumerate(__import__("itertools").accumulate(sizes)):
        if index < end:
            return d
    raise AssertionError(index)


@pytest.mark.parametrize("weights", [[1.0, 1.0], [3.0, 1.0], [1.0, 0.25, 2.0]])
def test_batch_shares_follow_the_weights(weights):
    sizes = [40, 10, 24][:len(weights)]
    lengths = [[(7 * i) % 23 + d for i in range(n)] for d, n in enumerate(sizes)]
    batches = mixed_batches(lengths, weights, 2, seed=0)
    total = sum(n // 2 for n in sizes)
    assert len(batches) == total
    counts = collections.Counter(_dataset_of(b[0], sizes) for b in batches)
    for d, w in enumerate(weights):
        assert abs(counts[d] - total * w / sum(weights)) <= 1  # within one batch of the asked share
        assert all(_dataset_of(i, sizes) == d for b in batches if _dataset_of(b[0], sizes) == d for i in b)


def test_one_dataset_is_exactly_the_length_grouped_batches():
    lengths = [(5 * i) % 17 for i in range(30)]
    assert mixed_batches([lengths], [1.0], 4, seed=3) == length_grouped_batches(lengths, 4)


def test_a_mixed_run_trains_on_both_and_resumes_only_with_its_mix(parler_ws, kn_dataset_dir, tmp_path):
    import datasets

    from nbhelpers.parler.train import train
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile

    full = datasets.load_from_disk(str(kn_dataset_dir))  # a second, smaller dataset: 8 / 2 / 2 rows of the first
    other = tmp_path / "other" / "parler"
    datasets.DatasetDict({"train": full["train"].select(range(8)), "validation": full["validation"].select(range(2)),
                          "test": full["test"].select(range(2))}).save_to_disk(str(other))
    mix = {str(other): 0.5}
    cfg = load_profile("parler", "smoke", {**OVERRIDES, "max_steps": 4, "eval_every": 0, "sample_max_seconds": 0.05,
                                          "mix": mix})
    ws = Workspace(parler_ws)
    result = train(cfg, workspace=ws, dataset=str(kn_dataset_dir), run="mix", stop_after=2)
    shares = result.metrics["mix"]
    assert shares[str(other)]["utterances"] == 8 and shares["dataset"]["utterances"] == 12
    # 12 / 4 + 8 / 4 = 5 batches an epoch; weights 1 : 0.5 -> 3.33 : 1.67 -> 3 and 2
    assert (shares["dataset"]["batches_per_epoch"], shares[str(other)]["batches_per_epoch"]) == (3, 2)
    changed = load_profile("parler", "smoke", {**OVERRIDES, "max_steps": 4, "mix": {str(other): 2.0}})
    with pytest.raises(ValueError, match="other settings .*mix"):
        train(changed, workspace=ws, dataset=str(kn_dataset_dir), run="mix")
    assert train(cfg, workspace=ws, dataset=str(kn_dataset_dir), run="mix").step == 4
