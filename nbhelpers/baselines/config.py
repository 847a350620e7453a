"""Coqui configs of the two baseline models, built from a profile: a FastSpeech2 acoustic model (text -> mel, with
coqui's built-in alignment network instead of external durations) and a HiFi-GAN vocoder (mel -> waveform) trained
on the same audio. Both share one audio/mel configuration, so the vocoder hears the mels the acoustic model makes.
Text front end per ``language``: Bangla as stage 04 (Bangla characters, ``bn_phonemizer``, its test sentences, so 06
compares them with VITS on the same input); English (LJ Speech, LibriTTS) as coqui's English recipes (espeak-ng
``en-us`` IPA phonemes after ``english_cleaners``). With ``multi_speaker`` FastSpeech2 learns a speaker embedding."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..vits.config import SAMPLE_RATE, TEST_SENTENCES, bangla_characters, trainer_settings

MODELS = ("fastspeech2", "hifigan")
MEL_FMAX = 8000.0  # coqui's FastSpeech2/HiFi-GAN LJSpeech recipes; the vocoder's mel loss uses the same
LANGUAGES = ("bn", "en")
ENGLISH_SENTENCES = ("The quick brown fox jumps over the lazy dog.",
                     "Please call Stella and ask her to bring these things with her from the store.",
                     "It was a bright cold day in April, and the clocks were striking thirteen.")


def test_sentences(language: str) -> tuple[str, ...]:
    """The sentences samples, the size study's timing and coqui's test synthesis speak in ``language``."""
    return TEST_SENTENCES if language == "bn" else ENGLISH_SENTENCES


def text_front_end(language: str) -> dict[str, Any]:
    """The Fastspeech2Config text fields of ``language`` (see the module docstring)."""
    if language == "bn":
        return {"characters": bangla_characters(), "phonemizer": "bn_phonemizer", "phoneme_language": "bn",
                "text_cleaner": "basic_cleaners"}
    return {"phonemizer": "espeak", "phoneme_language": "en-us", "text_cleaner": "english_cleaners"}


def audio_config() -> Any:
    """The mel front end both models use (coqui's FastSpeech2 recipe: natural-log mels without normalisation,
    silence trimmed), at the data prep export's 22.05 kHz."""
    from TTS.config.shared_configs import BaseAudioConfig

    return BaseAudioConfig(sample_rate=SAMPLE_RATE, fft_size=1024, win_length=1024, hop_length=256, num_mels=80,
                           mel_fmin=0.0, mel_fmax=MEL_FMAX, do_trim_silence=True, trim_db=60.0, signal_norm=False,
                           spec_gain=1.0, log_func="np.log", ref_level_db=20, preemphasis=0.0,
                           pitch_fmin=65.0, pitch_fmax=640.0)


# FastSpeech2 shape knobs (profile settings, 0 = the size preset's): name -> (tiny, full) preset values
SHAPE = {"hidden": (32, 384), "layers": (1, 6), "heads": (1, 1), "ffn": (64, 1024)}


def fastspeech2_shape(params: Mapping[str, Any]) -> dict[str, int]:
    """The acoustic model's width, encoder/decoder depth, attention heads and feed-forward size: the profile's
    ``fastspeech2_<knob>`` where set, else the ``size`` preset's (tiny: a mechanics-only model that trains a step
    in well under a second on 2 CPU cores; full: coqui's default FastSpeech2). Heads must divide the width."""
    preset = 1 if params["size"] == "full" else 0
    shape = {k: params[f"fastspeech2_{k}"] or values[preset] for k, values in SHAPE.items()}
    if shape["hidden"] % shape["heads"]:
        raise ValueError(f"FastSpeech2 width {shape['hidden']} is not divisible by {shape['heads']} attention heads: "
                         "set fastspeech2_hidden / fastspeech2_heads so the heads divide the width")
    return shape


