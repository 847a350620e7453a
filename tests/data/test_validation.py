"""Validation: one broken item per reason, counts reconcile on a corpus with all damage at once, strict
mode's single error, incremental re-runs, and nothing dropped silently."""

import json

import numpy as np
import pytest

from nbhelpers.data.clean import CleanConfig
from nbhelpers.data.pipeline import prepare
from nbhelpers.data.validate import REASONS, DataValidationError

GOOD = ["ನಮಸ್ಕಾರ, ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುವ ಸಾಧ್ಯತೆ ಇದೆ.", "ನೀವು ಎಲ್ಲಿಗೆ ಹೋಗುತ್ತಿದ್ದೀರಿ?"]
CFG = CleanConfig(annotate=False, max_duration=8.0, vad="energy")


def _broken(reason, root, make_speech, write_audio):
    """One manifest entry (plus files) that must be rejected for ``reason``."""
    sp = make_speech("kn", 0)
    wav = root / "wavs" / f"{reason}.wav"
    entry = {"id": reason, "audio_path": f"wavs/{reason}.wav", "text": GOOD[0], "language": "kn"}
    if reason == "missing_audio":
        return [entry]
    if reason == "malformed_row":
        return [{"id": reason, "text": "no audio_path key"}]
    if reason == "unreadable_audio":
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    elif reason == "empty_audio":
        write_audio(wav, np.zeros(0, np.float32), 22050)
    elif reason == "empty_text":
        write_audio(wav, sp, 22050)
        entry["text"] = " ... !! "
    elif reason == "silent":
        write_audio(wav, np.zeros(22050 * 2, np.float32), 22050)
    elif reason == "clipped":
        write_audio(wav, np.clip(sp * 30, -1, 1), 22050)
    elif reason == "too_short":
        write_audio(wav, np.concatenate([np.zeros(11025), sp[22050:22050 + 6000], np.zeros(11025)]), 22050)
        entry["text"] = "ಹೌದು"
    elif reason == "too_long":
        write_audio(wav, np.concatenate([sp, sp, sp]), 22050)
        entry["text"] = " ".join([GOOD[0]] * 3)
    elif reason == "wrong_script":
        write_audio(wav, sp, 22050)
        entry["text"] = "This transcript is English, not Kannada."
    elif reason == "duplicate_id":
        write_audio(wav, sp, 22050)
        return [dict(entry, id="good_0"), ]
    elif reason == "text_audio_mismatch":
        write_audio(wav, sp, 22050)
        entry["text"] = " ".join([GOOD[0]] * 4)
    elif reason == "duration_mismatch":
        write_audio(wav, sp, 22050)
        entry["duration"] = 30.0
    elif reason == "bad_encoding":  # a manifest line that is not UTF-8
        return [json.dumps(entry, ensure_ascii=False).encode().replace(b"wavs", b"wa\xffvs")]
    elif reason == "invalid_samples":
        write_audio(wav, np.where(np.arange(len(sp)) == 5000, np.nan, sp), 22050, subtype="FLOAT")
    elif reason == "processing_error":  # an unexpected error inside cleaning (see _fail_on_marker)
        write_audio(wav, sp, 22050)
        entry["text"] = GOOD[0] + FAIL_MARKER
    else:
        raise AssertionError(f"no fixture for {reason}")
    return [entry]


FAIL_MARKER = " \u2731"


@pytest.fixture(autouse=True)
def _fail_on_marker(monkeypatch):
    """Text normalisation raises for FAIL_MARKER: stands in for a bug or an exotic input cleaning trips over."""
    import nbhelpers.data.clean as clean

    real = clean.normalize_text

    def normalize(text, language):
        if FAIL_MARKER in text:
            raise RuntimeError("injected failure")
        return real(text, language)

    monkeypatch.setattr(clean, "normalize_text", normalize)


