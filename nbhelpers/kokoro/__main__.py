"""Command line for stage 05: ``python -m nbhelpers.kokoro {speak,voices,phonemes,verify}``."""

from __future__ import annotations

import argparse
import json
import sys

PROFILE_KEYS = {"voice": "voice", "lang": "lang", "speed": "speed", "pause": "pause_s", "backend": "backend",
                "target_lufs": "target_lufs", "run_name": "run_name"}


def _speak(args: argparse.Namespace) -> int:
    from .synth import run_stage

    overrides = {key: getattr(args, arg) for arg, key in PROFILE_KEYS.items() if getattr(args, arg) is not None}
    manifest = run_stage(args.profile, args.workspace, script=args.script, text=args.text, overrides=overrides)
    print(json.dumps({"dir": manifest["dir"], "combined_wav": manifest["combined_wav"], "backend": manifest["backend"],
                      "voice": manifest["voice"], "duration_s": manifest["duration_s"], "rtf": manifest["rtf"],
                      "sections": [s["wav"] for s in manifest["sections"]]}, indent=1))
    return 0


def _voices(args: argparse.Namespace) -> int:
    from .backends import choose_backend

    backend, reason = choose_backend(args.backend)
    print(f"# {backend.name}: {backend.description} ({reason})")
    for name in backend.voices():
        print(name)
    return 0


def _phonemes(args: argparse.Namespace) -> int:
    from .text import chunk_text

    for i, chunk in enumerate(chunk_text(args.text, args.lang)):
        print(f"[{i + 1}] {len(chunk.phonemes)} phonemes | {chunk.text}\n    {chunk.phonemes}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .assets import assemble_onnx_model, offline_voices

    path = assemble_onnx_model()
    print(f"ONNX model OK (sha256 verified): {path}\nvoices OK: {', '.join(sorted(offline_voices()))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the stage's command line."""
    p = argparse.ArgumentParser(prog="python -m nbhelpers.kokoro",
                                description="Kokoro-82M synthesis: scripts to per-section and combined WAVs.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speak", help="speak a script (sections start with '# Title') or a text into the workspace")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--script", help="script file, or 'example' (default: the profile's script)")
    src.add_argument("--text", help="text to speak instead of a script file")
    s.add_argument("--profile", default="auto", help="smoke | kaggle-t4 | colab-t4 | auto")
    s.add_argument("--workspace", default=None, help="workspace folder (default: $TTS_WORKSPACE or ./workspace)")
    s.add_argument("--voice", help="voice name or blend, e.g. 'jf_alpha:0.7,jf_nezumi:0.3'")
    s.add_argument("--lang", help="en-us | en-gb | hi | es | fr-fr | it | pt-br")
    s.add_argument("--speed", type=float, help="speaking rate, 0.5-2.0")
    s.add_argument("--pause", type=float, help="seconds of silence between sections")
    s.add_argument("--backend", choices=["auto", "torch", "onnx"])
    s.add_argument("--target-lufs", type=float, help="loudness every section is matched to")
    s.add_argument("--run-name", help="output folder name under <workspace>/kokoro/")
    s.set_defaults(func=_speak)
    v = sub.add_parser("voices", help="list the voices of a backend")
    v.add_argument("--backend", default="onnx", choices=["auto", "torch", "onnx"])
    v.set_defaults(func=_voices)
    ph = sub.add_parser("phonemes", help="show how a text is phonemized and chunked (no audio)")
    ph.add_argument("--text", required=True)
    ph.add_argument("--lang", default="en-us")
    ph.set_defaults(func=_phonemes)
    ve = sub.add_parser("verify", help="assemble the offline ONNX model and check its sha256")
    ve.set_defaults(func=_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run one subcommand."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
