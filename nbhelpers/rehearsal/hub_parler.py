"""Hub stand-ins for the Parler-TTS stages (02, 03), built in the parler stack: tiny random-weight models and
tokenizers saved under the real repo ids in a local hub cache, so that the real loading code runs unchanged
(``ParlerTTSForConditionalGeneration.from_pretrained("ai4bharat/indic-parler-tts")``, then the description
tokenizer from the model config's ``text_encoder._name_or_path``, ``google/flan-t5-large``).

    python -m nbhelpers.rehearsal.hub_parler --root DIR     # prints the environment variables as JSON

What is published (file names as the real repos have them):

- ``ai4bharat/indic-parler-tts``: config.json, generation_config.json, model.safetensors, preprocessor_config.json,
  and its prompt tokenizer: a Llama-style SentencePiece BPE with byte fallback (tokenizer.model, tokenizer.json,
  tokenizer_config.json, special_tokens_map.json), trained here on the project's Kannada and Bangla sentences
  plus English, so it round-trips any text like the real one;
- ``parler-tts/parler-tts-mini-v1``: the same files with the T5 tokenizer as prompt tokenizer (spiece.model ...);
- ``google/flan-t5-large``: the T5 description tokenizer (a SentencePiece unigram with T5's 100 sentinel
  tokens) and a config.json; no weights (Parler-TTS checkpoints carry their own text encoder).

The models keep the real architecture's shape where stages depend on it (24 decoder layers, a 24-block T5
encoder, 9 DAC codebooks of 1024 codes, 44.1 kHz at 86 frames/s, the real special token ids) with tiny widths:
about 1 M parameters, built in seconds. The DAC codec is described inside the Parler config, as in the real
checkpoints, so ``parler-tts/dac_44khZ_8kbps`` is never loaded by id and has no stand-in. One deliberate
difference: the decoder's code vocabulary is 1025 (1024 codes + pad/eos) where the released heads have spare
rows that a trained model never samples; random heads would, and the codec cannot decode them.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from . import builder_main, hubcache

BUILDER = "hub_parler"
VERSION = "2"
INDIC = "ai4bharat/indic-parler-tts"
MINI = "parler-tts/parler-tts-mini-v1"
T5 = "google/flan-t5-large"
DAC = "parler-tts/dac_44khZ_8kbps"  # named in the configs only
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json")
LLAMA_TOKENIZER_FILES = ("special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json")
T5_TOKENIZER_FILES = ("special_tokens_map.json", "spiece.model", "tokenizer.json", "tokenizer_config.json")
# the real checkpoints' structure, tiny widths
CODEBOOKS, CODEBOOK_SIZE, DECODER_LAYERS, TEXT_LAYERS, HIDDEN, HEADS = 9, 1024, 24, 24, 32, 4
ENGLISH = [
    "A female speaker delivers a slightly expressive and animated speech with a moderate speed and pitch.",
    "The recording is of very high quality, with the speaker's voice sounding clear and very close up.",
    "A male speaker with a low-pitched voice speaks slowly in a quiet room, with almost no background noise.",
    "A woman speaks fast with a high pitch; the recording is slightly noisy and sounds distant and reverberant.",
    "A man delivers his words quite monotone, in a very confined sounding environment with clear audio quality.",
    "The speaker talks at a moderate pace with a neutral tone; the audio is a bit muffled but intelligible.",
    "Hello, how are you today? The weather in Bangalore is pleasant and it may rain this evening.",
    "very clear, fairly noisy, extremely noisy, very expressive, slightly monotone, quite fast, rather slow",
]


def _texts() -> list[str]:
    from ..data.corpus import SENTENCES

    return [*SENTENCES["kn"], *SENTENCES["bn"], *ENGLISH]


def _spm_protobuf() -> None:
    """Let transformers' slow-to-fast converter read a SentencePiece model while writing the stand-in files.

    sentencepiece 0.2.3's ``sentencepiece_model_pb2`` needs protobuf >= 5, and the parler stack has protobuf 4
    (descript-audiotools requires < 5); transformers bundles the same message definitions generated for
    protobuf 4, which this build process uses instead. Only the builder does this; the clients are untouched."""
    import sentencepiece

    try:
        from sentencepiece import sentencepiece_model_pb2  # noqa: F401
    except ImportError:
        from transformers.utils import sentencepiece_model_pb2_new as pb2

        sys.modules["sentencepiece.sentencepiece_model_pb2"] = pb2
        sentencepiece.sentencepiece_model_pb2 = pb2


def _train_spm(texts: list[str], prefix: Path, **options) -> Path:
    import sentencepiece as spm

    corpus = prefix.with_suffix(".txt")
    corpus.write_text("\n".join(texts * 4) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), hard_vocab_limit=False,
                                   character_coverage=1.0, num_threads=1, minloglevel=2, **options)
    return prefix.with_suffix(".model")


def prompt_tokenizer(work: Path):
    """Indic Parler-TTS's kind of prompt tokenizer: Llama-style SentencePiece BPE with byte fallback (ids 0-2 =
    <unk> <s> </s>, 256 byte pieces), ``legacy=False``, pad = <unk>, left padding, as its tokenizer_config has."""
    from transformers import LlamaTokenizerFast

    model = _train_spm(_texts(), work / "indic_prompt", model_type="bpe", vocab_size=1024, byte_fallback=True,
                       split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, add_dummy_prefix=True,
                       remove_extra_whitespaces=False, normalization_rule_name="identity",
                       allow_whitespace_only_pieces=True)
    return LlamaTokenizerFast(vocab_file=str(model), from_slow=True, legacy=False, add_prefix_space=True,
                              add_bos_token=True, add_eos_token=False, pad_token="<unk>", padding_side="left",
                              clean_up_tokenization_spaces=False, spaces_between_special_tokens=False)


def description_tokenizer(work: Path):
    """flan-t5's kind of tokenizer: SentencePiece unigram (pad 0, </s> 1, <unk> 2) plus 100 sentinel tokens."""
    from transformers import T5TokenizerFast

    model = _train_spm(ENGLISH, work / "t5", model_type="unigram", vocab_size=400, pad_id=0, eos_id=1, unk_id=2,
                       bos_id=-1)
    return T5TokenizerFast(vocab_file=str(model), from_slow=True, extra_ids=100, legacy=True, model_max_length=512)


