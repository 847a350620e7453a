"""Embedded smoke corpora: Kannada and Bangla sentences written for this project and English ones (Harvard-style
sentences, with numbers and punctuation added), spoken by espeak-ng with three voice variants acting as speakers, saved in the OpenSLR
(``line_index.tsv``) or LJSpeech (``metadata.csv``) layout so the smoke profile runs the real readers.

Speakers differ on purpose: one clean 22.05 kHz 16-bit WAV, one noisy 16 kHz FLAC, one reverberant 44.1 kHz
24-bit stereo WAV, all with leading/trailing silence, so every cleaning and annotation step has work to do.
espeak output is cached under ``$TTS_CACHE_DIR/espeak`` (default ``~/.cache/tts-suite/espeak``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from .audio import resample

SENTENCES = {
    "kn": [
        "ನಮಸ್ಕಾರ, ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುವ ಸಾಧ್ಯತೆ ಇದೆ.",
        "ನನ್ನ ಮನೆಯಲ್ಲಿ 3 ಬೆಕ್ಕುಗಳು ಮತ್ತು 2 ನಾಯಿಗಳು ಇವೆ.",
        "ರೈಲು ಬೆಳಿಗ್ಗೆ 7:30 ಕ್ಕೆ ಹೊರಡುತ್ತದೆ.",
        "ಈ ಪುಸ್ತಕದ ಬೆಲೆ ₹250 ಮಾತ್ರ!",
        "ನೀವು ಎಲ್ಲಿಗೆ ಹೋಗುತ್ತಿದ್ದೀರಿ?",
        "ನಮ್ಮ ಶಾಲೆಯಲ್ಲಿ 1200 ವಿದ್ಯಾರ್ಥಿಗಳು ಓದುತ್ತಾರೆ.",
        "ಅಮ್ಮ ಅಡುಗೆ ಮನೆಯಲ್ಲಿ ರುಚಿಯಾದ ದೋಸೆ ಮಾಡುತ್ತಿದ್ದಾರೆ.",
        "ಕರ್ನಾಟಕದಲ್ಲಿ 31 ಜಿಲ್ಲೆಗಳಿವೆ.",
        "ಈ ವರ್ಷ ಬೆಳೆ 15% ಹೆಚ್ಚಾಗಿದೆ.",
        "“ಬೇಗ ಬಾ,” ಎಂದು ಅಜ್ಜಿ ಕರೆದರು.",
        "ಮೈಸೂರು ಅರಮನೆ ತುಂಬಾ ಸುಂದರವಾಗಿದೆ.",
        "ಅವನು 2 ಕಿಲೋ ಅಕ್ಕಿ ಮತ್ತು 1 ಲೀಟರ್ ಹಾಲು ತಂದನು.",
        "ಸಭೆ ಮಧ್ಯಾಹ್ನ 3 ಗಂಟೆಗೆ ಆರಂಭವಾಗುತ್ತದೆ.",
        "ದಯವಿಟ್ಟು ಬಾಗಿಲು ಮುಚ್ಚಿ; ಹೊರಗೆ ಚಳಿ ಇದೆ.",
        "ನನ್ನ ದೂರವಾಣಿ ಸಂಖ್ಯೆ 98450 12345.",
        "ಮಕ್ಕಳು ಮೈದಾನದಲ್ಲಿ ಕ್ರಿಕೆಟ್ ಆಡುತ್ತಿದ್ದಾರೆ.",
        "ಈ ಕೆರೆಯ ಆಳ 4.5 ಮೀಟರ್.",
        "ನಾಳೆ ನಾವು ಹಂಪಿಗೆ ಪ್ರವಾಸ ಹೋಗುತ್ತೇವೆ.",
        "ಹಬ್ಬಕ್ಕೆ ಹೊಸ ಬಟ್ಟೆ ಖರೀದಿಸಿದೆವು.",
        "ಅವಳು ೧೯೯೮ ರಲ್ಲಿ ಹುಟ್ಟಿದಳು.",
        "ಬಸ್ ನಿಲ್ದಾಣ ಇಲ್ಲಿಂದ 500 ಮೀಟರ್ ದೂರದಲ್ಲಿದೆ.",
        "ಗಿಡಗಳಿಗೆ ಪ್ರತಿದಿನ ನೀರು ಹಾಕಬೇಕು.",
        "ಓಹ್! ನಾನು ನನ್ನ ಕೊಡೆ ಮರೆತುಬಿಟ್ಟೆ.",
        "ಈ ರಸ್ತೆಯಲ್ಲಿ ವಾಹನಗಳ ವೇಗ 40 ಕಿಲೋಮೀಟರ್ ಮೀರಬಾರದು.",
        "ಗ್ರಂಥಾಲಯ ಭಾನುವಾರ ಮುಚ್ಚಿರುತ್ತದೆ.",
        "ಅಪ್ಪ ಹೊಲದಲ್ಲಿ ರಾಗಿ ಬೆಳೆಯುತ್ತಾರೆ.",
        "ಪರೀಕ್ಷೆಯಲ್ಲಿ ಅವನಿಗೆ 100 ಕ್ಕೆ 92 ಅಂಕಗಳು ಬಂದವು.",
        "ಕಾಫಿ ಬೇಕೇ, ಅಥವಾ ಚಹಾ ಬೇಕೇ?",
        "ಆಕಾಶದಲ್ಲಿ ಕಾಮನಬಿಲ್ಲು ಕಾಣಿಸುತ್ತಿದೆ.",
        "ಅಂಗಡಿ ಬೆಳಿಗ್ಗೆ 9 ರಿಂದ ರಾತ್ರಿ 10 ರವರೆಗೆ ತೆರೆದಿರುತ್ತದೆ.",
        "ನದಿಯ ನೀರು ತುಂಬಾ ತಣ್ಣಗಿದೆ.",
        "ಈ ಊರಿನ ಜನಸಂಖ್ಯೆ ಸುಮಾರು 25,000.",
        "ಶಿಕ್ಷಕರು ಕನ್ನಡ ವ್ಯಾಕರಣವನ್ನು ಕಲಿಸುತ್ತಿದ್ದಾರೆ.",
        "ನಿನ್ನೆ ರಾತ್ರಿ ಜೋರಾಗಿ ಗಾಳಿ ಬೀಸಿತು...",
        "ಒಂದು ವಾರದಲ್ಲಿ 7 ದಿನಗಳಿವೆ.",
        "ಆಸ್ಪತ್ರೆ 24 ಗಂಟೆಯೂ ತೆರೆದಿರುತ್ತದೆ.",
        "ನಾನು ಪ್ರತಿದಿನ 30 ನಿಮಿಷ ನಡೆಯುತ್ತೇನೆ.",
        "ಹೂವಿನ ತೋಟದಲ್ಲಿ ಚಿಟ್ಟೆಗಳು ಹಾರಾಡುತ್ತಿವೆ.",
        "ಅವರ ಮದುವೆ ಡಿಸೆಂಬರ್ 12 ರಂದು ನಡೆಯಲಿದೆ.",
        "ಮಾವಿನ ಹಣ್ಣು ಬೇಸಿಗೆಯಲ್ಲಿ ಸಿಗುತ್ತದೆ.",
        "ನೀವು ಹೇಗಿದ್ದೀರಿ? ನಾನು ಚೆನ್ನಾಗಿದ್ದೇನೆ.",
        "ರೈತರು 3.2 ಎಕರೆ ಜಮೀನಿನಲ್ಲಿ ಭತ್ತ ಬೆಳೆದರು.",
        "ಚಿತ್ರಮಂದಿರದಲ್ಲಿ 150 ಆಸನಗಳಿವೆ.",
        "ಮೆಟ್ರೋ ರೈಲು ಪ್ರತಿ 5 ನಿಮಿಷಕ್ಕೆ (ಸರಾಸರಿ) ಬರುತ್ತದೆ.",
    ],
    "bn": [
        "নমস্কার, আজ কলকাতায় বৃষ্টি হতে পারে।",
        "আমাদের বাড়িতে 3টি বিড়াল আর 2টি কুকুর আছে।",
        "ট্রেনটি সকাল ৭:৩০ মিনিটে ছাড়বে।",
        "এই বইটির দাম মাত্র ৳১৫০!",
        "তুমি কোথায় যাচ্ছ?",
        "আমাদের স্কুলে 1200 জন ছাত্রছাত্রী পড়ে।",
        "মা রান্নাঘরে মজার খিচুড়ি রান্না করছেন।",
        "বাংলাদেশে 64টি জেলা আছে।",
        "এ বছর ধানের ফলন 15% বেড়েছে।",
        "“তাড়াতাড়ি এসো,” দাদি ডাকলেন।",
        "পদ্মা নদী খুব চওড়া আর সুন্দর।",
        "সে 2 কেজি চাল আর 1 লিটার দুধ কিনেছে।",
        "সভা দুপুর 3টায় শুরু হবে।",
        "দয়া করে দরজাটা বন্ধ করো; বাইরে ঠান্ডা।",
        "আমার ফোন নম্বর 98300 12345.",
        "ছেলেরা মাঠে ফুটবল খেলছে।",
        "পুকুরটির গভীরতা 4.5 মিটার।",
        "কাল আমরা সুন্দরবনে বেড়াতে যাব।",
        "পূজার জন্য নতুন জামা কিনেছি।",
        "তার জন্ম ১৯৯৮ সালে।",
        "বাসস্ট্যান্ড এখান থেকে 500 মিটার দূরে।",
        "গাছে প্রতিদিন জল দিতে হয়।",
        "আরে! আমি ছাতাটা ভুলে গেছি।",
        "এই রাস্তায় গতিসীমা ঘণ্টায় 40 কিলোমিটার।",
        "গ্রন্থাগার রবিবার বন্ধ থাকে।",
        "বাবা মাঠে পাট চাষ করেন।",
        "পরীক্ষায় সে 100-এর মধ্যে 92 পেয়েছে।",
        "চা খাবে, নাকি কফি?",
        "আকাশে রংধনু দেখা যাচ্ছে।",
        "দোকান সকাল 9টা থেকে রাত 10টা পর্যন্ত খোলা।",
        "নদীর জল খুব ঠান্ডা।",
        "এই গ্রামের জনসংখ্যা প্রায় 25,000.",
        "শিক্ষক বাংলা ব্যাকরণ পড়াচ্ছেন।",
        "কাল রাতে জোরে ঝড় হয়েছিল...",
        "এক সপ্তাহে 7 দিন।",
        "হাসপাতাল 24 ঘণ্টা খোলা থাকে।",
        "আমি প্রতিদিন 30 মিনিট হাঁটি।",
        "বাগানে প্রজাপতি উড়ে বেড়াচ্ছে।",
        "তাদের বিয়ে 12 ডিসেম্বর।",
        "গরমকালে আম পাওয়া যায়।",
        "কেমন আছেন? আমি ভালো আছি।",
        "কৃষকেরা 3.2 একর জমিতে ধান চাষ করেছেন।",
        "সিনেমা হলে 150টি আসন আছে।",
        "মেট্রো প্রতি 5 মিনিটে (গড়ে) আসে।",
    ],
    "en": [
        "The birch canoe slid on the smooth planks.",
        "Glue the sheet to the dark blue background.",
        "It is easy to tell the depth of a well.",
        "The train leaves the station at 7:30 every morning.",
        "A large size in stockings is hard to sell.",
        "She paid $25 for 3 books and a map.",
        "The boy was there when the sun rose.",
        "Rice is often served in round bowls.",
        "The juice of lemons makes fine punch.",
        "About 15% of the class walked to school.",
        "The box was thrown beside the parked truck.",
        "Four hours of steady work faced us.",
        "“Come back soon,” said the old man at the gate.",
        "The library holds more than 1200 rare books.",
        "Where did you put the keys to the shed?",
        "The small pup gnawed a hole in the sock.",
        "The fish twisted and turned on the bent hook.",
        "Press the pants and sew a button on the vest.",
        "The swan dive was far short of perfect.",
        "We walked 12 miles before the rain began!",
        "The beauty of the view stunned the young boy.",
        "Two blue fish swam in the tank.",
        "Her purse was full of useless trash.",
        "The colt reared and threw the tall rider.",
    ],
}
# Text read with the corpus language's voice but transcribed in another script: the wrong-script example.
_WRONG_SCRIPT = {"kn": "This transcript is in English, not in the corpus language.",
                 "bn": "This transcript is in English, not in the corpus language.",
                 "en": "এই লেখাটি বাংলায়, ইংরেজিতে নয়।"}
# espeak-ng voice of each corpus language (American English, like LJ Speech and LibriTTS)
ESPEAK_VOICE = {"kn": "kn", "bn": "bn", "en": "en-us"}


@dataclass(frozen=True)
class Voice:
    """One smoke-corpus speaker: espeak-ng settings and the recording conditions simulated for it."""

    speaker: str  # OpenSLR-style speaker id: <lang><f|m>_<number>
    variant: str  # espeak-ng voice variant
    pitch: int
    speed: int
    rate: int  # sample rate of the stored file
    channels: int
    subtype: str
    ext: str
    noise_snr_db: float | None = None
    reverb_t60: float | None = None


def voices(language: str) -> list[Voice]:
    """The three speakers of a smoke corpus (voice variant, pitch, speed and recording conditions)."""
    return [
        Voice(f"{language}m_00001", "m3", 40, 150, 22050, 1, "PCM_16", ".wav"),
        Voice(f"{language}f_00002", "f2", 70, 165, 16000, 1, "PCM_16", ".flac", noise_snr_db=22.0),
        Voice(f"{language}m_00003", "m1", 30, 140, 44100, 2, "PCM_24", ".wav", reverb_t60=0.45),
    ]


def cache_dir() -> Path:
    """Where synthesised espeak-ng clips are cached ($TTS_CACHE_DIR/espeak)."""
    base = Path(os.environ.get("TTS_CACHE_DIR", Path.home() / ".cache" / "tts-suite"))
    path = base / "espeak"
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=1)
def espeak_version() -> str:
    """The installed espeak-ng's version line (part of the cache key); a clear error if it is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: `apt-get install espeak-ng` (Debian/Ubuntu, Kaggle, Colab)")
    return subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def espeak(text: str, language: str, variant: str, pitch: int, speed: int) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng (cached on disk by voice, settings, version and text)."""
    key = hashlib.sha1("|".join([espeak_version(), language, variant, str(pitch), str(speed), text]).encode()).hexdigest()
    path = cache_dir() / f"{key}.wav"
    if not path.is_file():
        tmp = path.with_name(f"{key}.{os.getpid()}.part.wav")
        subprocess.run(["espeak-ng", "-v", f"{ESPEAK_VOICE.get(language, language)}+{variant}", "-p", str(pitch), "-s", str(speed), "-w",
                        str(tmp), text], check=True, capture_output=True, timeout=60)
        os.replace(tmp, path)
    audio, sr = sf.read(str(path), dtype="float32")
    return audio, sr


def _condition(audio: np.ndarray, sr: int, voice: Voice, seed: int) -> tuple[np.ndarray, int]:
    """Pad with silence, add noise or reverberation, convert to the voice's rate and channel count."""
    rng = np.random.default_rng(seed)
    lead, tail = rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.7)
    audio = np.concatenate([np.zeros(int(lead * sr), np.float32), audio * 0.6, np.zeros(int(tail * sr), np.float32)])
    if voice.reverb_t60:
        n = int(voice.reverb_t60 * sr)
        t = np.arange(n) / sr
        ir = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * t / voice.reverb_t60).astype(np.float32)
        ir[0] = 1.0
        ir *= 0.25 / np.sqrt(np.sum(ir[1:] ** 2) + 1e-9)
        ir[0] = 1.0
        wet = fftconvolve(audio, ir)[: len(audio)]
        audio = (wet / (np.max(np.abs(wet)) + 1e-9) * 0.6).astype(np.float32)
    if voice.noise_snr_db is not None:
        speech_power = np.mean(audio[np.abs(audio) > 0.01] ** 2) if np.any(np.abs(audio) > 0.01) else 1e-4
        noise = rng.standard_normal(len(audio)).astype(np.float32)
        audio = audio + noise * np.sqrt(speech_power / 10 ** (voice.noise_snr_db / 10))
    audio = resample(audio.astype(np.float32), sr, voice.rate)
    if voice.channels == 2:
        audio = np.stack([audio, audio * 0.9], axis=1)
    return audio, voice.rate


