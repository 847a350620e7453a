"""Peak training memory, step time and parameter counts of stage 02 per mode (full, LoRA, 8-bit, 4-bit),
on random-weight models with the real shapes, so no download is needed.

Each mode runs in its own process (clean peak-memory counters): the model is built from configs, saved,
loaded the way training loads it (bitsandbytes for 8bit/4bit), prepared with ``prepare_model`` and trained
for a few Accelerate steps on one fixed synthetic batch through the same ``batch_loss`` as the trainer; the
loss must stay finite and fall (an fp16 training-step check).

  python benchmarks/parler_memory.py --shape tiny --modes full,lora --precision no           # CPU
  python benchmarks/parler_memory.py --shape mini --modes full,lora,8bit,4bit --precision fp16   # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def mini_shape_config():
    """parler-tts-mini-v1's shapes (T5-large encoder, DAC 44.1 kHz 9x1024, 24-layer d=1024 decoder)."""
    from parler_tts import DACConfig, ParlerTTSConfig, ParlerTTSDecoderConfig
    from transformers import T5Config

    text = T5Config(vocab_size=32128, d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16,
                    feed_forward_proj="gated-gelu", is_encoder_decoder=False)
    audio = DACConfig(num_codebooks=9, codebook_size=1024, latent_dim=1024, frame_rate=86, sampling_rate=44100)
    decoder = ParlerTTSDecoderConfig(vocab_size=1088, max_position_embeddings=4096, num_hidden_layers=24,
                                     ffn_dim=4096, num_attention_heads=16, hidden_size=1024, num_codebooks=9,
                                     pad_token_id=1024, eos_token_id=1024, bos_token_id=1025,
                                     decoder_start_token_id=1025, cross_attention_implementation_strategy=None)
    return ParlerTTSConfig.from_sub_models_config(text, audio, decoder, vocab_size=32128, pad_token_id=1024,
                                                  decoder_start_token_id=1025)


def build_base(shape: str, folder: Path) -> Path:
    """Save a random model of ``shape`` with byte tokenizers under ``folder`` (once)."""
    import torch
    from parler_tts import ParlerTTSForConditionalGeneration

    from nbhelpers.parler.model import ParlerBundle, build_tiny, byte_tokenizer, save_bundle

    if (folder / "config.json").is_file():
        return folder
    if shape == "tiny":
        bundle = build_tiny(0)
    else:
        torch.manual_seed(0)
        model = ParlerTTSForConditionalGeneration(mini_shape_config())
        bundle = ParlerBundle(model, byte_tokenizer("left"), byte_tokenizer("right"), shape)
    save_bundle(bundle, folder)
    return folder


def run_mode(base: Path, mode: str, args: argparse.Namespace) -> dict:
    """Train ``args.steps`` steps on one synthetic batch in ``mode``; returns the measurements."""
    import torch
    from accelerate import Accelerator

    from nbhelpers.parler.data import Collator, Example
    from nbhelpers.parler.model import load_bundle, parameter_counts
    from nbhelpers.parler.train import batch_loss, prepare_model, set_train_mode
    from nbhelpers.profiles import load_profile

    cuda = torch.cuda.is_available()
    cfg = load_profile("parler", "smoke", {"mode": mode, "gradient_checkpointing": args.gc,
                                           "freeze_text_encoder": True})
    quant = mode if mode in ("8bit", "4bit") else None
    accelerator = Accelerator(mixed_precision=args.precision, cpu=not cuda)
    bundle = load_bundle(str(base), quantization=quant, torch_dtype=torch.float32 if quant else None,
                         compute_dtype=torch.bfloat16 if args.precision == "bf16" else torch.float16)
    if quant is None:
        bundle.model.to(accelerator.device)
    model = prepare_model(bundle, cfg)
    counts = parameter_counts(model)
    k = bundle.num_codebooks
    codebook_size = int(bundle.model.config.audio_encoder.codebook_size)
    frames = int(args.seconds * bundle.frame_rate)
    g = torch.Generator().manual_seed(0)
    examples = [Example(torch.randint(0, codebook_size, (k, frames), generator=g, dtype=torch.int16),
                        torch.randint(3, 200, (args.prompt_tokens,), generator=g).tolist(),
                        torch.randint(3, 200, (args.description_tokens,), generator=g).tolist(), i)
                for i in range(args.batch)]
    batch = {key: v.to(accelerator.device) for key, v in Collator(bundle)(examples).items()}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    set_train_mode(model, True)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    losses, times = [], []
    for _ in range(args.steps):
        t = time.perf_counter()
        with accelerator.autocast():
            loss, _ = batch_loss(model, batch, None)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        losses.append(loss.item())
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return {"mode": mode, "precision": args.precision, "gradient_checkpointing": args.gc, "batch": args.batch,
            "seconds_audio": args.seconds, "trainable_params_M": round(counts["trainable"] / 1e6, 2),
            "total_params_M": round(counts["total"] / 1e6, 2), "peak_gib": round(peak, 2),
            "step_s": round(sorted(times[1:] or times)[len(times[1:] or times) // 2], 3),
            "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4),
            "finite": all(map(lambda x: x == x and abs(x) != float("inf"), losses)),
            "falls": losses[-1] < losses[0],
            "scaler_scale": float(accelerator.scaler.get_scale()) if accelerator.scaler is not None else None,
            "device": torch.cuda.get_device_name() if cuda else "cpu"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=("tiny", "mini"), default="tiny")
    p.add_argument("--modes", default="full,lora")
    p.add_argument("--precision", default="fp16", help="fp16 (T4 setting), bf16, no")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0, help="audio seconds per utterance")
    p.add_argument("--prompt-tokens", type=int, default=60)
    p.add_argument("--description-tokens", type=int, default=40)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--gc", action="store_true", help="gradient checkpointing")
    p.add_argument("--base", type=Path, help="where the random base model is saved (default: a temp dir)")
    p.add_argument("--one-mode", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    if args.one_mode:
        print("ROW " + json.dumps(run_mode(args.base, args.one_mode, args)), flush=True)
        return 0
    base = build_base(args.shape, args.base or Path(tempfile.mkdtemp()) / f"parler-{args.shape}")
    rows = []
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--one-mode", mode, "--base", str(base), "--precision", args.precision,
               "--batch", str(args.batch), "--seconds", str(args.seconds), "--prompt-tokens", str(args.prompt_tokens),
               "--description-tokens", str(args.description_tokens), "--steps", str(args.steps), "--lr", str(args.lr)]
        cmd += ["--gc"] if args.gc else []
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        row = next((json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith("ROW ")), None)
        rows.append(row or {"mode": mode, "error": (out.stderr or out.stdout)[-1500:]})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n| mode | trainable / total params (M) | peak GiB | s/step | loss first -> last |  ({args.shape}, "
          f"batch {args.batch} x {args.seconds:g} s, {args.precision}, checkpointing {args.gc})")
    print("|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['mode']} | error: {r['error'].splitlines()[-1] if r['error'] else '?'} | | | |")
        else:
            print(f"| {r['mode']} | {r['trainable_params_M']} / {r['total_params_M']} | {r['peak_gib']} | "
                  f"{r['step_s']} | {r['loss_first']} -> {r['loss_last']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
