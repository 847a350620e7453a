"""Audio tests on the real Kokoro-82M int8 ONNX model (offline): intelligibility of the smoke run, long Hindi
text spoken in full, speed, backend choice, integrity check, the PyTorch path (random weights) and the CLI."""

import json
import shutil

import pytest
import soundfile as sf

from nbhelpers.kokoro import assets
from nbhelpers.kokoro.backends import OnnxBackend, TorchBackend, choose_backend, hub_status
from nbhelpers.kokoro.synth import STAGE, Speaker, resolve_voice, run_stage
from nbhelpers.kokoro.text import g2p_for, spoken_phoneme_count
from nbhelpers.records import read_records

HINDI = ("भारत एक विशाल देश है। यहाँ अनेक भाषाएँ बोली जाती हैं। हर राज्य की अपनी संस्कृति और परंपरा है। "
         "लोग त्योहारों को बड़े उत्साह से मनाते हैं। दिवाली रोशनी का त्योहार है। होली रंगों का त्योहार है। "
         "गाँवों में खेती मुख्य व्यवसाय है। शहरों में उद्योग और व्यापार तेज़ी से बढ़ रहे हैं। "
         "बच्चे स्कूल में गणित, विज्ञान और इतिहास पढ़ते हैं। पुस्तकालय में हज़ारों किताबें रखी हैं। "
         "सुबह की सैर स्वास्थ्य के लिए अच्छी होती है। बारिश के मौसम में नदियाँ भर जाती हैं।")


def test_offline_smoke_run_is_intelligible(onnx_speaker, isolated_workspace):
    from nbhelpers.measure.quality import transcribe, wer

    m = run_stage("smoke", speaker=onnx_speaker)
    out = isolated_workspace / "kokoro" / "review"
    audio, sr = sf.read(out / "combined.wav", dtype="float32")
    assert sr == 24_000 and audio.ndim == 1
    assert json.loads((out / "script.json").read_text(encoding="utf-8"))["sections"] == m["sections"]
    assert len(m["sections"]) >= 4
    for sec in m["sections"]:
        sec_audio, _ = sf.read(out / sec["wav"], dtype="float32")
        assert len(sec_audio) / sr == pytest.approx(sec["duration_s"], abs=1e-3)
        starts = [w["start"] for w in sec["words"]]
        assert len(sec["words"]) >= len(sec["text"].split()) - 2 and starts == sorted(starts)
        assert all(0 <= w["start"] < w["end"] <= sec["duration_s"] + 0.05 for w in sec["words"])
    # combined = sections + the configured pauses
    pauses = sum(m["pauses_s"])
    assert len(audio) / sr == pytest.approx(sum(s["duration_s"] for s in m["sections"]) + pauses, abs=0.01)
    # matched loudness: every section measures within 1 LU of the target after the gain
    import pyloudnorm
    meter = pyloudnorm.Meter(sr)
    for sec in m["sections"]:
        lufs = meter.integrated_loudness(sf.read(out / sec["wav"])[0])
        assert lufs == pytest.approx(m["target_lufs"], abs=1.0)
    script = " ".join(s["text"] for s in m["sections"])
    hyp = transcribe(audio, sr, "en")
    assert wer(script, hyp) <= 0.15, hyp
    rec = read_records(stage=STAGE)[-1]
    assert rec["status"] == "done" and rec["metrics"]["backend"] == "onnx" and rec["metrics"]["voice"] == "jf_alpha"


def test_long_hindi_text_is_fully_spoken(onnx_speaker):
    expected, _ = g2p_for("hi")(HINDI)  # the whole text phonemized at once, independent of the chunker
    assert len(expected) > 510  # longer than one Kokoro call
    voice = resolve_voice(onnx_speaker.backend, "jf_alpha")
    audio, info = onnx_speaker.speak(HINDI, voice, lang="hi", speed=2.0)  # speed only shortens the test
    chunks = info["chunks"]
    assert len(chunks) >= 2 and all(c["n_phonemes"] <= 510 for c in chunks)
    assert info["spoken_phonemes"] == spoken_phoneme_count(expected)  # phoneme count in = phoneme count out
    assert all(c["n_tokens"] == c["n_phonemes"] and not c["unknown_symbols"] for c in chunks)  # all read
    assert all(c["samples"] == 600 * c["frames"] for c in chunks)
    assert info["words"] is None and len(audio) > 24_000 * 5
    # upstream KPipeline cuts the same text at 510 phonemes: this test would notice such a loss
    from kokoro import KPipeline
    upstream = list(KPipeline(lang_code="h", repo_id="hexgrad/Kokoro-82M", model=False)(HINDI))
    assert sum(spoken_phoneme_count(r.phonemes) for r in upstream) < spoken_phoneme_count(expected)