def build_smoke_corpus(language: str, out_dir: str | os.PathLike, *, layout: str = "openslr",
                       n_sentences: int | None = None, damaged: bool = True, workers: int = 4) -> Path:
    """Write a smoke corpus for ``language`` (kn, bn or en) in ``layout`` ("openslr" or "ljspeech") and return its
    folder. Sentence i is read by speaker i mod 3. With ``damaged`` six broken items are added (silent,
    clipped, unreadable, missing audio, wrong script, duplicate id) so the quarantine report has content.
    Rebuilding an existing corpus with the same settings is skipped (a ``CORPUS_OK`` marker is written last)."""
    if language not in SENTENCES:
        raise ValueError(f"no embedded corpus for {language!r}; available: {', '.join(SENTENCES)}")
    if layout not in ("openslr", "ljspeech"):
        raise ValueError(f"layout must be 'openslr' or 'ljspeech', got {layout!r}")
    sentences = SENTENCES[language][: n_sentences or None]
    out = Path(out_dir)
    signature = f"{espeak_version()}|{layout}|{len(sentences)}|{damaged}|v1"
    marker = out / "CORPUS_OK"
    if marker.is_file() and marker.read_text() == signature:
        return out
    if out.exists():
        shutil.rmtree(out)
    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True)
    vs = voices(language)
    jobs = [(f"{vs[i % 3].speaker}_{i + 1:04d}", text, vs[i % 3]) for i, text in enumerate(sentences)]
    if damaged:
        jobs.append((f"{vs[0].speaker}_9001", _WRONG_SCRIPT[language], vs[0]))  # another script, this voice
        jobs.append((f"{vs[1].speaker}_9002", sentences[0], vs[1]))  # becomes silent below
        jobs.append((f"{vs[2].speaker}_9003", sentences[1 % len(sentences)], vs[2]))  # becomes clipped below

    def synth(job: tuple[str, str, Voice]) -> tuple[str, str]:
        utt_id, text, voice = job
        spoken = sentences[0] if text == _WRONG_SCRIPT[language] else text
        audio, sr = espeak(spoken, language, voice.variant, voice.pitch, voice.speed)
        seed = int(hashlib.sha1(utt_id.encode()).hexdigest()[:8], 16)
        audio, sr = _condition(audio, sr, voice, seed)
        if utt_id.endswith("_9002"):
            audio = audio * 0.0
        elif utt_id.endswith("_9003"):
            audio = np.clip(audio * 12.0, -1.0, 1.0)
        sf.write(str(wav_dir / f"{utt_id}{voice.ext}"), audio, sr, subtype=voice.subtype)
        return utt_id, text

    with ThreadPoolExecutor(max(1, workers)) as pool:
        rows = list(pool.map(synth, jobs))
    if damaged:
        bad = f"{vs[0].speaker}_9004"
        (wav_dir / f"{bad}.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")  # unreadable
        rows.append((bad, sentences[2 % len(sentences)]))
        rows.append((f"{vs[1].speaker}_9005", sentences[3 % len(sentences)]))  # no audio file
        rows.append(rows[0])  # the same id twice
    if layout == "openslr":
        (out / "line_index.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in rows), encoding="utf-8")
    else:
        (out / "metadata.csv").write_text("".join(f"{i}|{t}|{t}\n" for i, t in rows), encoding="utf-8")
    marker.write_text(signature)
    return out
