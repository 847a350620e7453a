"""Stage 03's timed generation (distill.evaluate.measure_generation) speaks through the one synthesis API: the
record (still a valid tts-bench/1 record) names the path it used in its notes, and each text's audio is exactly what
ParlerSynth gives it with the same seed and description (the presets path hands generate the encoder output it
would compute itself). Tiny random model."""

import numpy as np

from nbhelpers.distill.evaluate import measure_generation
from nbhelpers.measure.harness import validate_record
from nbhelpers.parler.model import build_tiny
from nbhelpers.parler.synth import ParlerSynth, SynthSettings

TEXTS = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", "ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ."]
VOICE = "A female speaker with a calm voice and a moderate pitch."
OTHER = "A male speaker talks quickly."


def test_measure_generation_uses_parler_synth_and_names_the_path():
    rec = measure_generation(build_tiny(0), TEXTS, VOICE, name="student", seed=4, frames=20, warmup=0,
                             descriptions={TEXTS[1]: OTHER})
    assert rec["notes"] == "fixed length; cpu, float32, sdpa attention, voice presets"
    validate_record({k: v for k, v in rec.items() if k not in ("audios", "cuda_allocated_before_mib", "synthesis")})
    assert rec["synthesis"]["settings"]["presets"] and rec["synthesis"]["presets_cached"] == 2
    assert rec["dtype"] == "float32" and rec["device"] == "cpu" and len(rec["audios"]) == 2
    direct = ParlerSynth(build_tiny(0), SynthSettings(presets=False))
    for i, (text, voice) in enumerate(zip(TEXTS, (VOICE, OTHER), strict=True)):
        expected = direct.synthesize([text], voice, seed=4 + i, frames=20)[0]  # sampled: the seed must match
        assert np.array_equal(rec["audios"][i], expected)
