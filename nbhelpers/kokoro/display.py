"""What notebook 05 shows, written by the stage next to the WAVs: the waveform/spectrogram plot (``track.png``)
and ``view.json`` (backend, section table, audio players, phonemes and word timings of the first section). The
notebook kernel only reads and displays them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

PHONEME_ROWS = 20  # chunks of the first section in the phoneme table
WORD_ROWS = 10     # first words with their timings


def plot_track(manifest: dict[str, Any], out_dir: str | Path, max_words: int = 12):
    """Waveform and spectrogram (0-8 kHz) of the combined track, sections shaded and the first words marked.
    A matplotlib Figure without pyplot (no backend, no global state)."""
    import soundfile as sf
    from matplotlib.figure import Figure

    audio, sr = sf.read(Path(out_dir) / manifest["combined_wav"], dtype="float32")
    fig = Figure(figsize=(14, 6))
    ax_w, ax_s = fig.subplots(2, 1, sharex=True)
    t = np.arange(len(audio)) / sr
    ax_w.plot(t, audio, lw=0.4, color="tab:blue")
    for i, sec in enumerate(manifest["sections"]):
        for ax in (ax_w, ax_s):
            ax.axvspan(sec["start"], sec["end"], color=f"C{i % 10}", alpha=0.08)
        ax_w.text(sec["start"], 0.95, sec["title"], transform=ax_w.get_xaxis_transform(), fontsize=8, va="top")
    words = [w for sec in manifest["sections"] for w in (sec["words"] or [])][:max_words]
    for w in words:
        ax_w.axvline(w["start_combined"], color="grey", lw=0.5, ls=":")
        ax_w.text(w["start_combined"], 0.02, w["word"], transform=ax_w.get_xaxis_transform(), fontsize=7,
                  rotation=90, va="bottom")
    ax_w.set_ylabel("amplitude (full scale = 1)")
    ax_w.set_xlim(0, max(len(audio), 1) / sr)
    ax_w.set_title(f"{manifest['backend']} backend, voice {manifest['voice']}, {manifest['duration_s']:.1f} s")
    dither = 1e-5 * np.random.default_rng(0).standard_normal(len(audio))  # a -100 dB floor instead of log(0)
    ax_s.specgram(audio + dither, NFFT=1024, Fs=sr, noverlap=768, cmap="magma", vmin=-120)
    ax_s.set_ylim(0, 8000)
    ax_s.set_xlim(0, max(len(audio), 1) / sr)
    ax_s.set_ylabel("frequency (Hz)")
    ax_s.set_xlabel("time in the combined track (s)")
    fig.tight_layout()
    return fig


def save_track_plot(manifest: dict[str, Any], out_dir: str | Path, path: str | Path) -> Path:
    """:func:`plot_track` saved as a PNG (written to a temporary name, then renamed)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    plot_track(manifest, out_dir).savefig(tmp, dpi=90)
    os.replace(tmp, path)
    return path


def notebook_view(manifest: dict[str, Any], out_dir: str | Path, *, voices: list[str] | None = None
                  ) -> dict[str, Any]:
    """The tables and players notebook 05 shows for one synthesis run (paths absolute)."""
    out = Path(out_dir)
    backend = {"backend": manifest["backend"], "model": manifest["model"], "why": manifest["reason"],
               "voice": manifest["voice"], "voice note": manifest["voice_note"] or None,
               "language": manifest["language"], "speed": manifest["speed"], "target LUFS": manifest["target_lufs"],
               "audio s": manifest["duration_s"], "synthesis s": manifest["synthesis_s"],
               "real-time factor": manifest["rtf"]}
    if voices is not None:
        backend["voices"] = ", ".join(voices)
    sections = [{"index": s["index"], "title": s["title"], "wav": s["wav"], "start s": s["start"],
                 "duration s": s["duration_s"], "chunks": len(s["chunks"]), "loudness in (LUFS)": s["loudness_in_lufs"],
                 "gain dB": s["gain_db"], "unspoken words": ", ".join(s["unspoken_words"]) or None}
                for s in manifest["sections"]]
    players = [{"path": str(out / s["wav"]), "caption": f"**{s['index']}. {s['title']}**: {s['text']}"}
               for s in manifest["sections"]]
    players.append({"path": str(out / manifest["combined_wav"]),
                    "caption": f"**Combined track** ({manifest['duration_s']:.1f} s, pauses "
                               f"{', '.join(f'{p:g}' for p in manifest['pauses_s']) or 'none'} s)"})
    first = manifest["sections"][0] if manifest["sections"] else {"chunks": [], "words": None, "title": ""}
    phonemes = [{"chunk": i + 1, "phonemes": c["n_phonemes"], "text": c["text"], "read as": c["phonemes"]}
                for i, c in enumerate(first["chunks"][:PHONEME_ROWS])]
    words = [{"word": w["word"], "start s": w["start_combined"], "end s": w["end_combined"]}
             for w in (first["words"] or [])[:WORD_ROWS]]
    return {"backend": backend, "sections": sections, "players": players, "first_section": first["title"],
            "phonemes": phonemes, "words": words,
            "words_note": None if first["words"] is not None else "word timings exist for English only"}


def write_view(manifest: dict[str, Any], out_dir: str | Path, *, voices: list[str] | None = None) -> dict[str, Path]:
    """Write ``track.png`` and ``view.json`` into the run folder; return their paths for the stage record."""
    out = Path(out_dir)
    view = out / "view.json"
    tmp = out / ".view.json.tmp"
    tmp.write_text(json.dumps(notebook_view(manifest, out, voices=voices), ensure_ascii=False, indent=1),
                   encoding="utf-8")
    os.replace(tmp, view)
    return {"view": view, "track_png": save_track_plot(manifest, out, out / "track.png")}
