"""Streaming synthesis for Pocket TTS models (released or stage 07's fine-tune): audio chunks as pocket-tts's
``generate_audio_stream`` yields them, with the time to first audio measured.

What pocket-tts 4.0.1 streams: it splits a text into segments of up to 50 tokens (about a sentence); per segment one
thread generates latent frames and another decodes them into short audio chunks (about 0.24 s each here), which are
yielded as they are decoded. So the first audio comes after the text prompt and the first frames, long before the
segment is finished (benchmarks/synthesis.py --family pocket, docs/benchmarks.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class StreamTiming:
    """When the chunks of one utterance arrived: seconds from the call to the first chunk and to the end, and
    the audio seconds each chunk carried."""

    first_audio_s: float | None = None
    total_s: float | None = None
    chunk_seconds: list[float] = field(default_factory=list)

    @property
    def audio_s(self) -> float:
        return float(sum(self.chunk_seconds))


class PocketStream:
    """Speaks texts chunk by chunk in one voice: the voice prompt's model state is computed once."""

    def __init__(self, model: Any, voice_prompt: str | Path):
        self.model = model
        self.sample_rate = int(model.sample_rate)
        with torch.no_grad():
            self.state = model.get_state_for_audio_prompt(Path(voice_prompt))
        self.timing = StreamTiming()

    def stream(self, text: str, *, seed: int = 0) -> Iterator[np.ndarray]:
        """Float32 mono chunks in [-1, 1] of ``text``; concatenated they are the utterance ``generate_audio``
        returns with the same seed. The caller's RNG streams are left untouched; a consumer that stops early stops
        the generation. ``self.timing`` is filled in as chunks arrive."""
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        self.timing = timing = StreamTiming()
        stop = threading.Event()
        started = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            chunks = self.model.generate_audio_stream(self.state, text, stop=stop)
            try:
                for chunk in chunks:
                    audio = np.clip(chunk.float().cpu().numpy().reshape(-1), -1.0, 1.0)
                    if timing.first_audio_s is None:
                        timing.first_audio_s = time.perf_counter() - started
                    timing.chunk_seconds.append(len(audio) / self.sample_rate)
                    yield audio
                timing.total_s = time.perf_counter() - started
            finally:
                stop.set()
                chunks.close()