def fastspeech2_args(params: Mapping[str, Any]) -> Any:
    """``ForwardTTSArgs`` with pitch, energy and the alignment network on, shaped by :func:`fastspeech2_shape`
    (the same shape for encoder and decoder; the tiny preset also narrows the three variance predictors)."""
    from TTS.tts.configs.forward_tts_config import ForwardTTSArgs

    shape = fastspeech2_shape(params)
    layer = {"hidden_channels_ffn": shape["ffn"], "num_heads": shape["heads"], "num_layers": shape["layers"],
             "dropout_p": 0.1}
    small = {} if params["size"] == "full" else {f"{p}_predictor_hidden_channels": 32
                                                 for p in ("pitch", "energy", "duration")}
    return ForwardTTSArgs(hidden_channels=shape["hidden"], use_pitch=True, use_energy=True, use_aligner=True,
                          encoder_params=dict(layer), decoder_params=dict(layer), **small)


def hifigan_generator(size: str) -> dict[str, Any]:
    """HiFi-GAN generator parameters: coqui's V1 for ``full``, a 32-channel single-resblock one for ``tiny``."""
    if size == "full":
        from TTS.vocoder.configs.hifigan_config import HifiganConfig

        return dict(HifiganConfig().generator_model_params)
    return {"upsample_factors": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4], "upsample_initial_channel": 32,
            "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]], "resblock_type": "2"}


def fastspeech2_config(params: Mapping[str, Any], output_dir: str | Path, speakers: list[str] | None = None) -> Any:
    """The Fastspeech2Config of this run: the language's text front end (:func:`text_front_end`, without VITS's
    blank tokens), phonemes, F0 and energy computed once into caches beside the runs, one per dataset (coqui keeps
    a cache folder's values and statistics, whatever data it then trains on); with ``speakers`` (multi-speaker) a
    speaker embedding over those names."""
    from TTS.tts.configs.fastspeech2_config import Fastspeech2Config

    output_dir = Path(output_dir)
    config = Fastspeech2Config(model_args=fastspeech2_args(params), audio=audio_config(), use_phonemes=True,
                               add_blank=False, **text_front_end(params["language"]),
                               phoneme_cache_path=str(output_dir / f"phoneme_cache_{params['dataset']}"),
                               compute_f0=True,
                               f0_cache_path=str(output_dir / f"f0_cache_{params['dataset']}"), compute_energy=True,
                               energy_cache_path=str(output_dir / f"energy_cache_{params['dataset']}"),
                               precompute_num_workers=params["num_loader_workers"])
    config.batch_size, config.eval_batch_size = params["batch_size"], params["eval_batch_size"]
    config.lr = params["learning_rate"]
    config.lr_scheduler_params = {"warmup_steps": params["warmup_steps"]}
    config.min_audio_len = int(params["min_audio_seconds"] * SAMPLE_RATE)
    config.max_audio_len = int(params["max_audio_seconds"] * SAMPLE_RATE)
    config.min_seq_len, config.max_seq_len = 1, 10**9  # the audio length limits above do the filtering
    config.max_text_len = params["max_text_len"]
    config.test_sentences = [[s] for s in test_sentences(params["language"])]
    if speakers:
        config.use_speaker_embedding = config.model_args.use_speaker_embedding = True
        config.speakers = list(speakers)
    return trainer_settings(config, params, output_dir, f"fastspeech2_{params['language']}")


def hifigan_config(params: Mapping[str, Any], output_dir: str | Path) -> Any:
    """The HifiganConfig of this run: the same mel front end as the acoustic model (its mel loss too), random
    ``vocoder_seq_len``-sample segments of the same wavs."""
    from TTS.vocoder.configs.hifigan_config import HifiganConfig

    audio = audio_config()
    config = HifiganConfig(audio=audio, generator_model_params=hifigan_generator(params["size"]),
                           seq_len=params["vocoder_seq_len"], pad_short=2000, use_noise_augment=False)
    config.l1_spec_loss_params = {**config.l1_spec_loss_params, "mel_fmax": MEL_FMAX,
                                  "sample_rate": audio.sample_rate}
    config.batch_size, config.eval_batch_size = params["vocoder_batch_size"], params["vocoder_batch_size"]
    config.lr_gen = config.lr_disc = params["vocoder_learning_rate"]
    return trainer_settings(config, params, Path(output_dir), f"hifigan_{params['language']}")


def load_config(path: str | Path) -> Any:
    """A run's or bundle's config.json back as its coqui config class (FastSpeech2 or HiFi-GAN)."""
    from TTS.config import load_config as coqui_load

    return coqui_load(str(path))
