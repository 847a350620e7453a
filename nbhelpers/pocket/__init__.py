"""Stage 07: fine-tune Kyutai's Pocket TTS (pocket-tts 4.0.1) to a new language with the CALM objective
(Rouard et al., "Continuous Audio Language Models", arXiv 2509.06926): a new SentencePiece vocabulary,
cached normalised Mimi latents, the LSD (Lagrangian self-distillation) head loss, EOS BCE and CFG dropout."""

STAGE = "07_pocket_tts_finetune"
