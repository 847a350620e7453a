"""Stage 08 end to end on CPU with the tiny random-weight models (mechanics only, the audio is noise): train
FastSpeech2 (coqui's alignment network, pitch and energy) and HiFi-GAN, publish the bundle and samples, synthesise
from the bundle, continue both runs in a second session with the step counters going on, and let stage 06's system
registry synthesise with the newest bundle."""


from pathlib import Path

import soundfile as sf

from nbhelpers.baselines.__main__ import main
from nbhelpers.baselines.synth import FILES
from nbhelpers.bench.systems import discover
from nbhelpers.measure.harness import count_parameters
from nbhelpers.paths import Workspace
from nbhelpers.profiles import load_profile
from nbhelpers.records import read_records
from nbhelpers.samples import read_samples

STAGE = "08_baselines"


def test_train_publish_synth_and_resume(bn_export, isolated_workspace, tmp_path):
    ws = str(isolated_workspace)
    steps = ["--set", "fastspeech2_max_steps=2", "--set", "hifigan_max_steps=1"]
    assert main(["train", "--profile", "smoke", "--workspace", ws, *steps]) == 0
    rec = read_records(isolated_workspace / "run_log.jsonl", STAGE)[-1]
    assert rec["status"] == "done", rec
    m = rec["metrics"]
    assert (m["fastspeech2_start_step"], m["fastspeech2_end_step"], m["hifigan_start_step"], m["hifigan_end_step"]) \
        == (0, 2, 0, 1)
    assert {"fastspeech2_train_loss_aligner", "fastspeech2_train_loss_pitch", "fastspeech2_train_loss_energy"} <= set(m)
    bundle = isolated_workspace / "baselines" / "model" / "step-000000003"
    assert {p.name for p in bundle.iterdir()} >= {n for pair in FILES.values() for n in pair} | {"COMPLETE.json"}
    for model in ("fastspeech2", "hifigan"):  # one loss plot per model, from coqui's TensorBoard training log
        png = isolated_workspace / rec["outputs"][f"{model}_loss_plot"].removeprefix("./")
        assert png.read_bytes().startswith(b"\x89PNG"), png
    rows = read_samples(isolated_workspace / rec["outputs"]["samples"].removeprefix("./"))
    assert len(rows) == 5 and len({r["text"] for r in rows}) == 5
    assert rows[0]["model_state"] == ("FastSpeech2 after 2 steps, HiFi-GAN after 1, both trained from scratch "
                                      "(tiny smoke models)")
    for path in (Path(r["path"]) for r in rows):
        audio, rate = sf.read(path)
        assert rate == 22050 and len(audio) % 256 == 0  # whole mel frames, vocoded
        # a fresh duration predictor starts at the corpus's frames per symbol: sentence-length audio even untrained
        assert len(audio) / rate >= 1.0, f"{path.name}: {len(audio) / rate:.2f} s"

    # the vocoder alone on held-out recordings' own mels: time-aligned with them, so PESQ/STOI are scored
    assert isinstance(m["resynthesis_pesq_wb"], float) and 1.0 <= m["resynthesis_pesq_wb"] <= 4.65, m
    assert isinstance(m["resynthesis_stoi"], float) and m["resynthesis_pairs"] >= 1
    pair = isolated_workspace / rec["outputs"]["resynthesis"].removeprefix("./")
    recording, rate = sf.read(pair / "recording.wav")
    vocoded, vocoded_rate = sf.read(pair / "vocoded.wav")
    assert rate == vocoded_rate == 22050 and len(recording) == len(vocoded) and len(recording) / rate >= 1.0

    out = tmp_path / "a.wav"
    assert main(["synth", "--workspace", ws, "--text", "আমার সোনার বাংলা।", "--out", str(out)]) == 0
    audio, rate = sf.read(out)
    assert rate == 22050 and len(audio) > 0

    steps = ["--set", "fastspeech2_max_steps=4", "--set", "hifigan_max_steps=3"]
    assert main(["train", "--profile", "smoke", "--workspace", ws, *steps]) == 0
    rec = read_records(isolated_workspace / "run_log.jsonl", STAGE)[-1]
    m = rec["metrics"]
    assert (m["fastspeech2_start_step"], m["fastspeech2_end_step"], m["hifigan_start_step"], m["hifigan_end_step"]) \
        == (3, 4, 2, 3)  # coqui resumes at the saved step + 1
    assert (isolated_workspace / "baselines" / "model" / "step-000000007" / "COMPLETE.json").is_file()
    runs = list((isolated_workspace / "baselines" / "fastspeech2" / "runs").glob("fastspeech2_bn-*"))
    assert len(runs) == 1  # the second session continued the same run

    # stage 06 finds the newest bundle and synthesises with it beside VITS (same system interface, same texts)
    variants, skipped = discover(Workspace(ws), load_profile("bench", "smoke"), only=["fastspeech2-hifigan"])
    assert [v.label for v in variants] == ["fastspeech2-hifigan-bn / torch / float32 / cpu"], skipped
    loaded = variants[0].load()
    audio, rate = loaded.synth("আমার সোনার বাংলা।", "bn")
    assert rate == 22050 and len(audio) > 0
    assert {p.parent.name for p in loaded.disk_paths} == {"step-000000007"}
    assert count_parameters(loaded.model)[0] > 0
