"""The dress rehearsal (`make rehearse PROFILE=kaggle-t4`): every notebook under a real profile, offline, against
local stand-ins for the hub, OpenSLR, coqui's model manager and Kaggle, with sizes shrunk by ``sizes.toml`` only.

Stand-in builders live beside this module, one per kind of external thing; each is run in the stack whose
libraries write that format (``python -m nbhelpers.rehearsal.<builder> --root DIR`` prints the environment
variables that point the real client code at the stand-in). See docs/rehearsal.md.
"""
