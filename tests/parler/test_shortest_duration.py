"""A random Parler model ends its audio almost at once; ``sample_max_chars_per_second`` gives every sample a
shortest duration from its text's length (the end-of-speech token is suppressed until then), in the synthesis API
(02's speak) and in the training samples (02's before/after). Tiny random weights: mechanics only."""

from nbhelpers.parler.model import build_tiny
from nbhelpers.parler.synth import ParlerSynth, SynthSettings, length_kwargs, shortest_seconds
from nbhelpers.parler.train import generate_samples

TEXT = "ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ."  # 22 characters
VOICE = "A female speaker with a calm voice and a moderate pitch."


def _seconds(audio, bundle) -> float:
    return len(audio) / bundle.sampling_rate


def test_the_floor_comes_from_the_text_length_and_never_passes_the_ceiling():
    assert shortest_seconds([TEXT], 15.0) == 22 / 15 and shortest_seconds([TEXT], 0.0) == 0.0
    bundle = build_tiny(0)
    k, rate = bundle.num_codebooks, bundle.frame_rate
    assert "min_new_tokens" not in length_kwargs(bundle, max_seconds=2.0)
    assert length_kwargs(bundle, max_seconds=2.0, min_seconds=1.0)["min_new_tokens"] == int(rate) + k - 1
    capped = length_kwargs(bundle, max_seconds=0.5, min_seconds=3.0)
    assert capped["min_new_tokens"] < capped["max_length"]


def test_synthesis_lasts_at_least_the_floor_where_the_random_model_stops_early():
    synth = ParlerSynth(build_tiny(0), SynthSettings())
    free = [synth.synthesize([TEXT], VOICE, max_seconds=3.0, seed=s)[0] for s in range(3)]
    assert min(_seconds(a, synth.bundle) for a in free) < 1.0  # what the floor is for
    floor = shortest_seconds([TEXT], 15.0)
    held = [synth.synthesize([TEXT], VOICE, max_seconds=3.0, min_seconds=floor, seed=s)[0] for s in range(3)]
    assert all(_seconds(a, synth.bundle) >= floor - 1 / synth.bundle.frame_rate for a in held)


def test_training_samples_last_at_least_the_floor():
    bundle = build_tiny(0)
    audios = generate_samples(bundle, bundle.model, [TEXT, "ಹೌದು"], VOICE, max_seconds=2.0, seed=0,
                              max_chars_per_second=15.0)
    assert _seconds(audios[0], bundle) >= 22 / 15 - 1 / bundle.frame_rate
    assert _seconds(audios[1], bundle) >= 4 / 15 - 1 / bundle.frame_rate
