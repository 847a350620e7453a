"""Coqui model-manager stand-in for the dress rehearsal: the released ``tts_models/bn/custom/vits-male`` and
``-female`` as coqui-tts 0.28's ``ModelManager`` finds an already downloaded model, with random weights.

``ModelManager`` keeps models under ``get_user_data_dir("tts")`` = ``$TTS_HOME/tts`` (else ``$XDG_DATA_HOME/tts``
or ``~/.local/share/tts``), one folder per model named ``tts_models--bn--custom--vits-male``; a GitHub-release
model whose folder exists is not downloaded again, and ``_find_files`` picks ``model_file.pth`` and
``config.json`` in it. The stand-in writes exactly that, so ``nbhelpers.vits`` (``start = "bn-male"``) runs its
real download path: ``ModelManager().download_model("tts_models/bn/custom/vits-male")``.

The config has the released models' style: Bangla characters through ``bn_phonemizer`` (graphemes, not IPA),
22.05 kHz. The architecture is the tiny VITS of :func:`nbhelpers.vits.config.tiny_model_args` so that the
rehearsal trains in seconds; only sizes differ from the release.

    python -m nbhelpers.rehearsal.coqui --root DIR     # prints {"TTS_HOME": ...}
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import builder_main

MODELS = ("tts_models/bn/custom/vits-male", "tts_models/bn/custom/vits-female")
VERSION = "v2"
# Bangla letters and signs without the Bengali digits: bn_phonemizer spells numbers out as words, and the
# released character sets lack digits (coqui-ai/TTS #3815).
DIGITS = "০১২৩৪৫৬৭৮৯"


def model_dir(tts_home: Path, model_id: str) -> Path:
    """Where ModelManager keeps ``model_id`` under ``$TTS_HOME``."""
    return Path(tts_home) / "tts" / model_id.replace("/", "--")


def released_style_config():
    """A VitsConfig shaped like the released Bangla models' (Bangla characters, bn_phonemizer, 22.05 kHz)."""
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsConfig

    from ..vits.config import BANGLA_CHARACTERS, PUNCTUATIONS, SAMPLE_RATE, tiny_model_args

    characters = CharactersConfig(characters_class="TTS.tts.models.vits.VitsCharacters", pad="<PAD>", eos="<EOS>",
                                  bos="<BOS>", blank="<BLNK>",
                                  characters="".join(c for c in BANGLA_CHARACTERS if c not in DIGITS),
                                  punctuations=PUNCTUATIONS, phonemes=None, is_unique=True, is_sorted=True)
    return VitsConfig(model_args=tiny_model_args(), characters=characters, use_phonemes=True,
                      phonemizer="bn_phonemizer", phoneme_language="bn", text_cleaner="basic_cleaners",
                      add_blank=True, run_name="vits_bangla",
                      audio=BaseAudioConfig(sample_rate=SAMPLE_RATE, fft_size=1024, win_length=1024, hop_length=256,
                                            num_mels=80, mel_fmin=0.0, mel_fmax=None))


def build(root: Path) -> dict[str, str]:
    """Write both models under ``<root>/coqui/tts/`` (skipped when already built); returns ``TTS_HOME``."""
    import torch
    from TTS.tts.models.vits import Vits

    home = Path(root) / "coqui"
    for i, model_id in enumerate(MODELS):
        folder = model_dir(home, model_id)
        marker = folder / ".standin"
        if marker.is_file() and marker.read_text() == VERSION:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        config = released_style_config()
        torch.manual_seed(i)
        model = Vits(config)
        tmp = folder / f".model_file.{os.getpid()}.part"
        torch.save({"model": model.state_dict(), "config": config.to_dict(), "step": 0, "epoch": 0}, tmp)
        os.replace(tmp, folder / "model_file.pth")
        (folder / "config.json").write_text(json.dumps(config.to_dict(), ensure_ascii=False, indent=2),
                                            encoding="utf-8")
        marker.write_text(VERSION)
    return {"TTS_HOME": str(home)}


def main(argv: list[str] | None = None) -> int:
    return builder_main(__name__, __doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
