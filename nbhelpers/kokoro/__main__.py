"""Command line for stage 05: ``python -m nbhelpers.kokoro {plan,speak,say,voices,phonemes,verify}``.

``plan``, ``speak`` and ``say`` take ``--profile``, ``--workspace`` and ``--set KEY=VALUE`` (any key of
``nbhelpers/profiles/kokoro.toml``), as every stage command notebooks run through ``nb.run`` does; the older flags
(``--voice``, ``--pause`` ...) apply on top of ``--set``."""

from __future__ import annotations

import argparse
import sys

from ..cli import add_stage_arguments, parse_overrides

PROFILE_KEYS = {"voice": "voice", "lang": "lang", "speed": "speed", "pause": "pause_s", "backend": "backend",
                "target_lufs": "target_lufs", "run_name": "run_name"}


def _overrides(args: argparse.Namespace) -> dict:
    flags = {key: getattr(args, arg) for arg, key in PROFILE_KEYS.items() if getattr(args, arg, None) is not None}
    return {**parse_overrides(args.set), **flags}


def _plan(args: argparse.Namespace) -> int:
    from .synth import plan

    result = plan(args.profile, args.workspace, script=args.script, text=args.text, overrides=_overrides(args))
    st = result["settings"]
    print(f"profile {st['profile']}: backend={st['backend']} voice={st['voice']} lang={st['lang']} speed={st['speed']} "
          f"pause={st['pause_s']} s target={st['target_lufs']} LUFS; script {result['source']}, "
          f"{len(result['sections'])} section(s) -> {result['path']}")
    return 0


def _say(args: argparse.Namespace) -> int:
    from .synth import say

    try:
        result = say(args.profile, args.workspace, text=args.text, out=args.out, overrides=_overrides(args))
    except ValueError as err:  # a bad voice, speed, language or text: one readable line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{result['summary']} -> {result['wav']}")
    return 0


def _speak(args: argparse.Namespace) -> int:
    from .synth import run_stage

    manifest = run_stage(args.profile, args.workspace, script=args.script, text=args.text, overrides=_overrides(args))
    for sec in manifest["sections"]:
        print(f"  {sec['wav']:40s} {sec['duration_s']:6.2f} s  {len(sec['chunks'])} chunk(s)  "
              f"loudness {sec['loudness_in_lufs']:6.1f} LUFS, gain {sec['gain_db']:+.1f} dB")
    print(f"{manifest['duration_s']:.1f} s of audio in {manifest['synthesis_s']:.1f} s (real-time factor "
          f"{manifest['rtf']}) with {manifest['backend']} / {manifest['voice']} -> {manifest['dir']}")
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
    def script_args(parser: argparse.ArgumentParser) -> None:
        src = parser.add_mutually_exclusive_group()
        src.add_argument("--script", help="script file, or 'example' (default: the profile's script)")
        src.add_argument("--text", help="text to speak instead of a script file")

    def voice_args(parser: argparse.ArgumentParser) -> None:
        add_stage_arguments(parser)
        parser.add_argument("--voice", help="voice name or blend, e.g. 'jf_alpha:0.7,jf_nezumi:0.3'")
        parser.add_argument("--lang", help="en-us | en-gb | hi | es | fr-fr | it | pt-br")
        parser.add_argument("--speed", type=float, help="speaking rate, 0.5-2.0")
        parser.add_argument("--backend", choices=["auto", "torch", "onnx"])
        parser.add_argument("--target-lufs", type=float, help="loudness the audio is matched to")

    s = sub.add_parser("speak", help="speak a script (sections start with '# Title') or a text into the workspace")
    script_args(s)
    voice_args(s)
    s.add_argument("--pause", type=float, help="seconds of silence between sections")
    s.add_argument("--run-name", help="output folder name under <workspace>/kokoro/")
    s.set_defaults(func=_speak)
    pl = sub.add_parser("plan", help="write <workspace>/kokoro/plan.json: settings and sections (no model)")
    script_args(pl)
    voice_args(pl)
    pl.add_argument("--pause", type=float, help="seconds of silence between sections")
    pl.add_argument("--run-name", help="output folder name under <workspace>/kokoro/")
    pl.set_defaults(func=_plan)
    sa = sub.add_parser("say", help="speak one text into one WAV (+ a JSON of its chunks); no stage record")
    sa.add_argument("--text", required=True)
    sa.add_argument("--out", required=True, help="the .wav to write (relative paths are inside the workspace)")
    voice_args(sa)
    sa.set_defaults(func=_say)
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
