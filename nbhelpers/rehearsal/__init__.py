"""The dress rehearsal (`make rehearse PROFILE=kaggle-t4`): every notebook under a real profile, offline, against
local stand-ins for the hub, OpenSLR, coqui's model manager and Kaggle, with sizes shrunk by ``sizes.toml`` only.

Stand-in builders live beside this module, one per kind of external thing; each is run in the stack whose
libraries write that format (``python -m nbhelpers.rehearsal.<builder> --root DIR`` prints the environment
variables that point the real client code at the stand-in). See docs/rehearsal.md.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def builder_main(module: str, doc: str | None, build: Callable[[Path], dict[str, str]],
                 argv: list[str] | None = None) -> int:
    """The command line every stand-in builder shares: ``--root DIR``, build, print the environment as JSON."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="stand-in root folder")
    root = parser.parse_args(argv).root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    print(json.dumps(build(root)))
    return 0