def test_speed_changes_duration(onnx_speaker):
    voice = resolve_voice(onnx_speaker.backend, "jf_alpha:0.5,jf_nezumi:0.5")
    slow, _ = onnx_speaker.speak("The battery lasts all week.", voice, speed=0.8)
    fast, _ = onnx_speaker.speak("The battery lasts all week.", voice, speed=1.6)
    assert len(fast) < 0.75 * len(slow)


def test_sha256_check_rejects_a_corrupted_model(tmp_path):
    parts = []
    for i, src in enumerate(assets.part_paths()):
        dst = tmp_path / f"part{i}.bin"
        shutil.copyfile(src, dst)
        parts.append(dst)
    with parts[2].open("r+b") as f:  # flip one byte in the middle of part 3
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0xFF]))
    dest = tmp_path / "model.onnx"
    with pytest.raises(assets.IntegrityError, match="sha256 .* expected .*Reinstall the pinned"):
        assets.assemble_onnx_model(parts, dest)
    assert not dest.exists() and not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind
    # a corrupted cached copy is detected and rebuilt from intact parts
    dest.write_bytes(b"garbage")
    good = assets.assemble_onnx_model(assets.part_paths(), dest)
    assert assets.sha256_file(good) == assets.ONNX_MODEL_SHA256


def test_auto_choice_is_offline_and_says_why(onnx_speaker):
    ok, why = hub_status("hexgrad/Kokoro-82M")
    assert not ok and "HF_HUB_OFFLINE" in why
    backend, reason = choose_backend("auto", probe=lambda repo: (False, "the hub is not reachable (test)"))
    assert isinstance(backend, OnnxBackend) and "offline ONNX" in reason and "not reachable" in reason
    voice = resolve_voice(onnx_speaker.backend, "af_heart", fallback="jf_alpha")
    assert voice.weights == {"jf_alpha": 1.0} and "af_heart is not available" in voice.note
    with pytest.raises(ValueError, match="unknown voice"):
        resolve_voice(onnx_speaker.backend, "af_heart")
    with pytest.raises(ValueError, match="backend must be"):
        choose_backend("tensorrt")


def test_torch_backend_mechanics_random_weights(tmp_path):
    """The PyTorch path with a randomly initialised KModel (no hub here): shapes, durations, word timings."""
    import torch
    from kokoro import KModel

    empty = tmp_path / "empty.pth"
    torch.save({}, empty)  # no weights: every module keeps its random initialisation
    torch.manual_seed(0)
    model = KModel(repo_id="hexgrad/Kokoro-82M", config=str(assets.config_path()), model=str(empty)).eval()
    backend = TorchBackend(model, None, sorted(assets.offline_voices()), "random KModel",
                           voice_loader=assets.offline_voices().__getitem__)
    speaker = Speaker(backend, "test")
    audio, info = speaker.speak("Hello there. How are you?", resolve_voice(backend, "jf_alpha"), speed=1.0)
    chunk = info["chunks"][0]
    assert chunk["samples"] == 600 * chunk["frames"] == len(audio)
    assert [w["word"] for w in info["words"]] == ["Hello", "there", "How", "are", "you"]


def test_cli_speak_writes_what_the_notebook_shows(isolated_workspace, capsys):
    from nbhelpers.kokoro.__main__ import main
    from nbhelpers.records import last_record

    assert main(["voices", "--backend", "onnx"]) == 0
    assert "jf_alpha" in capsys.readouterr().out
    assert main(["speak", "--profile", "smoke", "--workspace", str(isolated_workspace), "--text",
                 "# One\nHello there.\n# Two\nGood bye.", "--pause", "0.5", "--set", "run_name=cli",
                 "--set", "speed=1.2"]) == 0
    out = capsys.readouterr().out
    assert "section_01_one.wav" in out and "section_02_two.wav" in out and "real-time factor" in out
    m = json.loads((isolated_workspace / "kokoro" / "cli" / "script.json").read_text(encoding="utf-8"))
    assert m["pauses_s"] == [0.5] and m["speed"] == 1.2
    outputs = last_record(isolated_workspace / "run_log.jsonl", "05_kokoro_synthesis")["outputs"]
    assert open(outputs["track_png"], "rb").read(4) == b"\x89PNG"
    view = json.loads(open(outputs["view"], encoding="utf-8").read())
    assert [p["path"] for p in view["players"]] == [str(isolated_workspace / "kokoro" / "cli" / n) for n in
                                                   ("section_01_one.wav", "section_02_two.wav", "combined.wav")]
    assert view["players"][0]["caption"] == "**1. One**: Hello there."
    assert view["backend"]["backend"] == "onnx" and "jf_alpha" in view["backend"]["voices"]
    assert [w["word"] for w in view["words"]] == ["Hello", "there"] and view["words_note"] is None
    assert view["phonemes"][0]["text"] == "Hello there." and [s["title"] for s in view["sections"]] == ["One", "Two"]


