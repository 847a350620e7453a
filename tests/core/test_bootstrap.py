"""Kaggle/Colab installs: the stack's exact pins without the platform's CUDA torch, and no-op locally."""

import pytest

from nbhelpers.bootstrap import install_stack, select_pins, stack_requirements


def test_pins_keep_platform_torch_and_pin_transformers():
    main, parler = stack_requirements("main"), stack_requirements("parler")
    for pins in (main, parler):
        names = {p.split("==")[0].lower() for p in pins}
        assert not names & {"torch", "torchaudio", "triton", "pytest"}
        assert not any(n.startswith("nvidia-") for n in names)
        assert all("==" in p for p in pins)
    assert "transformers==4.46.1" in parler
    assert any(p.startswith("coqui-tts==") for p in main)
    with pytest.raises(ValueError, match="unknown stack"):
        stack_requirements("tensorflow")


def test_stage_subset_keeps_pins_and_extras():
    main = stack_requirements("main")
    subset = select_pins(main, ("misaki[en]", "soxr", "Kokoro"))
    version = dict(p.split("==") for p in main)
    assert subset == [f"misaki[en]=={version['misaki']}", f"soxr=={version['soxr']}", f"kokoro=={version['kokoro']}"]
    with pytest.raises(ValueError, match="not pinned in the lock file: tensorflow"):
        select_pins(main, ("soxr", "tensorflow"))


def test_local_install_is_a_no_op(capsys):
    assert install_stack("main") == []
    assert "make setup" in capsys.readouterr().out


def test_every_stage_subset_is_pinned_in_its_stack():
    from nbhelpers.bootstrap import STAGES

    for stage, (stack, packages) in STAGES.items():
        assert len(select_pins(stack_requirements(stack), packages)) == len(packages), stage


def test_kokoro_stage_installs_misaki_with_english_extra_and_no_torch():
    from nbhelpers.bootstrap import STAGES

    stack, packages = STAGES["05_kokoro_synthesis"]
    pins = select_pins(stack_requirements(stack), packages)
    assert any(p.startswith("misaki[en]==") for p in pins) and any(p.startswith("kokoro==") for p in pins)
    assert not any(p.startswith(("torch==", "torchaudio==")) for p in pins)  # Kaggle's CUDA torch is kept
