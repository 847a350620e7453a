"""Helper library for the TTS fine-tuning notebook suite.

The core modules (env, paths, profiles, checkpoint, budget, records) are light to import and shared by both
dependency stacks; each stage lives in its own subpackage (data, parler, distill, vits, kokoro, bench, pocket)
and can be run from the command line with ``python -m nbhelpers.<stage> --help``.
"""

__version__ = "0.1.0"
