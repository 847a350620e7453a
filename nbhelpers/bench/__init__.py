"""06 benchmark: one measurement harness (speed, memory, size, energy) and offline quality metrics shared by
every stage, system adapters for what the suite produced plus espeak-ng and Piper baselines, a report, and a
blind listening-test kit."""

STAGE = "06_benchmark"
