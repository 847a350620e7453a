"""Each pre-flight failure produces a readable message naming the path/row and the fix."""

import unicodedata
from pathlib import Path

import pytest
import soundfile as sf
import torch

from nbhelpers.env import GPU
from nbhelpers.profiles import load_profile
from nbhelpers.vits.config import BANGLA_CHARACTERS, Row, build_config, split_rows
from nbhelpers.vits.preflight import PreflightError, check_characters, check_dataset, check_environment, check_restore
from nbhelpers.vits.train import prepare

T4 = GPU(0, "Tesla T4", 14.7, (7, 5))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from TTS.tts.models.vits import Vits

    return Vits(build_config(load_profile("vits", "smoke"), tmp_path_factory.mktemp("out")))


def test_environment_checks():
    smoke, t4 = load_profile("vits", "smoke"), load_profile("vits", "kaggle-t4")
    assert check_environment(smoke, gpus=[]).ok
    no_gpu = check_environment(t4, gpus=[])
    assert not no_gpu.ok and "GPU T4 x2" in no_gpu.message and "profile='smoke'" in no_gpu.message
    assert check_environment({**t4, "require_gpu": False}, gpus=[]).ok  # a deliberate CPU run of the T4 profile
    cpu_amp = check_environment({**smoke, "mixed_precision": True}, gpus=[])
    assert not cpu_amp.ok and "mixed_precision=false" in cpu_amp.message
    bf16_t4 = check_environment({**t4, "mixed_precision": True, "precision": "bf16"}, gpus=[T4])
    assert not bf16_t4.ok and "precision='fp16'" in bf16_t4.message
    fp16_t4 = check_environment({**t4, "mixed_precision": True}, gpus=[T4])
    assert fp16_t4.ok and "NaN" in fp16_t4.message


def test_dataset_missing_names_path_and_fix(tmp_path):
    check, _, _ = check_dataset(tmp_path / "nope")
    assert not check.ok and str(tmp_path / "nope") in check.message and "01_data_prep" in check.message
    (tmp_path / "empty").mkdir()
    check, _, _ = check_dataset(tmp_path / "empty")
    assert not check.ok and "metadata.csv" in check.message


def test_dataset_ok(bn_dataset):
    check, train, val = check_dataset(bn_dataset)
    assert check.ok, check.message
    assert len(train) == 10 and len(val) == 2


def test_dataset_bad_audio_names_rows(bn_dataset):
    (bn_dataset / "wavs" / "bn_0002.wav").unlink()
    audio, sr = sf.read(bn_dataset / "wavs" / "bn_0004.wav")
    sf.write(bn_dataset / "wavs" / "bn_0004.wav", audio, 16000)
    (bn_dataset / "wavs" / "bn_0005.wav").write_bytes(b"not a wav")
    check, _, _ = check_dataset(bn_dataset)
    assert not check.ok
    assert "3 of 12 rows" in check.message
    assert "metadata_train.csv:3 (bn_0002)" in check.message and "missing" in check.message
    assert "metadata_train.csv:5 (bn_0004)" in check.message and "16000 Hz" in check.message
    assert "metadata_train.csv:6 (bn_0005)" in check.message and "unreadable" in check.message
    assert "Fix" in check.message


def test_dataset_malformed_row(bn_dataset):
    meta = bn_dataset / "metadata_train.csv"
    meta.write_text(meta.read_text(encoding="utf-8") + "only_an_id\n", encoding="utf-8")
    check, _, _ = check_dataset(bn_dataset)
    assert not check.ok and f"{meta}, line 11" in check.message and "Fix" in check.message


