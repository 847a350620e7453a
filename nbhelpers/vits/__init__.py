"""Stage 04: fine-tune Coqui VITS (coqui-tts 0.28) for Bangladeshi Bangla inside a notebook.

Modules: ``config`` (Bangla character set, starting points, VitsConfig from a profile), ``preflight`` (checks
with readable fixes before any training), ``restore`` (weights-only restore with a restored/reinitialised
report and old weight-norm key conversion), ``train`` (Trainer run that stops on a time budget without
killing the kernel and resumes with ``continue_path``), ``lora`` (low-rank adapters, folded into the weights
for export), ``export`` (samples, loss plot, ONNX export and onnxruntime inference). Heavy imports (torch, TTS) happen inside these modules, not here.
"""

STAGE = "04_vits_bangla_finetune"
