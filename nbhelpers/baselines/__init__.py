"""Stage 08: FastSpeech2 + HiFi-GAN baselines (coqui-tts 0.28, main stack) beside stage 04's VITS.

Modules: ``config`` (coqui configs of both models from a profile, one shared mel front end), ``train`` (pre-flight,
budgeted resumable training of each model, publishing one bundle and samples, the stage record), ``synth`` (load a
bundle; FastSpeech2 mel -> HiFi-GAN waveform). Heavy imports (torch, TTS) happen inside these modules, not here.
"""

STAGE = "08_baselines"
