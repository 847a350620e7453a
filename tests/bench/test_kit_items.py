"""Listening-kit item selection (``kit_items``) from a benchmark gallery, and the blind page built from it:
one clip per system, language and text (the first backend measured), every system represented, anonymous
shuffled ids, nothing on the page that names a system or a source file."""

import json
import re

import numpy as np
import pytest
import soundfile as sf

from nbhelpers.measure.listening import kit_items, make_kit

SYSTEMS = {  # system -> backends in the order the benchmark measured them
    "vits-bn": ["torch", "torch-int8-dynamic", "onnxruntime[CPU]"],
    "parler-student": ["parler-tts", "parler-tts-int8-dynamic"],
    "espeak-ng": ["espeak-ng"],
    "pocket": ["torch"],
}
TEXTS = {"bn": ["বাংলা এক", "বাংলা দুই"], "kn": ["ಕನ್ನಡ ಒಂದು"]}


@pytest.fixture
def gallery(tmp_path):
    """A gallery as run_benchmark returns it: each clip a distinct tone, files named after system and backend."""
    entries, rng = [], np.random.default_rng(0)
    for system, backends in SYSTEMS.items():
        langs = ("bn", "kn") if system == "espeak-ng" else ("kn",) if system in ("pocket", "parler-student") else ("bn",)
        for backend in backends:
            for lang in langs:
                for i, text in enumerate(TEXTS[lang]):
                    path = tmp_path / "gallery" / f"{system}__{backend}__{lang}_{i}.wav"
                    path.parent.mkdir(exist_ok=True)
                    sf.write(path, (0.1 * rng.standard_normal(1600)).astype(np.float32), 16_000)
                    entries.append({"system": system, "backend": backend, "dtype": "float32", "language": lang,
                                    "text": text, "path": str(path), "kind": "suite"})
    return entries


def test_one_item_per_system_language_and_text_from_the_first_backend(gallery):
    items = kit_items(gallery)
    keys = [(i["system"], i["text"]) for i in items]
    assert len(keys) == len(set(keys))
    assert {i["system"] for i in items} == set(SYSTEMS)  # every system represented
    expected = {"vits-bn": 2, "parler-student": 1, "espeak-ng": 3, "pocket": 1}  # espeak-ng speaks bn and kn
    assert {s: sum(i["system"] == s for i in items) for s in SYSTEMS} == expected
    first = {s: b[0] for s, b in SYSTEMS.items()}
    assert all(f"__{first[i['system']]}__" in i["path"] for i in items)
    assert kit_items([]) == []


def test_page_is_blind_and_the_key_maps_back(gallery, tmp_path):
    items = kit_items(gallery)
    kit = make_kit(items, tmp_path / "kit", seed=7)
    page = kit["page"].read_text(encoding="utf-8")
    for leak in [*SYSTEMS, *(b for bs in SYSTEMS.values() for b in bs), "gallery", ".wav\"", *TEXTS["bn"], *TEXTS["kn"]]:
        assert leak not in page.replace('.wav"></audio>', ""), f"the page gives away {leak!r}"
    ids = re.findall(r'name="(item_\d{3})"', page)
    assert sorted(set(ids)) == [f"item_{n:03d}" for n in range(1, len(items) + 1)]
    assert sorted(p.name for p in kit["audio"].iterdir()) == [f"item_{n:03d}.wav" for n in range(1, len(items) + 1)]
    key = json.loads(kit["key"].read_text(encoding="utf-8"))
    assert key["seed"] == 7
    for item_id, entry in key["items"].items():  # each anonymous file is the source clip the key names
        assert (kit["audio"] / f"{item_id}.wav").read_bytes() == open(entry["source"], "rb").read()
        assert f"{entry['system']}__" in entry["source"]


def test_order_is_random_but_reproducible_with_the_seed(gallery, tmp_path):
    items = kit_items(gallery)

    def order(seed, name):
        key = json.loads(make_kit(items, tmp_path / name, seed=seed)["key"].read_text())["items"]
        return [key[i]["source"] for i in sorted(key)]

    same, again, other = order(1, "a"), order(1, "b"), order(2, "c")
    assert same == again and same != other and sorted(same) == sorted(other)
    assert same != [i["path"] for i in items]  # shuffled, not in gallery order
