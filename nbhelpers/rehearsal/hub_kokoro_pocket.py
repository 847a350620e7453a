"""Hub stand-ins of the main stack's speech models for the dress rehearsal, in a Hugging Face hub cache that the
real loaders read with ``HF_HUB_OFFLINE=1``:

- ``hexgrad/Kokoro-82M`` (stage 05): ``config.json`` (the real Kokoro-82M v1.0 config, shipped in the
  kokoro-onnx wheel), ``kokoro-v1_0.pth`` (random weights of those shapes, saved per sub-module as ``KModel``
  loads them) and ``voices/af_heart.pt`` (a random style pack, [510, 1, 256]). The duration head is biased so a
  phoneme lasts one frame (25 ms): random weights would make every phoneme ~0.6 s long, and the decoder's cost
  grows with the audio length.
- Pocket TTS's released ``english`` model (stage 07): the packaged ``english.yaml`` names
  ``hf://kyutai/pocket-tts/languages/english/model.safetensors@<commit>`` (and the same file in
  ``kyutai/pocket-tts-without-voice-cloning``) plus a ``tokenizer.json`` there; pocket-tts fetches them with
  ``hf_hub_download(repo, file, revision=<commit>)``, which offline reads ``snapshots/<commit>/<file>``. The
  stand-in writes the tokenizer and the (voice-cloning) weights at those pinned commits: random weights of the config's shapes (a TTSModel built
  from ``english.yaml`` with no weight files) and a 4000-entry word-level ``tokenizer.json``.

    python -m nbhelpers.rehearsal.hub_kokoro_pocket --root DIR   # prints {"HF_HUB_CACHE": ..., "HF_HUB_OFFLINE": "1"}
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

from . import builder_main
from .hubcache import hub_env, is_built, publish, publish_folder, write_stamp

BUILDER = "hub_kokoro_pocket"
VERSION = "v3"
KOKORO_REPO = "hexgrad/Kokoro-82M"
KOKORO_WEIGHTS = "kokoro-v1_0.pth"  # kokoro.KModel.MODEL_NAMES[KOKORO_REPO]
KOKORO_VOICES = ("af_heart",)
POCKET_MODEL = "english"
SECONDS_PER_PHONEME = 0.025  # one duration frame: keeps the decoder (cost ~ audio length) short on CPU


def kokoro_files(folder: Path) -> list[str]:
    """Write the Kokoro-82M repo files into ``folder``; returns their names in the repo."""
    import torch
    from kokoro import KModel

    from ..kokoro.assets import model_config

    config = model_config()
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    empty = folder / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(0)
    model = KModel(repo_id=KOKORO_REPO, config=config, model=str(empty))  # random init, nothing loaded
    empty.unlink()
    frames = SECONDS_PER_PHONEME * 24_000 / 600  # 600 samples per duration frame
    with torch.no_grad():
        proj = model.predictor.duration_proj.linear_layer
        proj.weight.mul_(0.01)
        proj.bias.fill_(math.log(frames / config["max_dur"] / (1 - frames / config["max_dur"])))
    torch.save({name: getattr(model, name).state_dict()
                for name in ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")}, folder / KOKORO_WEIGHTS)
    (folder / "voices").mkdir(exist_ok=True)
    g = torch.Generator().manual_seed(1)
    for voice in KOKORO_VOICES:
        torch.save(torch.randn((510, 1, config["style_dim"] * 2), generator=g) * 0.1, folder / "voices" / f"{voice}.pt")
    return ["config.json", KOKORO_WEIGHTS, *(f"voices/{v}.pt" for v in KOKORO_VOICES)]


def parse_hf_path(path: str) -> tuple[str, str, str]:
    """``hf://<org>/<name>/<file>@<revision>`` -> (repo id, file, revision), as pocket-tts splits it."""
    parts = path.removeprefix("hf://").split("/")
    name, _, revision = "/".join(parts[2:]).partition("@")
    return "/".join(parts[:2]), name, revision


def english_tokenizer(path: Path, n_bins: int) -> None:
    """A word-level ``tokenizer.json`` with exactly ``n_bins`` entries (pocket-tts checks the count)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<unk>", *"abcdefghijklmnopqrstuvwxyz0123456789.,!?'-", "the", "a", "and", "of", "to", "is", "in", "it"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    for i in range(len(vocab), n_bins):
        vocab[f"<extra_{i}>"] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))


def pocket_files(cache: Path, work: Path) -> dict[str, str]:
    """Publish the released ``english`` model's weights and tokenizer at the commits its config pins."""
    import safetensors.torch
    import torch
    import yaml
    from pocket_tts.utils.config import CONFIGS_DIR, Config

    from ..pocket.model import TTSModel, keep_torch_threads

    cfg = yaml.safe_load((CONFIGS_DIR / f"{POCKET_MODEL}.yaml").read_text(encoding="utf-8"))
    lut = cfg["flow_lm"]["lookup_table"]
    tok_repo, tok_file, tok_rev = parse_hf_path(lut["tokenizer_path"])
    tokenizer = work / "tokenizer.json"
    english_tokenizer(tokenizer, lut["n_bins"])
    local = {**cfg, "weights_path": None, "weights_path_without_voice_cloning": None}
    local["flow_lm"] = {**cfg["flow_lm"], "weights_path": None,
                        "lookup_table": {**lut, "tokenizer_path": str(tokenizer)}}
    local["mimi"] = {**cfg["mimi"], "weights_path": None}
    torch.manual_seed(0)
    with keep_torch_threads():
        model = TTSModel._from_pydantic_config_with_weights(Config(**local), 0.3, 1, None, -4.0)
    with torch.no_grad():
        model.flow_lm.speaker_proj_weight.normal_(0, 0.02)
    weights = work / "model.safetensors"
    safetensors.torch.save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()},
                                str(weights))
    del model
    published = {tok_repo: tok_rev}
    publish(cache, tok_repo, {tok_file: tokenizer}, commit=tok_rev)
    repo, name, rev = parse_hf_path(cfg["weights_path"])  # the fallback repo is read only when this one fails
    publish(cache, repo, {name: weights}, commit=rev)
    published[repo] = rev
    return published


def build(root: Path) -> dict[str, str]:
    """Write both stand-ins into ``<root>/hub`` (skipped when already built); returns the hub environment."""
    env = hub_env(root)
    cache = Path(env["HF_HUB_CACHE"])
    if is_built(root, BUILDER, VERSION, cache):
        return env
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        kokoro = Path(tmp) / "kokoro"
        kokoro.mkdir()
        repos = {KOKORO_REPO: publish_folder(cache, KOKORO_REPO, kokoro, kokoro_files(kokoro))}
        pocket = Path(tmp) / "pocket"
        pocket.mkdir()
        repos.update(pocket_files(cache, pocket))
    write_stamp(root, BUILDER, VERSION, repos)
    return env


def main(argv: list[str] | None = None) -> int:
    return builder_main(__name__, __doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