def test_uncovered_characters_listed_with_rows(bn_dataset, tiny_model):
    meta = bn_dataset / "metadata_train.csv"
    lines = meta.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3] + " ok"  # Latin letters: bn_phonemizer would silently drop them
    lines[7] = lines[7].replace("।", "€।")
    meta.write_text("\n".join(lines) + "\n", encoding="utf-8")
    train, val = split_rows(bn_dataset)
    check = check_characters(train + val, tiny_model.tokenizer)
    assert not check.ok
    assert "U+006F 'o' LATIN SMALL LETTER O in 1 row(s), e.g. metadata_train.csv:4 (bn_0003)" in check.message
    assert "U+20AC '€' EURO SIGN in 1 row(s), e.g. metadata_train.csv:8 (bn_0007)" in check.message
    assert "Fix" in check.message
    braced = [Row(Path("m.csv"), 1, "q", "{আমি} বাংলায় গান গাই।", Path("x.wav"))]
    note = check_characters(braced, tiny_model.tokenizer)  # bn_phonemizer keeps braces: dropped, no words lost
    assert note.ok and "U+007B" in note.message and "harmless" in note.message
    amp = [Row(Path("m.csv"), 2, "a", "আমি & তুমি", Path("x.wav"))]  # '&' is a word bn_phonemizer deletes
    assert "U+0026" in check_characters(amp, tiny_model.tokenizer).message


def test_bangla_set_covers_both_normalisation_forms_joiners_and_digits(tiny_model):
    texts = ["নয়ন আষাঢ় বড় কোলাহল পৌষ", "র\u200d্যাব কিছু\u200cটা", "আমার ১২৩টি বই, সময় ১০:৩০, ৳৫০", "দাম 250 টাকা"]
    forms = [unicodedata.normalize(f, t) for t in texts for f in ("NFC", "NFD")]
    assert any(len(a) != len(b) for a, b in zip(forms[::2], forms[1::2], strict=True))  # the two forms really differ
    rows = [Row(Path("m.csv"), i, f"r{i}", t, Path("x.wav")) for i, t in enumerate(forms)]
    check = check_characters(rows, tiny_model.tokenizer)
    assert check.ok, check.message
    for c in "\u200c\u200d\u09df\u09af\u09bc\u09cb\u09c7\u09be\u09cc\u09d7":
        assert c in BANGLA_CHARACTERS


def test_restore_checks(tmp_path, tiny_model):
    missing = check_restore(tmp_path / "none.pth", tiny_model)
    assert not missing.ok and "none.pth" in missing.message and "Fix" in missing.message
    broken = tmp_path / "broken.pth"
    torch.save({"model": tiny_model.state_dict()}, broken)
    broken.write_bytes(broken.read_bytes()[:1000])
    corrupt = check_restore(broken, tiny_model)
    assert not corrupt.ok and "cannot be loaded" in corrupt.message and "broken.pth" in corrupt.message
    foreign = tmp_path / "foreign.pth"
    torch.save({"model": {"encoder.weight": torch.zeros(3, 3)}}, foreign)
    incompatible = check_restore(foreign, tiny_model)
    assert not incompatible.ok and "only 0 of" in incompatible.message
    good = tmp_path / "good.pth"
    torch.save({"model": tiny_model.state_dict(), "step": 0}, good)
    assert check_restore(good, tiny_model).ok


def test_prepare_stops_before_training_when_dataset_absent():
    params = load_profile("vits", "smoke")
    with pytest.raises(PreflightError) as err:
        prepare(params, print_report=False)
    assert "data/bn_smoke/PREPARED.json" in str(err.value) and "01_data_prep" in str(err.value)


def test_start_model_download_failure_is_a_preflight_error(bn_dataset, monkeypatch):
    import TTS.utils.manage as manage

    def offline(self, name):
        raise ConnectionError("no network")

    monkeypatch.setattr(manage.ModelManager, "download_model", offline)
    params = load_profile("vits", "smoke", {"start": "bn-male"})
    with pytest.raises(PreflightError) as err:
        prepare(params, print_report=False)
    assert "tts_models/bn/custom/vits-male" in str(err.value) and "enable Internet" in str(err.value)
