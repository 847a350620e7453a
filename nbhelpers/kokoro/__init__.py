"""Stage 05: Kokoro-82M speech synthesis from multi-section scripts, online (PyTorch, hub voices) or fully
offline (int8 ONNX from PyPI). Entry points: :func:`run_stage`, :class:`Speaker`, ``python -m nbhelpers.kokoro``."""

from .synth import STAGE, Speaker, Voice, backend_message, plan, resolve_voice, run_stage, say, synthesize_script
from .text import LANGUAGES, TextTooLongError, chunk_text, load_script, parse_script

__all__ = ["LANGUAGES", "STAGE", "Speaker", "TextTooLongError", "Voice", "backend_message", "chunk_text",
           "load_script", "parse_script", "plan", "resolve_voice", "run_stage", "say", "synthesize_script"]
