"""The Bangla VITS configuration: character set, fixed test sentences, starting points and a VitsConfig built
from a profile. Coqui 0.28 API: ``BaseAudioConfig`` (VitsAudioConfig is gone), ``VitsArgs`` from
``TTS.tts.configs.vits_config``."""

from __future__ import annotations

import copy
import csv
import json
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_RATE = 22050
SPEAKER = "bn"

# Every assigned code point of the Bengali block (U+0980-U+09FF). Taking the whole block keeps both the
# precomposed letters (য় U+09DF, ড় U+09DC, ঢ় U+09DD, ো U+09CB, ৌ U+09CC) and the decomposed sequences that
# Unicode normalisation produces (base + nukta U+09BC, ে + া / ৗ), so either form in a transcript is covered.
BENGALI_BLOCK = "".join(chr(c) for c in range(0x0980, 0x0A00) if unicodedata.category(chr(c)) != "Cn")
JOINERS = "\u200c\u200d"  # ZWNJ and ZWJ: ZWJ forms the ya-phala in র‍্যা, ZWNJ blocks conjuncts
BANGLA_CHARACTERS = BENGALI_BLOCK + JOINERS
# Space and ASCII punctuation as in coqui's VitsCharacters, plus double quotes and the em dash (bn_phonemizer
# keeps them) and
# the danda/double danda (U+0964/U+0965).
PUNCTUATIONS = "!'(),-.:;? \"\u201c\u201d\u2014\u0964\u0965"
# IPA symbols espeak-ng's `bn` voice emits that the English VITS symbol set lacks (measured: aspiration).
ESPEAK_BN_EXTRA_PHONEMES = "ʰ"

# Fixed sentences synthesised after training (numbers, a time, a year and a ZWJ conjunct on purpose):
# bn_phonemizer expands the digits into Bangla words before the model sees them.
TEST_SENTENCES = (
    "আমার সোনার বাংলা, আমি তোমায় ভালোবাসি।",
    "আজ ২১ ফেব্রুয়ারি, আন্তর্জাতিক মাতৃভাষা দিবস।",
    "ট্রেনটি সকাল ৭:৩০ মিনিটে ঢাকা থেকে ছাড়বে, ভাড়া ৩৫০ টাকা।",
    "১৯৭১ সালে বাংলাদেশ স্বাধীন হয়েছে।",
    "র‍্যাবের গাড়িটি ধীরে ধীরে সামনে এগিয়ে গেল।",
)


@dataclass(frozen=True)
class StartingPoint:
    """Where training starts: a coqui model id to download (None = from scratch) and how text is encoded."""

    name: str
    model_id: str | None
    text: str  # "bangla" (bn_phonemizer + Bangla characters), "released" (the model's own), "espeak-bn"
    description: str


STARTING_POINTS = {
    "tiny": StartingPoint("tiny", None, "bangla", "tiny random-weight VITS from scratch (smoke: mechanics only)"),
    "full": StartingPoint("full", None, "bangla", "full-size VITS from scratch (needs many hours of data)"),
    "bn-male": StartingPoint("bn-male", "tts_models/bn/custom/vits-male", "released",
                             "released Bangla male VITS (Apache-2.0), its own character set"),
    "bn-female": StartingPoint("bn-female", "tts_models/bn/custom/vits-female", "released",
                               "released Bangla female VITS (Apache-2.0), its own character set"),
    "en-vits": StartingPoint("en-vits", "tts_models/en/ljspeech/vits", "espeak-bn",
                             "English LJSpeech VITS, text as espeak-ng `bn` IPA phonemes"),
}


def starting_point(name: str) -> StartingPoint:
    """Look up a starting point by name with a readable error listing the choices."""
    if name not in STARTING_POINTS:
        raise ValueError(f"unknown start {name!r}: choose one of {', '.join(STARTING_POINTS)}")
    return STARTING_POINTS[name]


def download_start(start: StartingPoint, models_dir: Path | None = None) -> tuple[Path, Path]:
    """Download a released coqui model with its ModelManager (Kaggle/Colab profiles) and return
    (checkpoint, config.json). Needs internet; a clear error says what to do without it."""
    from TTS.utils.manage import ModelManager

    try:
        manager = ModelManager(output_prefix=models_dir, progress_bar=True)
        model_path, config_path, _ = manager.download_model(start.model_id)
    except Exception as e:  # network errors come in many types (requests, zipfile, OSError)
        raise RuntimeError(
            f"could not download {start.model_id} ({type(e).__name__}: {e}). Fix: enable Internet in the Kaggle "
            "notebook settings (or run on Colab), or attach the model files and pass restore_path=<model.pth> "
            "with its config.json beside it.") from e
    model_path = Path(model_path)
    config_path = Path(config_path) if config_path else model_path.parent / "config.json"
    return model_path, config_path


