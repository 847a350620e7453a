"""Audio faults of a WAV file, each named for what it is, with its fix: missing, unreadable, truncated (the
header promises more frames than the file holds), empty, NaN/inf samples, float samples beyond [-1, 1] (not
clipping: nothing was cut off, the scale is wrong), clipped (in-range audio flattened at full scale) and
silent. ``python -m nbhelpers.bench validate`` uses it for the clips a benchmark run writes or reads."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLIP_FRACTION = 0.002  # share of samples in full-scale plateaus above which audio counts as clipped (as in data prep)
SILENCE_DBFS = -55.0  # peak below this: no audible sound (as in data prep)
_UNKNOWN_LENGTH = (0, 0xFFFFFFFF)  # data sizes streaming writers put in the header before they know the length


@dataclass(frozen=True)
class AudioFault:
    """One fault of one file: a short label, what was measured, and what to do."""

    label: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"{self.label}: {self.detail}; {self.fix}"


def _data_chunk(path: Path) -> tuple[int, int, int] | None:
    """(bytes the header declares for the data chunk, bytes the file holds after it, block align) of a RIFF WAV;
    None when the file is not RIFF/WAVE. A file that ends before its data chunk gives (-1, size, 0)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos, align = 12, 0
        while pos + 8 <= size:
            f.seek(pos)
            cid, (n,) = f.read(4), struct.unpack("<I", f.read(4))
            if cid == b"fmt ":
                fmt = f.read(min(n, 16))
                align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else 0
            elif cid == b"data":
                return n, size - pos - 8, align
            pos += 8 + n + (n & 1)
    return -1, size, 0


def audio_faults(path: str | os.PathLike) -> list[AudioFault]:
    """Every fault of the WAV (or other libsndfile-readable) file at ``path``; empty when it is sound."""
    import soundfile as sf

    from ..data.audio import clipped_fraction

    path = Path(path)
    if not path.is_file():
        return [AudioFault("missing", f"{path} does not exist", "check the path, or re-run the stage that writes it")]
    faults = []
    chunk = _data_chunk(path) if path.suffix.lower() == ".wav" else None
    if chunk is not None:
        declared, held, align = chunk
        if declared < 0:
            return [AudioFault("truncated", f"the file ends inside its header ({held} bytes, no data chunk)",
                               "the write was cut off: re-run the stage (or re-export the file) that wrote it")]
        if declared not in _UNKNOWN_LENGTH and held < declared:
            frames = (f"header says {declared // align} frames, file holds {held // align}" if align
                      else f"header says {declared} data bytes, file holds {held}")
            faults.append(AudioFault("truncated", frames, "the write was cut off (disk full, killed process, partial "
                                     "copy): re-run the stage (or re-copy the file) that wrote it"))
    try:
        info = sf.info(str(path))
        data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        return faults + [AudioFault("unreadable", str(err)[:200], "re-export it as WAV (e.g. `ffmpeg -i in out.wav`)")]
    if data.size == 0:
        return faults + [AudioFault("empty", "no samples", "re-run the synthesis that wrote it")]
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        faults.append(AudioFault("invalid samples", f"{bad} of {data.size} samples are NaN or infinite",
                                 "the model produced NaN/inf: check the checkpoint and the precision (fp16 overflow)"))
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(data)))
    if peak > 1.0 and info.subtype in ("FLOAT", "DOUBLE"):
        faults.append(AudioFault("float samples beyond [-1, 1]", f"peak {peak:.3g} ({info.subtype} WAV)",
                                 "normalise (divide by the peak) before writing; players and 16-bit conversion "
                                 "would clip it"))
    elif (clip := clipped_fraction(data)) > CLIP_FRACTION:
        faults.append(AudioFault("clipped", f"{clip:.2%} of samples in full-scale plateaus (limit {CLIP_FRACTION:.1%})",
                                 "lower the output gain before converting to fixed point; clipping cannot be undone"))
    peak_db = 20 * np.log10(peak + 1e-12)
    if peak_db < SILENCE_DBFS and not faults:  # a cut-off file's silent head is not the fault: the cut is
        faults.append(AudioFault("silent", f"peak {peak_db:.1f} dBFS < {SILENCE_DBFS} dBFS over {data.shape[0] / sr:.2f} s",
                                 "the system produced no audible sound: check the model, voice and text"))
    return faults
