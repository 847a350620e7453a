"""Notebook views of a synthesis run: waveform and spectrogram with section and word marks, and the
interactive Speak panel (ipywidgets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .assets import SAMPLE_RATE
from .synth import Speaker, resolve_voice
from .text import LANGUAGES


def plot_track(manifest: dict[str, Any], out_dir: str | Path, max_words: int = 12):
    """Waveform and spectrogram (0-8 kHz) of the combined track, sections shaded and the first words marked."""
    import matplotlib.pyplot as plt
    import soundfile as sf

    audio, sr = sf.read(Path(out_dir) / manifest["combined_wav"], dtype="float32")
    fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=(14, 6), sharex=True)
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
    ax_w.set_ylabel("amplitude")
    ax_w.set_xlim(0, len(audio) / sr)
    ax_w.set_title(f"{manifest['backend']} backend, voice {manifest['voice']}, {manifest['duration_s']:.1f} s")
    dither = 1e-5 * np.random.default_rng(0).standard_normal(len(audio))  # a -100 dB floor instead of log(0)
    ax_s.specgram(audio + dither, NFFT=1024, Fs=sr, noverlap=768, cmap="magma", vmin=-120)
    ax_s.set_ylim(0, 8000)
    ax_s.set_xlim(0, len(audio) / sr)
    ax_s.set_ylabel("Hz")
    ax_s.set_xlabel("seconds")
    fig.tight_layout()
    return fig


def speak_panel(speaker: Speaker, *, voice: str, lang: str = "en-us", speed: float = 1.0,
                fallback_voice: str | None = None):
    """An ipywidgets panel (text, voice or blend, language, speed, Speak) that plays the result inline."""
    import ipywidgets as w
    from IPython.display import Audio, display

    text = w.Textarea(value="Type something here and press Speak.", layout=w.Layout(width="100%", height="80px"))
    voice_box = w.Combobox(value=voice, options=speaker.backend.voices(), description="voice",
                           placeholder="name or blend a:0.7,b:0.3")
    lang_box = w.Dropdown(options=list(LANGUAGES), value=lang, description="language")
    speed_box = w.FloatSlider(value=speed, min=0.5, max=2.0, step=0.05, description="speed")
    button = w.Button(description="Speak", button_style="primary")
    out = w.Output()

    def on_click(_):
        with out:
            out.clear_output()
            try:
                v = resolve_voice(speaker.backend, voice_box.value, fallback_voice)
                audio, info = speaker.speak(text.value, v, lang=lang_box.value, speed=speed_box.value)
            except ValueError as err:  # bad voice, speed or text: show the message, keep the panel alive
                print(f"error: {err}")
                return
            print(f"{speaker.backend.name} | {v.label} | {len(info['chunks'])} chunk(s) | "
                  f"{len(audio) / SAMPLE_RATE:.1f} s" + (f" | {v.note}" if v.note else ""))
            display(Audio(audio, rate=SAMPLE_RATE))

    button.on_click(on_click)
    return w.VBox([text, w.HBox([voice_box, lang_box]), w.HBox([speed_box, button]), out])