def test_cli_plan_loads_no_model_and_checks_settings(isolated_workspace, capsys):
    from nbhelpers.kokoro.__main__ import main

    assert main(["plan", "--profile", "smoke", "--workspace", str(isolated_workspace), "--set", "lang=hi"]) == 0
    plan = json.loads((isolated_workspace / "kokoro" / "plan.json").read_text(encoding="utf-8"))
    assert plan["settings"]["lang"] == "hi" and plan["source"].endswith("example_review.md")
    assert len(plan["sections"]) == 5 and plan["languages"]["hi"] == "Hindi"
    with pytest.raises(KeyError, match="not a parameter"):
        main(["plan", "--profile", "smoke", "--set", "voices=af_heart"])
    with pytest.raises(ValueError, match="language"):
        main(["plan", "--profile", "smoke", "--set", "lang=xx"])


def test_cli_say_writes_one_wav_and_reports_bad_input(isolated_workspace, capsys):
    import soundfile as sf

    from nbhelpers.kokoro.__main__ import main

    assert main(["say", "--profile", "smoke", "--workspace", str(isolated_workspace), "--text",
                 "नमस्ते। यह हेडफ़ोन हल्का है।", "--out", "kokoro/say/hi.wav", "--set", "lang=hi"]) == 0
    said = json.loads((isolated_workspace / "kokoro" / "say" / "hi.json").read_text(encoding="utf-8"))
    audio, sr = sf.read(said["wav"])
    assert sr == 24000 and len(audio) / sr == pytest.approx(said["duration_s"], abs=0.01) and said["words"] is None
    assert said["language"] == "hi" and said["chunks"][0]["read as"] and "onnx | jf_alpha | hi" in said["summary"]
    capsys.readouterr()
    assert main(["say", "--profile", "smoke", "--text", "Hi.", "--out", "x.wav", "--set", "voice=jf_alpha:-1"]) == 2
    assert "error: weight of voice 'jf_alpha' must be a finite number > 0" in capsys.readouterr().err
    assert main(["say", "--profile", "smoke", "--text", " ", "--out", "x.wav"]) == 2
    assert main(["say", "--profile", "smoke", "--text", "Hi.", "--out", "x.mp3"]) == 2
    assert not (isolated_workspace / "run_log.jsonl").exists()  # not a stage run


def test_notebook_try_it_panel_speaks_through_a_child_process(isolated_workspace, monkeypatch, capsys):
    """The Try-it cell of notebook 05, run as the kernel would run it: its form (``nb.try_it``, tested on both
    widget versions in tests/suite/test_widgets.py) offers the plan's voice and languages, and its action runs
    `python -m nbhelpers.kokoro say` in the main stack and plays the WAV; bad input raises the child's error,
    which the form prints."""
    from nbhelpers import nb, stacks
    from nbhelpers.paths import PROJECT_ROOT

    try:
        stacks.stack_python("main")
    except stacks.StackError as err:
        pytest.skip(f"main stack not built: {err}")
    book = json.loads((PROJECT_ROOT / "notebooks" / "05_kokoro_synthesis.ipynb").read_text(encoding="utf-8"))
    cell = next("".join(c["source"]) for c in book["cells"] if "nb.try_it(" in "".join(c["source"]))
    forms = []
    monkeypatch.setattr(nb, "try_it", lambda fields, action, **_: forms.append((fields, action)))
    plan = {"settings": {"voice": "jf_alpha", "lang": "en-us"}, "languages": {"hi": "Hindi", "en-us": "American English"}}
    scope = {"nb": nb, "profile": "smoke", "workspace": str(isolated_workspace), "plan": plan}
    exec(compile(cell, "notebook-05-try-it", "exec"), scope)
    (fields, speak), = forms
    assert fields["voice"] == "jf_alpha" and fields["language"] == ["en-us", "hi"]  # the plan's language first
    speak(text="Good morning.", voice="jf_alpha", language="en-us", speed=1.1)
    assert "onnx | jf_alpha | en-us | 1 chunk(s)" in capsys.readouterr().out
    assert (isolated_workspace / "kokoro" / "say" / "try_it.wav").is_file()
    with pytest.raises(nb.StageFailed, match="weight of voice 'jf_alpha' must be a finite number > 0"):
        speak(text="Good morning.", voice="jf_alpha:-1", language="en-us", speed=1.0)


def test_max_phonemes_gives_smaller_chunks(onnx_speaker):
    voice = resolve_voice(onnx_speaker.backend, "jf_alpha")
    text = "The bass is deep. Voices are clear. The battery lasts."
    _, info = onnx_speaker.speak(text, voice, max_phonemes=20, speed=2.0)
    assert len(info["chunks"]) == 3 and all(c["n_phonemes"] <= 20 for c in info["chunks"])
    with pytest.raises(ValueError, match="max_phonemes"):
        onnx_speaker.speak(text, voice, max_phonemes=600)
