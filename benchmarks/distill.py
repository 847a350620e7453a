"""Teacher vs student, side by side in one run on one device: parameters per component, weight size, peak
memory, generation latency and real-time factor, checked against stage 03's targets (student total parameters
<= 50 % of the teacher's, decoder <= 25 %, generation >= 2.5x faster).

Architectures (random weights: this measures size and speed, never quality):
  --arch indic   Indic Parler-TTS sized teacher (flan-t5-large-sized encoder 24 x 1024, DAC 44.1 kHz with 9
                 codebooks, decoder 24 x 1024 with 1025 code ids, prompt vocabulary 32128), student per the kaggle-t4 profile
                 (decoder 5 copied layers, encoder 6 copied blocks); the prompt table is not pruned here (no
                 real tokenizer offline), so the total-parameter figure is conservative.
  --arch tiny    stage 02's tiny smoke model and the smoke student.
  --teacher DIR  a real teacher folder (e.g. a stage-02 export) instead of a random one.

Every system generates exactly --frames audio frames per sentence (equal work), timed by the bench harness.

  PYTHONPATH=. .venv-parler/bin/python benchmarks/distill.py --arch indic --frames 86
"""

from __future__ import annotations

import argparse
import json
import time

import torch

TARGETS = {"params_total_ratio": 0.50, "params_decoder_ratio": 0.25, "speedup": 2.5}
SENTENCES = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", "ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುತ್ತಿದೆ."]
DESCRIPTION = "A female speaker delivers a slightly expressive speech with a moderate speed and pitch."


def indic_sized_teacher(seed: int = 0):
    """A random-weight model with Indic Parler-TTS's published component sizes, built offline."""
    from parler_tts import DACConfig, ParlerTTSConfig, ParlerTTSDecoderConfig, ParlerTTSForConditionalGeneration
    from transformers import T5Config

    from nbhelpers.parler.model import ParlerBundle, _set_generation_defaults, byte_tokenizer

    text = T5Config(vocab_size=32128, d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16,
                    feed_forward_proj="gated-gelu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    audio = DACConfig(num_codebooks=9, codebook_size=1024, latent_dim=1024, frame_rate=86, sampling_rate=44100)
    # vocabulary = 1024 codes + EOS (upstream pads it to 1088; random weights would then sample ids the codec lacks)
    decoder = ParlerTTSDecoderConfig(vocab_size=1025, max_position_embeddings=4096, num_hidden_layers=24,
                                     ffn_dim=4096, num_attention_heads=16, hidden_size=1024, num_codebooks=9,
                                     pad_token_id=1024, eos_token_id=1024, bos_token_id=1025,
                                     decoder_start_token_id=1025, rope_embeddings=True)
    cfg = ParlerTTSConfig.from_sub_models_config(text, audio, decoder, vocab_size=32128, pad_token_id=1024,
                                                 decoder_start_token_id=1025)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ParlerTTSForConditionalGeneration(cfg)
    model.generation_config = model.generation_config.from_model_config(model.config)
    _set_generation_defaults(model)
    return ParlerBundle(model.eval(), byte_tokenizer("left"), byte_tokenizer("right"), "indic-sized (random)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=("indic", "tiny"), default="indic")
    ap.add_argument("--teacher", help="a real teacher folder instead of a random architecture")
    ap.add_argument("--decoder-layers", type=int, help="student decoder layers (default: profile's)")
    ap.add_argument("--encoder-layers", type=int, help="student T5 blocks (default: profile's)")
    ap.add_argument("--frames", type=int, default=86, help="audio frames generated per sentence (86 = 1 s)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--int8", action="store_true", help="also time a dynamic-int8 copy of the student (CPU)")
    ap.add_argument("--json", help="write the full comparison here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from nbhelpers.distill.evaluate import compare, int8_copy, summary_rows
    from nbhelpers.distill.student import StudentSpec, architecture, build_student
    from nbhelpers.parler.model import ParlerBundle, build_tiny, load_bundle
    from nbhelpers.profiles import load_profile

    profile = load_profile("distill", "smoke" if args.arch == "tiny" and not args.teacher else "kaggle-t4")
    t0 = time.time()
    if args.teacher:
        teacher = load_bundle(args.teacher)
    elif args.arch == "indic":
        teacher = indic_sized_teacher()
    else:
        teacher = build_tiny(0)
    spec = StudentSpec.from_profile({**profile,
                                     **({"student_decoder_layers": args.decoder_layers} if args.decoder_layers else {}),
                                     **({"student_text_encoder_layers": args.encoder_layers} if args.encoder_layers else {})})
    student_model, report = build_student(teacher.model, spec)
    student = ParlerBundle(student_model.eval(), teacher.prompt_tokenizer, teacher.description_tokenizer, "student")
    print(f"built teacher and student in {time.time() - t0:.0f} s; decoder layers {report['decoder_layer_map']}, "
          f"T5 blocks {report['text_encoder_layer_map']}", flush=True)
    dtype = getattr(torch, args.dtype)
    systems = {}
    for name, b in (("teacher", teacher), ("student", student)):
        b.model.to(args.device, dtype)
        systems[name] = b
    if args.int8:
        systems["student_int8"] = ParlerBundle(int8_copy(student.model.float()), student.prompt_tokenizer,
                                               student.description_tokenizer, "student_int8")
    rows = compare(systems, sentences=SENTENCES, description=DESCRIPTION, frames=args.frames, seed=0, warmup=1,
                   repeats=args.repeats, quality=False)
    summary = summary_rows(rows)
    s = rows["student"]
    checks = {k: {"value": round(s[k], 4), "target": ("<= " if k != "speedup" else ">= ") + str(v),
                  "met": bool(s[k] <= v) if k != "speedup" else bool(s[k] >= v)} for k, v in TARGETS.items()}
    rec = rows["teacher"]["record"]
    print(json.dumps({"arch": args.teacher or args.arch, "device": args.device, "gpu": rec["gpu"], "cpu": rec["cpu"],
                      "threads": rec["threads"], "dtype": args.dtype, "frames": args.frames,
                      "teacher": architecture(teacher.model), "student": architecture(student.model),
                      "summary": summary, "targets": checks}, indent=1, default=str))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({n: {k: v for k, v in r.items() if k != "audios"} for n, r in rows.items()}, f, indent=1,
                      default=str)


if __name__ == "__main__":
    main()
