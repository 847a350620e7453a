"""Text normalisation: NFC, numbers and symbols as words, punctuation, script check."""

import unicodedata

import pytest

from nbhelpers.data.text import normalize_text, number_to_words, script_ratio, syllable_count


@pytest.mark.parametrize("language, n, words", [
    ("kn", 7, "ಏಳು"), ("kn", 21, "ಇಪ್ಪತ್ತೊಂದು"), ("kn", 45, "ನಲವತ್ತೈದು"), ("kn", 250, "ಇನ್ನೂರ ಐವತ್ತು"),
    ("kn", 1998, "ಒಂದು ಸಾವಿರದ ಒಂಬೈನೂರ ತೊಂಬತ್ತೆಂಟು"), ("kn", 100000, "ಒಂದು ಲಕ್ಷ"),
    ("bn", 7, "সাত"), ("bn", 64, "চৌষট্টি"), ("bn", 150, "একশো পঞ্চাশ"), ("bn", 2024, "দুই হাজার চব্বিশ"),
    ("bn", 25000000, "দুই কোটি পঞ্চাশ লাখ"),
    ("en", 0, "zero"), ("en", 13, "thirteen"), ("en", 40, "forty"), ("en", 21, "twenty-one"),
    ("en", 305, "three hundred five"), ("en", 1998, "one thousand nine hundred ninety-eight"),
    ("en", 2_000_021, "two million twenty-one"), ("en", 1_250_000_000, "one billion two hundred fifty million"),
    ("en", -7, "minus seven"),
])
def test_number_to_words(language, n, words):
    assert number_to_words(n, language) == words


def test_nfc_and_punctuation():
    decomposed = unicodedata.normalize("NFD", "ಕೋಟಿ")
    assert decomposed != "ಕೋಟಿ"
    out = normalize_text(f"“{decomposed}”!!  (ಹೌದು)…", "kn")
    assert out == unicodedata.normalize("NFC", out)
    assert "ಕೋಟಿ" in out and "“" not in out and "!!" not in out and "(" not in out and "…" not in out


def test_numbers_symbols_and_native_digits_become_words():
    kn = normalize_text("ಬೆಲೆ ₹250, 15% ಮತ್ತು ೧೨ ಕ್ಕೆ 7:30 4.5", "kn")
    assert not any(c.isdigit() for c in kn)
    assert "ಇನ್ನೂರ ಐವತ್ತು ರೂಪಾಯಿ" in kn and "ಹದಿನೈದು ಪ್ರತಿಶತ" in kn and "ಹನ್ನೆರಡು" in kn
    assert "ಏಳು ಮೂವತ್ತು" in kn and "ನಾಲ್ಕು ಬಿಂದು ಐದು" in kn
    bn = normalize_text("আমাদের 3টি বিড়াল, দাম ৳১৫০ & 25,000 জন।", "bn")
    assert "তিনটি" in bn and "একশো পঞ্চাশ টাকা" in bn and "এবং" in bn and "পঁচিশ হাজার" in bn
    assert not any(c.isdigit() for c in bn)


def test_script_ratio_flags_wrong_script():
    assert script_ratio(normalize_text("ನಮಸ್ಕಾರ, 3 ಬೆಕ್ಕುಗಳು", "kn"), "kn") == 1.0
    assert script_ratio("This is English", "kn") == 0.0
    assert script_ratio("নমস্কার", "kn") == 0.0 and script_ratio("নমস্কার", "bn") == 1.0


def test_syllables_skip_virama():
    assert syllable_count("ಕನ್ನಡ", "kn") == 3  # ಕ ನ್ನ ಡ
    assert syllable_count("বাংলা", "bn") == 2


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported language"):
        normalize_text("hello", "xx")


def test_english_transcripts_are_spelled_out_and_checked():
    """English (LJ Speech / LibriTTS for stage 08): times, currency after the amount, percentages, decimals, digit
    strings read one by one; basic Latin counts as the script, vowel groups as syllables."""
    out = normalize_text("The 7:30 train costs $25 - 15% off; pi is 3.14, call 0123 & ask for Room 101!", "en")
    assert out == ("The seven thirty train costs twenty-five dollars - fifteen percent off; pi is three point one "
                   "four, call zero one two three and ask for Room one hundred one!")
    assert script_ratio(out, "en") == 1.0 and script_ratio("এটি বাংলা", "en") == 0.0
    assert script_ratio("The café", "en") < 1.0  # é is outside basic Latin: a wrong-script warning sign
    assert syllable_count("The quick brown fox jumps over the lazy dog", "en") == 11
    assert syllable_count("banana", "en") == 3 and syllable_count("a I", "en") == 2  # every word at least one
