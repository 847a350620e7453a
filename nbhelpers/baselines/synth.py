"""The published baseline bundle and synthesis with it: FastSpeech2 text -> mel, HiFi-GAN mel -> waveform. Used
by ``python -m nbhelpers.baselines synth``, the stage's samples and 06's "FastSpeech2+HiFi-GAN" system."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import latest_checkpoint
from ..paths import Workspace

BUNDLES = "model"
FILES = {"fastspeech2": ("fastspeech2.pth", "fastspeech2.json"), "hifigan": ("hifigan.pth", "hifigan.json")}


def bundles_dir(workspace: Workspace, *, create: bool = True) -> Path:
    return workspace.stage_dir("baselines", BUNDLES, create=create)


def latest_bundle(workspace: Workspace | None = None) -> Path | None:
    """The newest complete bundle (``<workspace>/baselines/model/step-N``), or None before the stage ran."""
    return latest_checkpoint(bundles_dir(workspace or Workspace(), create=False))


@dataclass
class Baseline:
    """The two models of a bundle, in eval mode on CPU unless moved."""

    acoustic: Any  # TTS ForwardTTS (FastSpeech2)
    vocoder: Any  # TTS HifiganGenerator, weight norm removed
    vocoder_config: Any  # its coqui HifiganConfig: the mel front end it was trained on

    @property
    def sample_rate(self) -> int:
        return int(self.acoustic.config.audio.sample_rate)

    @property
    def language(self) -> str:
        """The language of its text front end (``bn`` or ``en``), from the acoustic model's config."""
        return "en" if str(self.acoustic.config.phoneme_language).startswith("en") else "bn"

    @property
    def shape(self) -> dict[str, int]:
        """FastSpeech2's width, layers (encoder and decoder each), attention heads and feed-forward size, as built."""
        args = self.acoustic.args
        layer = args.encoder_params
        return {"hidden": args.hidden_channels, "layers": layer["num_layers"], "heads": layer["num_heads"],
                "ffn": layer["hidden_channels_ffn"]}

    @property
    def speakers(self) -> list[str]:
        """The speakers a multi-speaker FastSpeech2 embeds (empty for one speaker)."""
        manager = self.acoustic.speaker_manager
        return list(manager.name_to_id) if manager is not None else []

    def speaker_input(self, speaker: str | None = None) -> dict[str, Any] | None:
        """FastSpeech2's ``aux_input`` for ``speaker`` (default: the first one) when it embeds speakers, else None."""
        import torch

        if not self.speakers:
            return None
        name = speaker or self.speakers[0]
        if name not in self.speakers:
            raise ValueError(f"unknown speaker {name!r}; this model speaks as {', '.join(self.speakers)}")
        device = next(self.acoustic.parameters()).device
        return {"speaker_ids": torch.tensor([self.acoustic.speaker_manager.name_to_id[name]], device=device)}

    def parameters(self) -> Iterator[Any]:
        """The parameters of both networks (what synthesis runs), as a torch module lists its own."""
        for module in (self.acoustic, self.vocoder):
            yield from module.parameters()

    def to(self, device: str, dtype: Any = None) -> Baseline:
        """Both networks on ``device`` (and in ``dtype``, e.g. torch.float16); returns self."""
        for module in (self.acoustic, self.vocoder):
            module.to(device=device, dtype=dtype)
        return self

    def text_ids(self, text: str) -> Any:
        """``text`` as the acoustic model's input ids, a [1, symbols] tensor on its device."""
        import torch

        device = next(self.acoustic.parameters()).device
        return torch.LongTensor(self.acoustic.tokenizer.text_to_ids(text))[None].to(device)

    def synthesize(self, text: str, speaker: str | None = None) -> np.ndarray:
        """Float32 mono audio for ``text``: the acoustic model's mel (with its own predicted durations) vocoded; a
        multi-speaker model speaks as ``speaker`` (default: its first)."""
        import torch

        with torch.inference_mode():
            mel = self.acoustic.inference(self.text_ids(text), self.speaker_input(speaker))["model_outputs"]
            wav = self.vocoder.inference(mel.transpose(1, 2))  # [1, 1, samples]
        return wav[0, 0].float().cpu().numpy()

    @functools.cached_property
    def mel_processor(self) -> Any:
        """coqui's AudioProcessor for the vocoder's mel front end (built once: it precomputes the mel basis)."""
        from TTS.utils.audio import AudioProcessor

        return AudioProcessor(self.vocoder_config.audio)

    def resynthesize(self, audio: np.ndarray) -> np.ndarray:
        """The vocoder alone on ``audio``'s own mel (the front end it was trained on), trimmed to ``audio``'s
        length: time-aligned with the recording, so PESQ/STOI against it measure what the vocoder loses."""
        import torch

        mel = torch.from_numpy(self.mel_processor.melspectrogram(np.asarray(audio, dtype=np.float32))).float()
        device = next(self.vocoder.parameters()).device
        with torch.inference_mode():
            wav = self.vocoder.inference(mel[None].to(device))[0, 0].float().cpu().numpy()
        return wav[:len(audio)] if len(wav) >= len(audio) else np.pad(wav, (0, len(audio) - len(wav)))


def load_acoustic(state: dict[str, Any], config: Any) -> Any:
    """A FastSpeech2 (coqui ``ForwardTTS``) in eval mode from its state dict and config."""
    from TTS.tts.models.forward_tts import ForwardTTS

    model = ForwardTTS(config)  # builds its speaker embedding from config.speakers (multi-speaker)
    model.load_state_dict(state)
    return model.eval()


def load_vocoder(state: dict[str, Any], config: Any) -> Any:
    """The HiFi-GAN generator in eval mode with weight norm folded, from its state dict and config."""
    from TTS.vocoder.models import setup_generator

    model = setup_generator(config)
    model.load_state_dict(state)
    model.remove_weight_norm()
    return model.eval()


def load_bundle(bundle: str | Path) -> Baseline:
    """Both models of a published bundle folder. A missing file raises FileNotFoundError naming it and the fix."""
    import torch

    from .config import load_config

    bundle = Path(bundle)
    loaded = {}
    for which, (weights, config) in FILES.items():
        for name in (weights, config):
            if not (bundle / name).is_file():
                raise FileNotFoundError(f"{bundle / name} is missing: not a complete baselines bundle. Fix: run "
                                        "`python -m nbhelpers.baselines train` (stage 08) again.")
        loaded[which] = (torch.load(bundle / weights, map_location="cpu", weights_only=True)["model"],
                         load_config(bundle / config))
    return Baseline(load_acoustic(*loaded["fastspeech2"]), load_vocoder(*loaded["hifigan"]), loaded["hifigan"][1])
