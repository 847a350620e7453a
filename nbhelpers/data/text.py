"""Transcript normalisation for Kannada, Bangla and English (LJ Speech, LibriTTS): Unicode NFC, punctuation, numbers
and symbols spelled out in the language, and a script check (share of letters in the language's Unicode block)."""

from __future__ import annotations

import re
import unicodedata

SCRIPTS = {"kn": (0x0C80, 0x0CFF), "bn": (0x0980, 0x09FF), "en": (0x0041, 0x007A)}  # en: basic Latin letters
LANGUAGE_NAMES = {"kn": "Kannada", "bn": "Bangla", "en": "English"}

# 0-99 in Bangla (irregular, so listed); Kannada 0-99 is composed from units, teens and tens below.
_BN_0_99 = (
    "শূন্য এক দুই তিন চার পাঁচ ছয় সাত আট নয় দশ এগারো বারো তেরো চৌদ্দ পনেরো ষোলো সতেরো আঠারো উনিশ "
    "বিশ একুশ বাইশ তেইশ চব্বিশ পঁচিশ ছাব্বিশ সাতাশ আটাশ উনত্রিশ ত্রিশ একত্রিশ বত্রিশ তেত্রিশ চৌত্রিশ "
    "পঁয়ত্রিশ ছত্রিশ সাঁইত্রিশ আটত্রিশ উনচল্লিশ চল্লিশ একচল্লিশ বিয়াল্লিশ তেতাল্লিশ চুয়াল্লিশ পঁয়তাল্লিশ "
    "ছেচল্লিশ সাতচল্লিশ আটচল্লিশ উনপঞ্চাশ পঞ্চাশ একান্ন বাহান্ন তিপ্পান্ন চুয়ান্ন পঞ্চান্ন ছাপ্পান্ন সাতান্ন "
    "আটান্ন উনষাট ষাট একষট্টি বাষট্টি তেষট্টি চৌষট্টি পঁয়ষট্টি ছেষট্টি সাতষট্টি আটষট্টি উনসত্তর সত্তর "
    "একাত্তর বাহাত্তর তিয়াত্তর চুয়াত্তর পঁচাত্তর ছিয়াত্তর সাতাত্তর আটাত্তর উনআশি আশি একাশি বিরাশি তিরাশি "
    "চুরাশি পঁচাশি ছিয়াশি সাতাশি আটাশি উননব্বই নব্বই একানব্বই বিরানব্বই তিরানব্বই চুরানব্বই পঁচানব্বই "
    "ছিয়ানব্বই সাতানব্বই আটানব্বই নিরানব্বই").split()
_BN_HUNDREDS = "একশো দুশো তিনশো চারশো পাঁচশো ছয়শো সাতশো আটশো নয়শো".split()

_KN_UNITS = "ಸೊನ್ನೆ ಒಂದು ಎರಡು ಮೂರು ನಾಲ್ಕು ಐದು ಆರು ಏಳು ಎಂಟು ಒಂಬತ್ತು".split()
_KN_TEENS = "ಹತ್ತು ಹನ್ನೊಂದು ಹನ್ನೆರಡು ಹದಿಮೂರು ಹದಿನಾಲ್ಕು ಹದಿನೈದು ಹದಿನಾರು ಹದಿನೇಳು ಹದಿನೆಂಟು ಹತ್ತೊಂಬತ್ತು".split()
_KN_TENS = "ಇಪ್ಪತ್ತ ಮೂವತ್ತ ನಲವತ್ತ ಐವತ್ತ ಅರವತ್ತ ಎಪ್ಪತ್ತ ಎಂಬತ್ತ ತೊಂಬತ್ತ".split()  # stems, 20..90
_KN_HUNDREDS = "ನೂರು ಇನ್ನೂರು ಮುನ್ನೂರು ನಾನೂರು ಐನೂರು ಆರುನೂರು ಏಳುನೂರು ಎಂಟುನೂರು ಒಂಬೈನೂರು".split()
_KN_VOWEL_SIGN = {"ಅ": "", "ಆ": "ಾ", "ಇ": "ಿ", "ಈ": "ೀ", "ಉ": "ು", "ಎ": "ೆ", "ಏ": "ೇ", "ಐ": "ೈ", "ಒ": "ೊ",
                  "ಓ": "ೋ"}

_EN_0_19 = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
            "seventeen eighteen nineteen").split()
_EN_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_EN_GROUPS = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))  # the short scale