def _corpus(tmp_path, make_speech, write_audio, reasons):
    root = tmp_path / "corpus"
    items = []
    for i, text in enumerate(GOOD):
        write_audio(root / "wavs" / f"good_{i}.wav", make_speech("kn", 0 if i == 0 else 4), 22050)
        items.append({"id": f"good_{i}", "audio_path": f"wavs/good_{i}.wav", "text": text, "language": "kn"})
    for reason in reasons:
        items += _broken(reason, root, make_speech, write_audio)
    lines = [i if isinstance(i, bytes) else json.dumps(i, ensure_ascii=False).encode() for i in items]
    (root / "manifest.json").write_bytes(b"\n".join(lines) + b"\n")  # JSON lines: a bad line costs only its row
    return root / "manifest.json", items


@pytest.mark.parametrize("reason", REASONS)
def test_each_reason_is_quarantined_with_a_fix(tmp_path, make_speech, write_audio, reason):
    manifest, items = _corpus(tmp_path, make_speech, write_audio, [reason])
    result = prepare(manifest, "v", "kn", workspace=tmp_path / "ws", clean=CFG, workers=1, exports=())
    assert [r["reason"] for r in result.rejected] == [reason], result.rejected
    rejected = result.rejected[0]
    assert rejected["fix"] and rejected["source"].startswith(str(manifest))
    assert sorted(r["id"] for r in result.kept) == ["good_0", "good_1"]
    quarantine = [json.loads(line) for line in result.paths.quarantine.read_text(encoding="utf-8").splitlines()]
    assert quarantine == result.rejected


def test_counts_reconcile_with_all_damage_at_once(tmp_path, make_speech, write_audio):
    # processing_error's injected failure does not reach forkserver workers (used once torch is imported)
    reasons = [r for r in REASONS if r != "processing_error"]
    manifest, items = _corpus(tmp_path, make_speech, write_audio, reasons)
    result = prepare(manifest, "all", "kn", workspace=tmp_path / "ws", clean=CFG, workers=2, exports=("pocket",))
    stats = json.loads(result.paths.stats.read_text())
    assert stats["read"] == len(items) == stats["kept"] + stats["rejected"]
    assert stats["kept"] == 2
    assert stats["rejected_by_reason"] == {r: 1 for r in reasons}
    assert result.paths.is_complete


def test_strict_mode_raises_one_summary(tmp_path, make_speech, write_audio):
    manifest, _ = _corpus(tmp_path, make_speech, write_audio, ["silent", "wrong_script", "missing_audio"])
    with pytest.raises(DataValidationError) as info:
        prepare(manifest, "s", "kn", workspace=tmp_path / "ws", clean=CFG, workers=1, strict=True)
    message = str(info.value)
    assert "3 of 5 items rejected" in message
    for reason in ("silent", "wrong_script", "missing_audio"):
        assert reason in message
    quarantine = message.split("Full list: ")[1].split("\n")[0]
    assert quarantine.endswith("quarantine.jsonl") and len(open(quarantine).readlines()) == 3
    assert not (tmp_path / "ws" / "data" / "s" / "PREPARED.json").exists()


def test_rerun_is_incremental(tmp_path, make_speech, write_audio):
    manifest, items = _corpus(tmp_path, make_speech, write_audio, ["silent"])
    first = prepare(manifest, "inc", "kn", workspace=tmp_path / "ws", clean=CFG, workers=1, exports=())
    assert first.processed == 3 and first.reused == 0
    again = prepare(manifest, "inc", "kn", workspace=tmp_path / "ws", clean=CFG, workers=1, exports=())
    assert again.processed == 0 and again.reused == 3
    assert [r["id"] for r in again.kept] == [r["id"] for r in first.kept]
    items[1]["text"] = GOOD[0]
    manifest.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    changed = prepare(manifest, "inc", "kn", workspace=tmp_path / "ws", clean=CFG, workers=1, exports=())
    assert changed.processed == 1 and changed.reused == 2
    (tmp_path / "ws" / "data" / "inc" / first.kept[0]["audio_path"]).unlink()  # a lost output is rebuilt
    assert prepare(manifest, "inc", "kn", workspace=tmp_path / "ws", clean=CFG, workers=1, exports=()).processed == 1
