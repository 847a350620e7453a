import pytest

from nbhelpers.distill.vocab import PrunedTokenizer, kannada_coverage_text, select_prompt_vocab
from nbhelpers.parler.model import byte_tokenizer

UNSEEN = ["ಹಂಪಿಯ ದೇವಾಲಯಗಳು ಬಹಳ ಪುರಾತನವಾದವು, ೧೨೩ ವರ್ಷ!", "ಝಣ ಝಣ ಘಂಟೆ ಔಷಧ ಋಷಿ ೠ ಙ ಞ"]


def _tokenizers(sp_tokenizer):
    return {"sentencepiece": sp_tokenizer, "byt5": byte_tokenizer()}


@pytest.mark.parametrize("kind", ["sentencepiece", "byt5"])
def test_pruning_shrinks_and_keeps_corpus_segmentation(kind, sp_tokenizer, kannada_corpus):
    base = _tokenizers(sp_tokenizer)[kind]
    kept = select_prompt_vocab(base, kannada_corpus)
    assert len(kept) < len(base)
    assert set(base.all_special_ids) <= set(kept)
    pruned = PrunedTokenizer(base, kept)
    for text in kannada_corpus:
        old = base(text)["input_ids"]
        new = pruned.encode(text)
        assert pruned.to_teacher_ids(new) == old  # exactly the teacher's tokens, renumbered
        assert max(new) < len(kept)
        assert pruned.decode(new, skip_special_tokens=True) == base.decode(old, skip_special_tokens=True)


@pytest.mark.parametrize("kind", ["sentencepiece", "byt5"])
def test_unseen_kannada_round_trips(kind, sp_tokenizer, kannada_corpus):
    base = _tokenizers(sp_tokenizer)[kind]
    pruned = PrunedTokenizer(base, select_prompt_vocab(base, kannada_corpus))
    for text in UNSEEN + [kannada_coverage_text()]:
        new = pruned.encode(text)
        assert max(new) < len(pruned)
        assert pruned.decode(new, skip_special_tokens=True) == base.decode(base(text)["input_ids"],
                                                                          skip_special_tokens=True)
        assert pruned.decode(new, skip_special_tokens=True).strip() == text.strip()


def test_sentencepiece_pruning_drops_other_scripts(sp_tokenizer, kannada_corpus):
    kept = set(select_prompt_vocab(sp_tokenizer, kannada_corpus))
    hindi = [i for i in sp_tokenizer("नमस्ते आप कैसे हैं")["input_ids"] if i not in sp_tokenizer.all_special_ids]
    assert hindi and not set(hindi) <= kept
    byte_pieces = [i for p, i in sp_tokenizer.get_vocab().items() if p.startswith("<0x")]
    assert len(byte_pieces) == 256 and set(byte_pieces) <= kept
    pruned = PrunedTokenizer(sp_tokenizer, sorted(kept))
    text = "नमस्ते"  # outside Kannada: still representable through byte fallback
    assert pruned.decode(pruned.encode(text), skip_special_tokens=True) == text


def test_batch_padding_and_reload(sp_tokenizer, kannada_corpus, tmp_path):
    pruned = PrunedTokenizer(sp_tokenizer, select_prompt_vocab(sp_tokenizer, kannada_corpus))
    pruned.padding_side = "left"
    batch = pruned(kannada_corpus[:3], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert (batch["input_ids"][batch["attention_mask"] == 0] == pruned.pad_token_id).all()
    assert batch["attention_mask"][:, -1].all()  # left padding
    pruned.save_pretrained(tmp_path)
    again = PrunedTokenizer.from_pretrained(tmp_path)
    assert again.kept_ids == pruned.kept_ids
    assert again.encode(UNSEEN[0]) == pruned.encode(UNSEEN[0])
    with pytest.raises(FileNotFoundError, match="pruned_vocab.json"):
        PrunedTokenizer.from_pretrained(tmp_path / "nothing")


def test_empty_corpus_is_an_error(sp_tokenizer):
    with pytest.raises(ValueError, match="no corpus text"):
        select_prompt_vocab(sp_tokenizer, [])