WORDS = {
    "kn": {"thousand": "ಸಾವಿರ", "thousand_of": "ಸಾವಿರದ", "lakh": "ಲಕ್ಷ", "lakh_of": "ಲಕ್ಷದ", "crore": "ಕೋಟಿ",
           "point": "ಬಿಂದು", "minus": "ಮೈನಸ್", "%": "ಪ್ರತಿಶತ", "₹": "ರೂಪಾಯಿ", "$": "ಡಾಲರ್", "৳": "ಟಾಕಾ",
           "&": "ಮತ್ತು", "+": "ಜೊತೆಗೆ", "=": "ಸಮ", "@": "ಅಟ್", "°": "ಡಿಗ್ರಿ"},
    "bn": {"thousand": "হাজার", "thousand_of": "হাজার", "lakh": "লাখ", "lakh_of": "লাখ", "crore": "কোটি",
           "point": "দশমিক", "minus": "মাইনাস", "%": "শতাংশ", "₹": "রুপি", "$": "ডলার", "৳": "টাকা",
           "&": "এবং", "+": "যোগ", "=": "সমান", "@": "অ্যাট", "°": "ডিগ্রি"},
    "en": {"point": "point", "minus": "minus", "%": "percent", "₹": "rupees", "$": "dollars", "৳": "taka", "&": "and",
           "+": "plus", "=": "equals", "@": "at", "°": "degrees"},
}
CURRENCY = ("₹", "$", "৳")  # spoken after the amount


def _check_language(language: str) -> None:
    if language not in SCRIPTS:
        raise ValueError(f"unsupported language {language!r}: this suite prepares {', '.join(SCRIPTS)} "
                         f"({', '.join(LANGUAGE_NAMES.values())})")


