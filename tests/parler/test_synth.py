"""The Parler synthesis API's fast paths on the tiny random model (mechanics; greedy decoding where a path must be
exact): presets, the dropped description encoder, batching, int8, streaming and the CPU fallbacks."""

import numpy as np
import pytest
import torch

from nbhelpers.parler.model import build_tiny
from nbhelpers.parler.synth import ParlerSynth, SynthSettings

TEXTS = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", "ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ.", "ಹೌದು"]
VOICE = "A female speaker with a calm voice and a moderate pitch."


def _speak(settings: SynthSettings, texts=TEXTS, **kw):
    synth = ParlerSynth(build_tiny(0), settings, **kw)
    return synth, synth.synthesize(texts, VOICE, frames=24, do_sample=False)


def _encoder_calls(synth: ParlerSynth) -> list:
    calls = []
    synth.model.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    return calls


def test_presets_give_the_same_audio_and_skip_the_encoder_once_saved(tmp_path):
    _, plain = _speak(SynthSettings(presets=False))
    first, cached = _speak(SynthSettings(), preset_dir=tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(plain, cached, strict=True))
    assert len(list(tmp_path.rglob("*.pt"))) == 1  # one description, one preset file
    again = ParlerSynth(build_tiny(0), SynthSettings(), preset_dir=tmp_path)
    calls = _encoder_calls(again)
    reloaded = again.synthesize(TEXTS, VOICE, frames=24, do_sample=False)
    assert calls == [] and all(np.array_equal(a, b) for a, b in zip(plain, reloaded, strict=True))
    other = ParlerSynth(build_tiny(1), SynthSettings(), preset_dir=tmp_path)  # other weights: other presets
    assert other.fingerprint != again.fingerprint
    assert other.synthesize(TEXTS[:1], VOICE, frames=24, do_sample=False)[0].shape == plain[0].shape
    assert len(list(tmp_path.rglob("*.pt"))) == 2


def test_dropping_the_description_encoder_frees_it_and_keeps_the_presets():
    synth = ParlerSynth(build_tiny(0), SynthSettings(drop_text_encoder=True))
    size = sum(p.numel() for p in synth.model.text_encoder.parameters())
    synth.preload([VOICE])
    assert synth.freed["parameters"] == size > 0 and synth.freed["bytes"] == 4 * size
    assert sum(p.numel() for p in synth.model.text_encoder.parameters()) == 0
    _, plain = _speak(SynthSettings(presets=False))
    dropped = synth.synthesize(TEXTS, VOICE, frames=24, do_sample=False)
    assert all(np.array_equal(a, b) for a, b in zip(plain, dropped, strict=True))
    with pytest.raises(RuntimeError, match="no preset for the description .* preload every description"):
        synth.synthesize(TEXTS[:1], "A male speaker, fast.", frames=24)


def test_batches_return_each_text_in_order_and_trimmed():
    _, single = _speak(SynthSettings(presets=False))
    _, batched = _speak(SynthSettings(batch_size=3))
    for i, a in enumerate(batched):
        assert a.shape == single[i].shape
        assert np.abs(a - single[i]).max() < 5e-3  # same text: the same audio up to padding numerics
        others = [np.abs(a - single[j]).max() for j in range(len(TEXTS)) if j != i]
        assert min(others) > 10 * np.abs(a - single[i]).max()  # ... and not another text's
    synth = ParlerSynth(build_tiny(0), SynthSettings(batch_size=2))
    lengths = [len(a) for a in synth.synthesize(TEXTS, VOICE, max_seconds=0.4, seed=3)]
    assert len(lengths) == 3 and all(0 < n <= int(0.4 * synth.bundle.sampling_rate) for n in lengths)


def test_cpu_fallbacks_are_stated_and_int8_quantises_the_decoder():
    synth = ParlerSynth(build_tiny(0), SynthSettings(compile=True, dtype="float16", int8_decoder=True),
                        device="cpu")
    report = synth.report()
    assert "CUDA graphs" in report["fallbacks"]["compile"] and "float32 used" in report["fallbacks"]["float16"]
    assert "int8_decoder" not in report["fallbacks"]
    quantised = [m for m in synth.model.decoder.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")]
    assert quantised and not any(type(m) is torch.nn.Linear for m in synth.model.decoder.modules())
    audio = synth.synthesize(TEXTS[:1], VOICE, frames=24, do_sample=False)[0]
    assert np.isfinite(audio).all() and audio.size > 0


def test_streaming_yields_chunks_that_make_up_the_utterance():
    synth = ParlerSynth(build_tiny(0), SynthSettings())
    whole = synth.synthesize(TEXTS[:1], VOICE, seed=5, max_seconds=1.0)[0]
    chunks = list(synth.stream(TEXTS[0], VOICE, seed=5, max_seconds=1.0, chunk_seconds=0.2))
    joined = np.concatenate(chunks)
    assert len(chunks) > 2 and joined.shape == whole.shape
    assert np.abs(joined - whole).max() < 1e-2  # chunks are decoded separately: codec edges differ slightly


def test_a_consumer_that_stops_early_leaves_no_generation_running():
    import threading

    synth = ParlerSynth(build_tiny(0), SynthSettings())
    before = threading.active_count()
    for _ in synth.stream(TEXTS[0], VOICE, max_seconds=1.0, chunk_seconds=0.1):
        break  # the generator is closed here: generation must finish and its thread end
    assert threading.active_count() == before
