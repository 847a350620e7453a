"""OpenSLR stand-in for the dress rehearsal: SLR79 (Kannada) and SLR37 (Bangla) archives under their real names,
in their real layouts, spoken by espeak-ng from the embedded smoke sentences, served on a loopback HTTP server that
the real downloader (:mod:`nbhelpers.data.download`) reaches through ``$TTS_OPENSLR_BASE_URL``.

Layouts (as the real archives, and as Hugging Face's openslr loader reads them):
- SLR79 ``kn_in_female.zip`` / ``kn_in_male.zip``: ``line_index.tsv`` and the wavs at the archive root.
- SLR37 ``bn_bd.zip`` / ``bn_in.zip``: one folder (``bn_bd/``) holding ``line_index.tsv`` and ``wavs/``.
File ids are speaker-coded as in the real corpora (``knf_02345_00012345678``: language, gender, speaker number,
recording number), audio is 48 kHz 16-bit mono WAV, and each line is ``<file id>\\t<transcript>``.

    python -m nbhelpers.rehearsal.openslr --root DIR            # build, print the environment (JSON)
    python -m nbhelpers.rehearsal.openslr --root DIR --serve    # build, then serve until Ctrl-C

Module level is standard library only: the rehearsal runner imports :func:`serve` outside the main stack.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

RATE = 48_000  # the real corpora's sample rate
# archive name -> (resource, language, folder inside the archive ("" = root), wav folder, speakers)
# speakers: (file-id prefix, espeak-ng variant, pitch, speed)
ARCHIVES = {
    "kn_in_female.zip": ("79", "kn", "", "", (("knf_02345", "f2", 70, 160), ("knf_06148", "f4", 60, 150))),
    "kn_in_male.zip": ("79", "kn", "", "", (("knm_01592", "m3", 40, 150), ("knm_08125", "m1", 30, 140))),
    "bn_bd.zip": ("37", "bn", "bn_bd", "wavs", (("bnf_00637", "f2", 70, 160), ("bnm_01964", "m3", 40, 150))),
    "bn_in.zip": ("37", "bn", "bn_in", "wavs", (("bnf_03212", "f4", 60, 150), ("bnm_05503", "m1", 30, 140))),
}
VERSION = "v1"  # part of the build marker: bump when the archives' content changes


def file_id(speaker: str, archive: str, index: int) -> str:
    """A speaker-coded file id with an 11-digit recording number, stable for (archive, sentence)."""
    number = int(hashlib.sha1(f"{archive}|{index}".encode()).hexdigest()[:12], 16) % 10**11
    return f"{speaker}_{number:011d}"


def _archive_bytes(name: str) -> bytes:
    """One archive: every embedded sentence of its language, read in turn by the archive's speakers."""
    import numpy as np
    import soundfile as sf

    from ..data.audio import resample
    from ..data.corpus import SENTENCES, espeak

    _, language, folder, wav_dir, speakers = ARCHIVES[name]
    prefix = f"{folder}/" if folder else ""
    wav_prefix = f"{prefix}{wav_dir}/" if wav_dir else prefix
    lines = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # wavs do not compress; stored keeps it fast
        for i, text in enumerate(SENTENCES[language]):
            speaker, variant, pitch, speed = speakers[i % len(speakers)]
            utt = file_id(speaker, name, i)
            audio, sr = espeak(text, language, variant, pitch, speed)
            audio = np.concatenate([np.zeros(int(0.3 * sr), np.float32), audio * 0.7,
                                    np.zeros(int(0.4 * sr), np.float32)])
            wav = io.BytesIO()
            sf.write(wav, resample(audio, sr, RATE), RATE, subtype="PCM_16", format="WAV")
            z.writestr(f"{wav_prefix}{utt}.wav", wav.getvalue())
            lines.append(f"{utt}\t{text}\n")
        z.writestr(f"{prefix}line_index.tsv", "".join(lines).encode("utf-8"))
        z.writestr(f"{prefix}LICENSE", "Stand-in for the dress rehearsal: espeak-ng speech of sentences written for "
                                       "this project (not OpenSLR data).\n")
    return buf.getvalue()


def build(root: Path) -> dict[str, str]:
    """Write ``<root>/openslr/<resource>/<archive>`` for every archive (skipped when already built). The base URL
    comes from :func:`serve`, so no environment is returned here."""
    from ..data.corpus import espeak_version

    base = Path(root) / "openslr"
    signature = f"{espeak_version()}|{VERSION}"
    for name, (resource, *_rest) in ARCHIVES.items():
        path = base / resource / name
        marker = path.with_name(f".{name}.built")
        if path.is_file() and marker.is_file() and marker.read_text() == signature:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.part")
        tmp.write_bytes(_archive_bytes(name))
        os.replace(tmp, path)
        marker.write_text(signature)
    return {}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@contextlib.contextmanager
def serve(root: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``<root>/openslr`` over HTTP on loopback in a thread; yields the base URL for
    ``$TTS_OPENSLR_BASE_URL`` (``<base>/<resource>/<archive>``), stops on exit."""
    folder = Path(root) / "openslr"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: build the stand-in first (python -m "
                                f"nbhelpers.rehearsal.openslr --root {root})")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="openslr-standin", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.rehearsal.openslr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="stand-in folder (archives go to <root>/openslr)")
    parser.add_argument("--serve", action="store_true", help="then serve them on loopback until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="port for --serve (default: any free one)")
    args = parser.parse_args(argv)
    env = build(args.root.resolve())
    if not args.serve:
        print(json.dumps(env))
        return 0
    with serve(args.root.resolve(), port=args.port) as url:
        print(json.dumps({**env, "TTS_OPENSLR_BASE_URL": url}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