def _kn_below_100(n: int) -> str:
    if n < 10:
        return _KN_UNITS[n]
    if n < 20:
        return _KN_TEENS[n - 10]
    stem, unit = _KN_TENS[n // 10 - 2], n % 10
    if unit == 0:
        return stem + "ು"
    word = _KN_UNITS[unit]
    if word[0] in _KN_VOWEL_SIGN:  # sandhi: the tens' final consonant takes the unit's vowel
        return stem + _KN_VOWEL_SIGN[word[0]] + word[1:]
    return stem + word


def _below_1000(n: int, language: str, *, followed: bool) -> str:
    """Words for 1..999; ``followed`` means more words come after (Kannada uses the oblique ನೂರ form)."""
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        word = _KN_HUNDREDS[hundreds - 1] if language == "kn" else _BN_HUNDREDS[hundreds - 1]
        if language == "kn" and (rest or followed):
            word = word[:-1]  # ನೂರು -> ನೂರ before what follows
        parts.append(word)
    if rest:
        parts.append(_kn_below_100(rest) if language == "kn" else _BN_0_99[rest])
    return " ".join(parts)


def _en_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [_EN_0_19[hundreds], "hundred"] if hundreds else []
    if rest:
        tens, unit = divmod(rest, 10)
        parts.append(_EN_0_19[rest] if rest < 20 else _EN_TENS[tens - 2] + (f"-{_EN_0_19[unit]}" if unit else ""))
    return " ".join(parts)


def _en_number(n: int) -> str:
    parts = []
    for value, word in _EN_GROUPS:
        if n >= value:
            count, n = divmod(n, value)
            parts += [_en_below_1000(count) if count < 1000 else _en_number(count), word]
    if n or not parts:
        parts.append(_en_below_1000(n) if n else _EN_0_19[0])
    return " ".join(parts)


def number_to_words(n: int, language: str) -> str:
    """Spell a whole number: Kannada and Bangla with the Indian grouping (thousand, lakh, crore), English with the
    short scale (thousand, million, billion)."""
    _check_language(language)
    if n < 0:
        return WORDS[language]["minus"] + " " + number_to_words(-n, language)
    if language == "en":
        return _en_number(n)
    if n == 0:
        return _KN_UNITS[0] if language == "kn" else _BN_0_99[0]
    w = WORDS[language]
    crore, n = divmod(n, 10**7)
    lakh, n = divmod(n, 10**5)
    thousand, n = divmod(n, 1000)
    parts = []
    if crore:
        parts += [number_to_words(crore, language), w["crore"]]
    if lakh:
        parts += [_below_1000(lakh, language, followed=False), w["lakh_of"] if (thousand or n) else w["lakh"]]
    if thousand:
        parts += [_below_1000(thousand, language, followed=False),
                  w["thousand_of"] if n else w["thousand"]]
    if n:
        parts.append(_below_1000(n, language, followed=False))
    return " ".join(parts)


def digits_to_words(digits: str, language: str) -> str:
    """Read a digit string one digit at a time (phone numbers, leading zeros, decimals)."""
    table = {"kn": _KN_UNITS, "bn": _BN_0_99, "en": _EN_0_19}[language]
    return " ".join(table[int(d)] for d in digits)


_NATIVE_DIGITS = {**{chr(0x0CE6 + i): str(i) for i in range(10)}, **{chr(0x09E6 + i): str(i) for i in range(10)}}
_PUNCT_MAP = {"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "`": "'", "–": "-",
              "—": " - ", "―": " - ", "…": ".", "।": "।", "|": "।", "॥": "।", "(": ", ", ")": ", ", "[": ", ",
              "]": ", ", "{": ", ", "}": ", ", "/": " ", "\\": " ", "*": " ", "_": " ", "#": " ", "~": " ",
              "\u200c": "\u200c", "\u200d": "\u200d", "\t": " ", "\n": " ", "\r": " "}
_KEEP_PUNCT = set(".,?!;:-'\"।")
_NUMBER = re.compile(r"(?P<cur>[₹$৳]\s?)?(?P<neg>(?<![\w.])-)?(?P<int>\d+(?:,\d+)*)(?:\.(?P<frac>\d+))?"
                     r"(?P<time>:\d\d)?(?P<pct>\s?%)?")


def _spell_number(m: re.Match, language: str) -> str:
    w = WORDS[language]
    raw = m.group("int")
    digits = raw.replace(",", "")
    if m.group("time"):
        words = number_to_words(int(digits), language) + " " + number_to_words(int(m.group("time")[1:]), language)
    elif (len(digits) > 1 and digits[0] == "0") or len(digits) > 9:
        words = digits_to_words(digits, language)
    else:
        words = number_to_words(int(digits), language)
    if m.group("frac"):
        words += f" {w['point']} " + digits_to_words(m.group("frac"), language)
    if m.group("neg"):
        words = w["minus"] + " " + words
    if m.group("pct"):
        words += " " + w["%"]
    if m.group("cur"):
        words += " " + w[m.group("cur").strip()]
    after = m.string[m.end():m.end() + 1]
    return f" {words}" + ("" if after and unicodedata.category(after)[0] in "LM" else " ")


def normalize_text(text: str, language: str) -> str:
    """NFC, unified punctuation, numbers/currency/symbols as words, collapsed whitespace.

    Digits glued to a suffix (Bangla ``3টি``) become the number word glued to the same suffix.
    """
    _check_language(language)
    text = unicodedata.normalize("NFC", text)
    text = "".join(_NATIVE_DIGITS.get(c, _PUNCT_MAP.get(c, c)) for c in text)
    text = _NUMBER.sub(lambda m: _spell_number(m, language), text)
    for symbol in ("%", "&", "+", "=", "@", "°", *CURRENCY):
        text = text.replace(symbol, f" {WORDS[language][symbol]} ")
    out = []
    for c in text:
        cat = unicodedata.category(c)
        if cat[0] in "LM" or c in _KEEP_PUNCT or c in "\u200c\u200d" or c == " ":
            out.append(c)
        elif cat[0] == "Z":
            out.append(" ")
        elif cat[0] == "N":
            out.append(c)  # other numerals (superscripts...) are left for the script check to catch
        else:
            out.append(" ")
    text = "".join(out)
    text = re.sub(r"\s+([.,?!;:।])", r"\1", text)  # no space before punctuation
    text = re.sub(r"([.,?!;:।])(?:\s*[.,;:])+", r"\1", text)  # ".," -> "."
    text = re.sub(r"([?!।.])\1+", r"\1", text)  # "!!" -> "!"
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"^[.,;:\s-]+", "", text)


def script_ratio(text: str, language: str) -> float:
    """Share of letters (and combining marks) that belong to the language's Unicode block (1.0 if none)."""
    _check_language(language)
    lo, hi = SCRIPTS[language]
    letters = [c for c in text if unicodedata.category(c)[0] in "LMN" and c not in "\u200c\u200d"]
    if not letters:
        return 1.0
    return sum(lo <= ord(c) <= hi for c in letters) / len(letters)


_VIRAMA = {"kn": "\u0CCD", "bn": "\u09CD"}


def syllable_count(text: str, language: str) -> int:
    """Approximate syllables (for speaking rate): Kannada and Bangla, independent vowels plus consonants not silenced
    by a virama; English, vowel groups per word (at least one a word)."""
    if language == "en":
        return sum(max(1, len(re.findall(r"[aeiouy]+", word))) for word in re.findall(r"[a-z]+", text.lower()))
    lo, hi = SCRIPTS[language]
    count = 0
    for i, c in enumerate(text):
        if not lo <= ord(c) <= hi or unicodedata.category(c) != "Lo":
            continue
        if i + 1 < len(text) and text[i + 1] == _VIRAMA[language]:
            continue
        count += 1
    return count