def bangla_characters() -> Any:
    """CharactersConfig for Bangla graphemes produced by bn_phonemizer (VitsCharacters layout)."""
    from TTS.tts.configs.shared_configs import CharactersConfig

    return CharactersConfig(characters_class="TTS.tts.models.vits.VitsCharacters", pad="<PAD>", eos=None,
                            bos=None, blank="<BLNK>", characters=BANGLA_CHARACTERS, punctuations=PUNCTUATIONS,
                            phonemes="", is_unique=False, is_sorted=True)


def tiny_model_args() -> Any:
    """A VITS small enough to train a few steps a second on 2 CPU cores (mechanics only, never quality)."""
    from TTS.tts.configs.vits_config import VitsArgs

    return VitsArgs(hidden_channels=32, hidden_channels_ffn_text_encoder=64, num_heads_text_encoder=2,
                    num_layers_text_encoder=1, num_layers_posterior_encoder=1, num_layers_flow=1,
                    kernel_size_flow=3, resblock_type_decoder="2", resblock_kernel_sizes_decoder=[3],
                    resblock_dilation_sizes_decoder=[[1, 3]],
                    upsample_rates_decoder=[8, 8, 4], upsample_initial_channel_decoder=32,
                    upsample_kernel_sizes_decoder=[16, 16, 8], periods_multi_period_discriminator=[2],
                    spec_segment_size=16, use_sdp=False)


def load_coqui_config(path: str | Path) -> Any:
    """A VitsConfig read from a config.json (a released model's or a run's)."""
    from TTS.tts.configs.vits_config import VitsConfig

    config = VitsConfig()
    config.load_json(str(path))
    return config


def suite_seed(params: dict[str, Any]) -> int:
    """The suite-wide seed (profiles/suite.toml) for this profile, so coqui does not train with its own 54321."""
    from ..profiles import load_profile

    return load_profile("suite", params["profile"])["seed"]


def trainer_settings(config: Any, params: dict[str, Any], output_dir: str | Path, run_name: str) -> Any:
    """The coqui ``Trainer`` settings every coqui model of the suite takes from its profile (stages 04 and 08): run
    folder, epochs, the suite's seed, precision, logging/saving/eval cadence, checkpoint retention, loaders."""
    config.run_name = run_name
    config.output_path = str(output_dir)
    config.epochs = params["epochs"]
    config.training_seed = suite_seed(params)
    config.mixed_precision, config.precision = params["mixed_precision"], params["precision"]
    config.print_step, config.plot_step = params["print_step"], params["plot_step"]
    config.save_step, config.save_n_checkpoints = params["save_step"], params["keep_checkpoints"]
    config.save_best_after, config.save_all_best = params["save_best_after"], False
    config.run_eval, config.print_eval = True, False
    config.test_delay_epochs = params["test_delay_epochs"]
    config.num_loader_workers = config.num_eval_loader_workers = params["num_loader_workers"]
    config.dashboard_logger = "tensorboard"
    config.cudnn_benchmark = False
    return config


def build_config(params: dict[str, Any], output_dir: str | Path, dataset_dir: str | Path | None = None,
                 base_config: Any = None, start: StartingPoint | None = None) -> Any:
    """The VitsConfig for this run: architecture and text encoding from ``base_config`` (a released model)
    or the tiny/Bangla defaults, training settings from the profile ``params``."""
    from TTS.config.shared_configs import BaseAudioConfig, BaseDatasetConfig
    from TTS.tts.configs.vits_config import VitsConfig

    start = start or starting_point(params["start"])
    output_dir = Path(output_dir)
    if base_config is not None:
        config = base_config
        if start.text == "espeak-bn":
            config.phonemizer, config.phoneme_language = "espeak", "bn"
            config.use_phonemes = True
            chars = config.characters
            if chars is not None and chars.phonemes is not None and ESPEAK_BN_EXTRA_PHONEMES not in chars.phonemes:
                chars.phonemes += ESPEAK_BN_EXTRA_PHONEMES  # vocabulary grows: only the text embedding resets
    else:
        config = VitsConfig(model_args=tiny_model_args() if start.name == "tiny" else full_model_args(),
                            audio=BaseAudioConfig(sample_rate=SAMPLE_RATE, fft_size=1024, win_length=1024,
                                                  hop_length=256, num_mels=80, mel_fmin=0.0, mel_fmax=None),
                            characters=bangla_characters(), use_phonemes=True, phonemizer="bn_phonemizer",
                            phoneme_language="bn", text_cleaner="basic_cleaners", add_blank=True)
    if config.audio.sample_rate != SAMPLE_RATE:
        raise ValueError(f"the starting model runs at {config.audio.sample_rate} Hz; this stage trains at "
                         f"{SAMPLE_RATE} Hz (the data prep export). Pick another start.")
    config.model_args.spec_segment_size = params["spec_segment_size"]
    # coqui names the run folder <run_name>-<date to the minute>-<git hash>: a random suffix keeps two runs
    # started in the same minute (a restore fine-tune right after a training session) out of each other's folder
    trainer_settings(config, params, output_dir, f"vits_bn-{secrets.token_hex(3)}")
    config.phoneme_cache_path = str(output_dir / "phoneme_cache")
    config.batch_size, config.eval_batch_size = params["batch_size"], params["eval_batch_size"]
    config.lr_gen = config.lr_disc = params["learning_rate"]
    config.min_audio_len = int(params["min_audio_seconds"] * SAMPLE_RATE)
    config.max_audio_len = int(params["max_audio_seconds"] * SAMPLE_RATE)
    config.max_text_len = params["max_text_len"]
    config.test_sentences = [[s] for s in TEST_SENTENCES]
    if dataset_dir is not None:
        config.datasets = [BaseDatasetConfig(formatter="ljspeech", dataset_name="bn", path=str(dataset_dir),
                                             meta_file_train="metadata_train.csv", meta_file_val="metadata_val.csv",
                                             language="bn")]
    return config


