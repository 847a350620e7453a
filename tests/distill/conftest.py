"""Fixtures for the distillation tests: a tiny random teacher (stage 02's offline builder), a small Kannada
corpus and a SentencePiece tokenizer with byte fallback trained on it (like Indic Parler-TTS's prompt one)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_intra_op_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids oversubscription (20-30x faster here).
    Only for these tests: other folders' tests in the same process keep torch's default."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

KANNADA = [
    "ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?",
    "ಕನ್ನಡ ನಾಡಿನ ಭಾಷೆ ತುಂಬಾ ಸುಂದರವಾಗಿದೆ.",
    "ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುತ್ತಿದೆ.",
    "ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ ಮತ್ತು ಪುಸ್ತಕ ಓದುತ್ತೇನೆ.",
    "ಅವರು ಮೈಸೂರಿನ ಅರಮನೆಯನ್ನು ನೋಡಿದರು.",
    "ಬೆಳಿಗ್ಗೆ ಕಾಫಿ ಕುಡಿಯುವುದು ನನಗೆ ಇಷ್ಟ.",
    "ಮಕ್ಕಳು ಆಟದ ಮೈದಾನದಲ್ಲಿ ಆಡುತ್ತಿದ್ದಾರೆ.",
    "ರೈತರು ಹೊಲದಲ್ಲಿ ಕೆಲಸ ಮಾಡುತ್ತಾರೆ.",
]
OTHER = [  # other scripts the teacher's tokenizer also knows: their pieces must be pruned
    "नमस्ते, आप कैसे हैं? मुझे हिंदी पसंद है।",
    "আমি বাংলায় কথা বলি এবং গান গাই।",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Speech synthesis models learn to read text aloud with natural prosody.",
]


@pytest.fixture(scope="session")
def kannada_corpus() -> list[str]:
    return list(KANNADA)


@pytest.fixture(scope="session")
def tiny_teacher():
    from nbhelpers.parler.model import build_tiny

    return build_tiny(seed=3, layers=4, text_layers=3)


@pytest.fixture(scope="session")
def sp_tokenizer(tmp_path_factory):
    """A Llama-style SentencePiece (BPE, byte fallback) trained on Kannada, Hindi, Bangla and English."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    folder = tmp_path_factory.mktemp("sp")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join((KANNADA + OTHER) * 3), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "sp"), vocab_size=400, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, pad_id=3, unk_id=0, bos_id=1, eos_id=2,
        minloglevel=2, num_threads=1)
    return LlamaTokenizer(vocab_file=str(folder / "sp.model"), legacy=True, add_bos_token=True,
                          pad_token="<pad>")
