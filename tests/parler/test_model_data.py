"""Model sources, tokenizer coverage, cached codes, delay-pattern labels and the masked loss (tiny model)."""

from __future__ import annotations

import pytest
import torch

from nbhelpers.parler.codes import cache_dir, load_or_encode
from nbhelpers.parler.coverage import check_prompt_coverage, tokenizer_coverage
from nbhelpers.parler.data import Collator, Filters, build_examples, delayed_labels, length_grouped_batches
from nbhelpers.parler.losses import codebook_cross_entropy, codebook_logits, decoder_inputs, valid_mask
from nbhelpers.parler.model import (
    ParlerBundle,
    bnb_config,
    build_tiny,
    get_bundle,
    materialise_tiny,
    parameter_counts,
    save_bundle,
)

KANNADA = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", "ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ."]


def test_tiny_model_is_tiny_and_loads_back_with_from_pretrained(tmp_path):
    from parler_tts import ParlerTTSForConditionalGeneration

    bundle = build_tiny(seed=3)
    assert parameter_counts(bundle.model)["total"] < 1_000_000
    assert parameter_counts(bundle.model.audio_encoder)["total"] < 500_000  # small DAC widths, not 62.7 M
    save_bundle(bundle, tmp_path / "m")
    loaded = ParlerTTSForConditionalGeneration.from_pretrained(tmp_path / "m")
    for name, tensor in bundle.model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert loaded.use_4dim_audio_codes  # still treated as a DAC codec by generate()


def test_materialised_tiny_is_deterministic_and_carries_both_tokenizers(tmp_path):
    a = get_bundle("tiny", workspace_dir=tmp_path / "a", seed=5)
    b = get_bundle("tiny", workspace_dir=tmp_path / "b", seed=5)
    c = build_tiny(seed=6)
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert not torch.equal(a.model.embed_prompts.weight, c.model.embed_prompts.weight)
    assert (materialise_tiny(tmp_path / "a", 5) / "description_tokenizer").is_dir()
    assert a.prompt_tokenizer.padding_side == "left" and a.description_tokenizer.padding_side == "right"


def test_byte_tokenizer_covers_kannada():
    report = check_prompt_coverage(build_tiny().prompt_tokenizer, KANNADA)
    assert report["unknown_share"] == 0 and report["not_round_trip"] == 0
    assert report["byte_level"] and report["byte_fallback_share"] == 1.0
    assert report["tokens_per_char"] > 2  # Kannada letters are 3 UTF-8 bytes


def test_coverage_check_rejects_a_tokenizer_without_kannada():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, **{ch: i + 2 for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz")}}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    latin = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]")
    assert tokenizer_coverage(latin, ["abc"])["unknown_share"] == 0
    with pytest.raises(ValueError, match="cannot represent these transcripts"):
        check_prompt_coverage(latin, KANNADA)


def test_quantisation_needs_cuda_with_a_clear_error():
    if torch.cuda.is_available():
        assert bnb_config("4bit") is not None
        return
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        bnb_config("8bit")
    with pytest.raises(ValueError, match="'8bit' or '4bit'"):
        bnb_config("2bit")


def test_delayed_labels_follow_the_delay_pattern():
    codes = torch.arange(12, dtype=torch.int16).reshape(3, 4)  # K=3, T=4
    labels = delayed_labels(codes, bos=99, eos=98)
    assert labels.shape == (7, 3)
    assert labels[:, 0].tolist() == [0, 1, 2, 3, 98, 98, 98]
    assert labels[:, 1].tolist() == [99, 4, 5, 6, 7, 98, 98]
    assert labels[:, 2].tolist() == [99, 99, 8, 9, 10, 11, 98]


@pytest.fixture(scope="module")
def tiny_with_codes(tmp_path_factory, kn_dataset_dir):
    import datasets

    root = tmp_path_factory.mktemp("codes")
    bundle = get_bundle("tiny", workspace_dir=root / "base", seed=0)
    data = datasets.load_from_disk(str(kn_dataset_dir))
    codes = load_or_encode(bundle, data, root / "cache", splits=("train", "validation"))
    return bundle, data, codes, root


def test_codes_are_cached_per_codec_and_reused(tiny_with_codes, monkeypatch):
    bundle, data, codes, root = tiny_with_codes
    assert len(codes["train"]) == len(data["train"])
    k, frames = codes["train"][0].shape
    assert k == bundle.num_codebooks and codes["train"][0].dtype == torch.int16
    assert abs(frames - data["train"][0]["duration"] * bundle.frame_rate) <= 1
    import nbhelpers.parler.codes as codes_module

    monkeypatch.setattr(codes_module, "encode_split", lambda *a, **k: pytest.fail("cache was not used"))
    again = load_or_encode(bundle, data, root / "cache", splits=("train", "validation"))
    assert all(torch.equal(a, b) for a, b in zip(again["train"], codes["train"], strict=True))
    other = build_tiny(seed=1)  # another codec: another cache folder
    assert cache_dir(root / "cache", other, data) != cache_dir(root / "cache", bundle, data)


