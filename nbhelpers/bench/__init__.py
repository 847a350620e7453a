"""06 benchmark: the registry of systems (adapters for what the suite produced plus espeak-ng and Piper baselines),
the run over them and the report. How things are measured lives in :mod:`nbhelpers.measure`."""

STAGE = "06_benchmark"
