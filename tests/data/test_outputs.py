"""The prepared dataset's outputs load directly with the tools the trainers use (acceptance)."""

import json
import os
import subprocess

import datasets
import pytest
import soundfile as sf

from nbhelpers.data import SPLITS, DatasetPaths, prepare_smoke_dataset
from nbhelpers.paths import PROJECT_ROOT, Workspace


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    return prepare_smoke_dataset("kn", ws, n_sentences=12), ws


def test_layout_is_complete_and_findable(smoke):
    paths, ws = smoke
    assert paths.is_complete
    for p in (paths.manifest, paths.quarantine, paths.stats, paths.parler_hf, paths.ljspeech, paths.pocket):
        assert p.exists(), p
    assert DatasetPaths.find("kn_smoke", ws).root == paths.root
    marker = json.loads(paths.complete_marker.read_text())
    assert marker["kept"] == sum(1 for _ in paths.manifest.open(encoding="utf-8"))


def test_parler_dataset_loads_with_load_from_disk(smoke):
    paths, _ = smoke
    dd = datasets.load_from_disk(str(paths.parler_hf))
    assert set(dd) == set(SPLITS)
    assert all(len(dd[s]) > 0 for s in SPLITS)
    row = dd["train"][0]
    assert row["audio"]["sampling_rate"] == 44100
    assert abs(len(row["audio"]["array"]) / 44100 - row["duration"]) < 0.01
    assert row["text_description"] and row["speaker"].startswith("kn")
    assert {"utterance_pitch_mean", "utterance_pitch_std", "speaking_rate", "snr", "c50", "noise",
            "reverberation", "speech_monotony", "pitch", "speed"} <= set(dd["train"].column_names)


def test_ljspeech_folder_loads_with_coqui_formatter(smoke):
    from TTS.tts.datasets.formatters import ljspeech

    paths, _ = smoke
    manifest = [json.loads(line) for line in paths.manifest.open(encoding="utf-8")]
    items = ljspeech(str(paths.ljspeech), "metadata.csv")
    assert len(items) == len(manifest)
    train = ljspeech(str(paths.ljspeech), "metadata_train.csv")
    val = ljspeech(str(paths.ljspeech), "metadata_val.csv")
    assert len(train) + len(val) + len(ljspeech(str(paths.ljspeech), "metadata_test.csv")) == len(manifest)
    info = sf.info(items[0]["audio_file"])
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert items[0]["text"].strip() in {m["text"] for m in manifest}


def test_pocket_manifests_load_with_json(smoke):
    paths, _ = smoke
    total = 0
    for split in SPLITS:
        items = json.load(paths.pocket_manifest(split).open(encoding="utf-8"))
        total += len(items)
        for item in items:
            assert {"audio_path", "text", "language", "duration"} <= set(item)
            info = sf.info(str(paths.pocket / item["audio_path"]))
            assert info.samplerate == 24000 and info.subtype == "PCM_16"
            assert abs(info.duration - item["duration"]) < 0.01
    assert total == json.loads(paths.stats.read_text())["kept"]


def test_parler_stack_can_build_and_load_a_smoke_dataset(tmp_path):
    """Stages 02/03 run on the parler stack (no silero-vad/onnxruntime): the helper must work there too."""
    python = PROJECT_ROOT / ".venv-parler" / "bin" / "python"
    code = ("import datasets, json, sys; from nbhelpers.data import prepare_smoke_dataset; "
            "p = prepare_smoke_dataset('bn', sys.argv[1], n_sentences=6); "
            "d = datasets.load_from_disk(str(p.parler_hf)); "
            "print(json.dumps([len(d['train']), d['train'][0]['audio']['sampling_rate'], "
            "json.loads(p.stats.read_text())['vad']]))")
    out = subprocess.run([str(python), "-c", code, str(tmp_path / "ws")], capture_output=True, text=True,
                         timeout=300, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    n_train, rate, vad = json.loads(out.stdout.strip().splitlines()[-1])
    assert n_train >= 3 and rate == 44100 and vad == ["energy"]