def test_masked_loss_equals_the_model_loss_and_ignores_padding(tiny_with_codes):
    bundle, data, codes, _ = tiny_with_codes
    examples, _ = build_examples(bundle, data["train"], codes["train"])
    batch = Collator(bundle)(examples[:3])
    model = bundle.model.eval()
    dec = model.config.decoder
    dii = decoder_inputs(model, batch["labels"])
    with torch.no_grad():
        reference = model(**batch).loss
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    prompt_input_ids=batch["prompt_input_ids"], prompt_attention_mask=batch["prompt_attention_mask"],
                    decoder_input_ids=dii)
    labels = batch["labels"]
    logits = codebook_logits(out.logits, 3, dec.num_codebooks, labels.shape[1])
    mask = valid_mask(labels, dii, dec.bos_token_id, dec.eos_token_id)
    loss, per = codebook_cross_entropy(logits, labels, mask)
    assert torch.allclose(loss, reference, atol=1e-5)
    # exactly one EOS per codebook and utterance counts; BOS and padding never do
    assert int((mask & (labels == dec.eos_token_id)).sum()) == 3 * dec.num_codebooks
    assert not (mask & ((labels == dec.bos_token_id) | (labels == -100))).any()
    # corrupting logits at masked positions changes nothing
    noisy = logits.clone()
    noisy[~mask.transpose(1, 2)] += 100 * torch.randn_like(noisy[~mask.transpose(1, 2)])
    assert torch.allclose(codebook_cross_entropy(noisy, labels, mask)[0], loss)
    weighted, _ = codebook_cross_entropy(logits, labels, mask, [1.0, 0.0, 0.0, 0.0])
    assert torch.allclose(weighted, per[0])


def test_filters_drop_short_audio_and_long_texts_with_their_reasons(tiny_with_codes):
    bundle, data, codes, _ = tiny_with_codes
    split = data["train"]
    frames = sorted(int(c.shape[1]) for c in codes["train"])
    prompts = [len(ids) for ids in bundle.prompt_tokenizer(list(split["text"])).input_ids]
    descs = [len(ids) for ids in bundle.description_tokenizer(list(split["text_description"])).input_ids]
    min_frames = frames[len(frames) // 2]  # about half the clips are shorter
    kept, dropped = build_examples(bundle, split, codes["train"], filters=Filters(min_frames=min_frames))
    assert len(dropped["too_short"]) == sum(f < min_frames for f in frames) > 0
    assert all(e.frames >= min_frames for e in kept) and len(kept) + len(dropped["too_short"]) == len(split)
    cap = sorted(prompts)[len(prompts) // 2]
    kept, dropped = build_examples(bundle, split, codes["train"], filters=Filters(max_prompt_tokens=cap))
    assert sorted(dropped["prompt_too_long"]) == [i for i, n in enumerate(prompts) if n > cap]
    assert all(len(e.prompt_ids) <= cap for e in kept)
    cap = sorted(descs)[-1] - 1
    _, dropped = build_examples(bundle, split, codes["train"], filters=Filters(max_description_tokens=cap))
    assert sorted(dropped["description_too_long"]) == [i for i, n in enumerate(descs) if n > cap]
    with pytest.raises(ValueError, match="no utterance left after the filters .*min_audio_seconds"):
        build_examples(bundle, split, codes["train"], filters=Filters(min_frames=frames[-1] + 1))
    cfg = {"max_audio_seconds": 2.0, "min_audio_seconds": 0.5, "max_prompt_tokens": 0, "max_description_tokens": 7}
    assert Filters.from_profile(cfg, 86.0) == Filters(max_frames=172, min_frames=43, max_description_tokens=7)


def test_length_grouped_batches_keep_similar_lengths_together():
    lengths = [50, 10, 40, 11, 41, 12, 51, 13]
    batches = length_grouped_batches(lengths, 2)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(abs(lengths[a] - lengths[b]) <= 2 for a, b in batches)


def test_missing_columns_name_the_fix(tiny_with_codes):
    bundle, data, codes, _ = tiny_with_codes
    with pytest.raises(ValueError, match="text_description.*data prep"):
        build_examples(bundle, data["train"].remove_columns("text_description"), codes["train"])


def test_bundle_sampling_rate(tiny_with_codes):
    bundle: ParlerBundle = tiny_with_codes[0]
    assert bundle.sampling_rate == 44100 and bundle.frame_rate == 86