def save_t5_tokenizer(tokenizer, folder: Path) -> None:
    """``save_pretrained``, with the tokenizer_config keys flan-t5-large really has: its config predates
    ``legacy``/``add_prefix_space``, and either key makes transformers rebuild the fast tokenizer from the
    SentencePiece model instead of reading tokenizer.json."""
    tokenizer.save_pretrained(folder)
    path = Path(folder) / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("add_prefix_space", "legacy"):
        config.pop(key, None)
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def parler_config(prompt_vocab: int, text_vocab: int):
    """A ParlerTTSConfig with the real structure (see module docstring) and tiny widths."""
    from parler_tts import DACConfig, ParlerTTSConfig, ParlerTTSDecoderConfig
    from transformers import T5Config

    text = T5Config(vocab_size=text_vocab, d_model=HIDDEN, d_kv=HIDDEN // HEADS, d_ff=2 * HIDDEN,
                    num_layers=TEXT_LAYERS, num_decoder_layers=TEXT_LAYERS, num_heads=HEADS,
                    feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
                    pad_token_id=0, eos_token_id=1, architectures=["T5ForConditionalGeneration"])
    text._name_or_path = T5  # what the description tokenizer is loaded from, as in the real config
    audio = DACConfig(num_codebooks=CODEBOOKS, codebook_size=CODEBOOK_SIZE, latent_dim=32, model_bitrate=8,
                      frame_rate=86, sampling_rate=44100, encoder_dim=4, decoder_dim=32)
    audio._name_or_path = DAC
    decoder = ParlerTTSDecoderConfig(
        vocab_size=CODEBOOK_SIZE + 1, max_position_embeddings=4096, num_hidden_layers=DECODER_LAYERS,
        ffn_dim=2 * HIDDEN, num_attention_heads=HEADS, hidden_size=HIDDEN, num_codebooks=CODEBOOKS,
        pad_token_id=CODEBOOK_SIZE, eos_token_id=CODEBOOK_SIZE, bos_token_id=CODEBOOK_SIZE + 1,
        decoder_start_token_id=CODEBOOK_SIZE + 1, tie_word_embeddings=False)
    return ParlerTTSConfig.from_sub_models_config(text, audio, decoder, vocab_size=prompt_vocab,
                                                  pad_token_id=CODEBOOK_SIZE,
                                                  decoder_start_token_id=CODEBOOK_SIZE + 1)


def save_model(folder: Path, prompt_vocab: int, text_vocab: int, seed: int) -> None:
    """Random weights for the config, saved with ``save_pretrained`` plus the generation and feature-extractor
    configs the real repos ship."""
    import torch
    from parler_tts import ParlerTTSForConditionalGeneration
    from transformers import EncodecFeatureExtractor, GenerationConfig

    from ..parler import model as _sized_dac  # noqa: F401  (registers the DAC that honours its config's widths)

    config = parler_config(prompt_vocab, text_vocab)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ParlerTTSForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=CODEBOOK_SIZE + 1, decoder_start_token_id=CODEBOOK_SIZE + 1, pad_token_id=CODEBOOK_SIZE,
        eos_token_id=CODEBOOK_SIZE, do_sample=True, max_length=2580, min_new_tokens=10)
    model.save_pretrained(folder, safe_serialization=True)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=44100, padding_value=0.0, chunk_length_s=None,
                            overlap=None, padding_side="left", return_attention_mask=True).save_pretrained(folder)


def build(root: Path) -> dict[str, str]:
    """Build (once) and publish the stand-ins under ``<root>/hub``; the environment that points the clients at it."""
    root = Path(root).resolve()
    env = hubcache.hub_env(root)
    cache = Path(env["HF_HUB_CACHE"])
    if hubcache.is_built(root, BUILDER, VERSION, cache):
        return env
    repos: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="hub_parler.") as tmp:
        work = Path(tmp)
        _spm_protobuf()
        desc_tok, prompt_tok = description_tokenizer(work), prompt_tokenizer(work)
        t5_dir, indic_dir, mini_dir = work / "flan-t5", work / "indic", work / "mini-v1"
        save_t5_tokenizer(desc_tok, t5_dir)
        parler_config(1, len(desc_tok)).text_encoder.save_pretrained(t5_dir)
        repos[T5] = hubcache.publish_folder(cache, T5, t5_dir, ("config.json", *T5_TOKENIZER_FILES))
        prompt_tok.save_pretrained(indic_dir)
        save_model(indic_dir, len(prompt_tok), len(desc_tok), seed=1)
        repos[INDIC] = hubcache.publish_folder(cache, INDIC, indic_dir, (*MODEL_FILES, *LLAMA_TOKENIZER_FILES))
        save_t5_tokenizer(desc_tok, mini_dir)
        save_model(mini_dir, len(desc_tok), len(desc_tok), seed=2)
        repos[MINI] = hubcache.publish_folder(cache, MINI, mini_dir, (*MODEL_FILES, *T5_TOKENIZER_FILES))
    hubcache.write_stamp(root, BUILDER, VERSION, repos)
    return env


def main(argv: list[str] | None = None) -> int:
    return builder_main(__name__, __doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
