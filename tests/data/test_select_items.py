"""max_items: a size cap that reads an even spread of the source (every archive and speaker keeps a share)."""

from nbhelpers.data.pipeline import select_items
from nbhelpers.data.sources import Utterance


def test_select_items_spreads_and_keeps_order():
    utts = [Utterance(id=f"{'f' if i < 50 else 'm'}_{i:03d}", text="x", language="kn") for i in range(100)]
    picked = select_items(utts, 10)
    assert [u.id for u in picked] == [utts[i].id for i in range(0, 100, 10)]
    assert {u.id[0] for u in picked} == {"f", "m"}
    assert select_items(utts, 0) is utts and select_items(utts, 200) is utts