def full_model_args() -> Any:
    """The full-size VITS architecture (coqui defaults, ~83M parameters with the discriminator)."""
    from TTS.tts.configs.vits_config import VitsArgs

    return VitsArgs()


@dataclass(frozen=True)
class Row:
    """One metadata row: where it came from (file, line), id, transcript and wav path."""

    file: Path
    line: int
    id: str
    text: str
    wav: Path


def read_metadata(path: Path) -> list[Row]:
    """Rows of an LJSpeech metadata file (``id|text`` or ``id|text|normalised``; the last column is used).
    A malformed row raises ValueError naming the file, line and fix."""
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for n, cols in enumerate(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE), start=1):
            if not cols or not "".join(cols).strip():
                continue
            if len(cols) < 2 or not cols[0].strip() or not cols[-1].strip():
                raise ValueError(f"{path}, line {n}: expected 'id|text' or 'id|text|normalised text', got "
                                 f"{'|'.join(cols)[:80]!r}. Fix: re-run data prep (01) or repair that line.")
            rows.append(Row(path, n, cols[0].strip(), cols[-1].strip(), path.parent / "wavs" / f"{cols[0].strip()}.wav"))
    return rows


def split_rows(ljspeech_dir: str | Path, val_fraction: float = 0.1) -> tuple[list[Row], list[Row]]:
    """Train and validation rows: metadata_train/metadata_val.csv when data prep wrote them, else a
    deterministic tail split of metadata.csv (at least one validation row)."""
    root = Path(ljspeech_dir)
    train_f, val_f = root / "metadata_train.csv", root / "metadata_val.csv"
    if train_f.is_file() and val_f.is_file():
        return read_metadata(train_f), read_metadata(val_f)
    rows = read_metadata(root / "metadata.csv")
    n_val = max(1, round(len(rows) * val_fraction))
    return rows[:-n_val], rows[-n_val:]


def read_speakers(ljspeech_dir: str | Path) -> dict[str, str]:
    """``id -> speaker`` from data prep's ``speakers.csv`` (``id|speaker``) beside the metadata; empty without one."""
    path = Path(ljspeech_dir) / "speakers.csv"
    if not path.is_file():
        return {}
    rows = (line.split("|") for line in path.read_text(encoding="utf-8").splitlines() if "|" in line)
    return {uid.strip(): speaker.strip() for uid, speaker, *_ in rows}


def to_samples(rows: list[Row], speakers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Coqui sample dicts (what its formatters + load_tts_samples produce) for a list of rows; each row's speaker
    from ``speakers`` (:func:`read_speakers`, multi-speaker training), else one speaker for all."""
    out = []
    for r in rows:
        speaker = (speakers or {}).get(r.id, SPEAKER)
        out.append({"text": r.text, "audio_file": str(r.wav), "speaker_name": speaker, "root_path": str(r.file.parent),
                    "language": "", "audio_unique_name": f"{speaker}#{r.id}"})
    return out


def save_config(config: Any, path: str | Path) -> Path:
    """Write a coqui config as JSON (UTF-8, Bangla kept readable)."""
    path = Path(path)
    path.write_text(json.dumps(config.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def tokenizer_and_scales(config: Any) -> tuple[Any, list[float]]:
    """The model's tokenizer and its inference (noise, length, noise_dp) scales, the ONNX graph's inputs."""
    from TTS.tts.utils.text.tokenizer import TTSTokenizer

    tokenizer, _ = TTSTokenizer.init_from_config(copy.deepcopy(config))
    args = config.model_args
    return tokenizer, [args.inference_noise_scale, args.length_scale, args.inference_noise_scale_dp]
