"""The Pocket TTS adapter (stage 07's export): discovery from the stage record, what it says when files are
missing or the language is not benchmarked, and a real synthesis with the tiny random-weight model that the
stage's smoke path trains (two steps here)."""

import numpy as np
import pytest

from nbhelpers.bench import systems
from nbhelpers.bench.run import TextSet, measure_variant
from nbhelpers.measure.harness import read_records as read_bench
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import append_stage_record, read_records
from tests.pocket.conftest import SENTENCES, make_pocket_corpus


@pytest.fixture(scope="module")
def pocket_run(tmp_path_factory):
    """(workspace, 07 record) of a two-step smoke run of stage 07 on an espeak-ng Kannada corpus."""
    from nbhelpers.pocket.stage import run_stage

    root = tmp_path_factory.mktemp("pocket07")
    ws = Workspace(root / "workspace")
    cfg = load_profile("pocket", "smoke", {"batch_size": 4, "max_steps": 2, "save_every": 0, "warmup_steps": 1,
                                           "voice_prompt_frames": 12})
    run_stage(cfg, workspace=ws, dataset=str(make_pocket_corpus(root / "corpus")))
    return ws, read_records(ws, "07_pocket_tts_finetune")[-1]


def test_discovered_from_the_07_record(pocket_run):
    ws, rec = pocket_run
    variants, skipped = systems.discover(ws, load_profile("bench", "smoke"), ["pocket"])
    assert skipped == {}
    assert [(v.system, v.backend, v.dtype, v.device, v.languages) for v in variants] == [
        ("pocket", "torch", "float32", "cpu", ("kn",))]
    assert variants[0].source == rec["outputs"]["checkpoint"]


def test_missing_files_and_language_are_explained(pocket_run):
    ws, rec = pocket_run
    params = load_profile("bench", "smoke")
    gone = {**rec["inputs"], "voice_prompt": "/gone/voice.wav"}
    found, why = systems._pocket(ws, params, [{**rec, "inputs": gone}])
    assert not found and "/gone/voice.wav" in why and "07 record names files" in why
    found, why = systems._pocket(ws, {**params, "languages": ["en", "bn"]}, [rec])
    assert not found and "'kn' is not among the profile's languages" in why
    found, why = systems._pocket(ws, {**params, "pocket_language": "bn"}, [rec])
    assert [v.languages for v in found] == [("bn",)]  # the profile says which language the model was tuned to
    empty = Workspace(ws.root.parent / "empty")
    append_stage_record("07_pocket_tts_finetune", profile="smoke", status="resume_needed", workspace=empty,
                        outputs=rec["outputs"], inputs=rec["inputs"])
    assert systems.discover(empty, params, ["pocket"])[1]["pocket"] == "no 07_pocket_tts_finetune record in the run log"


def test_real_synthesis_through_the_benchmark(pocket_run, tmp_path):
    ws, _ = pocket_run
    params = {**load_profile("bench", "smoke"), "asr": False, "dnsmos": False}
    variant = systems.discover(ws, params, ["pocket"])[0][0]
    loaded = variant.load()
    audio, sr = loaded.synth(SENTENCES[1], "kn")
    assert sr == 24_000 and audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size > 0.1 * sr and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    gallery, failures = measure_variant(variant, {"kn": TextSet("kn", [SENTENCES[3]], source="test")}, params,
                                        tmp_path, "r1")
    assert failures == {}
    rec = read_bench(tmp_path / "records.jsonl", strict=True)[0]
    assert rec["system"] == "pocket" and rec["language"] == "kn" and rec["rtf"] > 0
    assert rec["params"] > 1e5 and rec["disk_mib"] > 0  # the torch module and the export's files are sized
    assert gallery[0]["text"] == SENTENCES[3]
