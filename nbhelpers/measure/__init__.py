"""Measurement library shared by every stage and by 06: the timing/memory/energy harness (``harness``), offline
quality metrics and ASR (``quality``, ``asr``), audio-file checks (``audiocheck``), the blind listening-test kit
(``listening``), torch.profiler traces (``profiling``) and ONNX Runtime sessions and derived models (``ort``)."""
