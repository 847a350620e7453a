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

--teacher-cache instead runs the same short distillation twice in this process, teacher_cache = "off" then
"memory" (stage 02's loop with the stage's objective, same seed, data and step order, grad_accum 1), and prints
seconds per step in epoch 1 and in epochs >= 2, teacher forward calls, the cache's bytes and the final losses of
both runs. Teacher: random weights, stage 02's tiny codec under a bigger decoder and encoder (CACHE_TEACHER:
decoder 24 x 256 with 9 codebooks x 1025 ids, like Indic Parler-TTS's depth and codebooks at a quarter of its width;
T5 8 x 256); student decoder 24 -> 6 copied layers and T5 8 -> 2 blocks (about the kaggle-t4 cut), which puts the
teacher's forward at 40-45 % of an uncached CPU step. Data: --examples (<= 16, the loop's smoke
max_train_utterances) synthetic noise clips of 1-2 s with Kannada prompts, batch 4, learning rate 5e-4, smoke
training settings otherwise. Step times are the intervals between the starts of consecutive steps; an untimed
two-step run first warms the process up and encodes the DAC codes, so neither timed run pays for them.

  PYTHONPATH=. .venv-parler/bin/python benchmarks/distill.py --teacher-cache --epochs 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import numpy as np
import torch

TARGETS = {"params_total_ratio": 0.50, "params_decoder_ratio": 0.25, "speedup": 2.5}
SENTENCES = ["ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", "ಇಂದು ಬೆಂಗಳೂರಿನಲ್ಲಿ ಮಳೆ ಬರುತ್ತಿದೆ."]
DESCRIPTION = "A female speaker delivers a slightly expressive speech with a moderate speed and pitch."
CACHE_TEACHER = {"hidden": 256, "layers": 24, "text_layers": 8, "codebooks": 9, "codebook_size": 1024}
CACHE_STUDENT = {"student_decoder_layers": 6, "student_text_encoder_layers": 2, "batch_size": 4, "grad_accum": 1,
                 "warmup_steps": 2, "eval_every": 0, "save_every": 0, "sample_every": 0, "sample_max_seconds": 0.05,
                 "max_audio_seconds": 3.0, "learning_rate": 5e-4}
CACHE_TEXTS = SENTENCES + ["ಕನ್ನಡ ಒಂದು ಸುಂದರ ಭಾಷೆ.", "ನಾನು ಪ್ರತಿದಿನ ಬೆಳಿಗ್ಗೆ ಪುಸ್ತಕ ಓದುತ್ತೇನೆ.",
                           "ಮಕ್ಕಳು ಆಟದ ಮೈದಾನದಲ್ಲಿ ಆಡುತ್ತಿದ್ದಾರೆ.", "ರೈತರು ಹೊಲದಲ್ಲಿ ಕೆಲಸ ಮಾಡುತ್ತಾರೆ."]
CACHE_DESCRIPTIONS = [DESCRIPTION, "A male speaker talks fast with a low pitch in a quiet room."]


def indic_sized_teacher(seed: int = 0, *, decoder_layers: int = 24, text_layers: int = 24, attention: str = "sdpa"):
    """A random-weight model with Indic Parler-TTS's published component sizes, built offline; fewer layers give
    the kaggle-t4 student's shape (5 decoder layers, 6 T5 blocks); ``attention`` is "sdpa" or "eager"."""
    from parler_tts import DACConfig, ParlerTTSConfig, ParlerTTSDecoderConfig, ParlerTTSForConditionalGeneration
    from transformers import T5Config

    from nbhelpers.parler.model import ParlerBundle, _set_generation_defaults, byte_tokenizer

    text = T5Config(vocab_size=32128, d_model=1024, d_kv=64, d_ff=2816, num_layers=text_layers, num_heads=16,
                    feed_forward_proj="gated-gelu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                    num_decoder_layers=text_layers)
    audio = DACConfig(num_codebooks=9, codebook_size=1024, latent_dim=1024, frame_rate=86, sampling_rate=44100)
    # vocabulary = 1024 codes + EOS (upstream pads it to 1088; random weights would then sample ids the codec lacks)
    decoder = ParlerTTSDecoderConfig(vocab_size=1025, max_position_embeddings=4096, num_hidden_layers=decoder_layers,
                                     ffn_dim=4096, num_attention_heads=16, hidden_size=1024, num_codebooks=9,
                                     pad_token_id=1024, eos_token_id=1024, bos_token_id=1025,
                                     decoder_start_token_id=1025, rope_embeddings=True)
    cfg = ParlerTTSConfig.from_sub_models_config(text, audio, decoder, vocab_size=32128, pad_token_id=1024,
                                                 decoder_start_token_id=1025)
    if attention != "sdpa":  # sdpa is the decoder's default; T5 has none, so only another choice is set model-wide
        cfg._attn_implementation = cfg.decoder._attn_implementation = attention
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ParlerTTSForConditionalGeneration(cfg)
    model.generation_config = model.generation_config.from_model_config(model.config)
    _set_generation_defaults(model)
    return ParlerBundle(model.eval(), byte_tokenizer("left"), byte_tokenizer("right"), "indic-sized (random)")


def cache_dataset(n_train: int, seed: int = 0) -> Any:
    """Synthetic noise clips of 1-2 s (every one a different length: distinct examples, and batches carry padding)
    with Kannada prompts and a ``duration`` column, plus two validation rows: read like a prepared dataset."""
    import datasets

    g = np.random.default_rng(seed)
    rows = []
    for i in range(n_train + 2):
        seconds = 1.0 + i / (n_train + 1)
        rows.append({"audio": {"array": (0.1 * g.standard_normal(int(44100 * seconds))).astype(np.float32),
                               "sampling_rate": 44100},
                     "text": CACHE_TEXTS[i % len(CACHE_TEXTS)], "duration": seconds,
                     "text_description": CACHE_DESCRIPTIONS[i % len(CACHE_DESCRIPTIONS)]})
    feats = datasets.Features({"audio": datasets.Audio(sampling_rate=44100), "text": datasets.Value("string"),
                               "text_description": datasets.Value("string"), "duration": datasets.Value("float32")})
    return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:n_train], features=feats),
                                 "validation": datasets.Dataset.from_list(rows[n_train:], features=feats)})


def timed_distillation(mode: str, params: dict[str, Any], data: Any, workspace: Any, run: str) -> dict[str, Any]:
    """One short distillation (run name ``run``) with ``teacher_cache = mode`` through stage 02's loop: the start
    time of every step, the time spent getting the teacher's targets, teacher forward calls (a hook on the
    teacher), the cache's bytes and the loss history."""
    from nbhelpers.distill.train import loop_config, make_objective, make_student
    from nbhelpers.parler.model import build_tiny
    from nbhelpers.parler.train import train

    teacher = build_tiny(0, **CACHE_TEACHER)
    run_params = {**params, "teacher_cache": mode, "run": run}
    student, report = make_student(run_params, teacher, CACHE_TEXTS)
    objective = make_objective(run_params, teacher, student, report, data, workspace=workspace)
    forwards: list[int] = []
    teacher.model.register_forward_hook(lambda *_: forwards.append(1))
    starts: list[float] = []
    in_teacher: list[float] = []
    targets = objective.teacher_targets

    def timed_targets(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = targets(*args, **kwargs)
        in_teacher.append(time.perf_counter() - t)
        return out

    def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> Any:
        starts.append(time.perf_counter())
        return objective(model, batch)

    objective.teacher_targets = timed_targets  # type: ignore[method-assign]
    result = train(loop_config(run_params, "student"), workspace=workspace, dataset=data, run=run, bundle=student,
                   loss_fn=loss_fn, stage_dir="distill")
    entries = objective.cache.entries.values() if objective.cache is not None else ()
    cache_bytes = sum(v.numel() * v.element_size() for e in entries for v in e.values() if isinstance(v, torch.Tensor))
    return {"step_seconds": np.diff(starts).tolist(), "teacher_seconds": in_teacher, "teacher_forwards": len(forwards),
            "cache_bytes": cache_bytes, "losses": [h["loss"] for h in result.history],
            "cache_report": objective.cache_report(), "student_decoder_layers": report["decoder_layer_map"],
            "student_text_encoder_layers": report["text_encoder_layer_map"]}


def teacher_cache_bench(epochs: int, examples: int, tolerance: float = 2e-3) -> None:
    """teacher_cache off vs memory on the same short CPU distillation; prints the comparison table."""
    from nbhelpers.paths import Workspace
    from nbhelpers.profiles import load_profile

    params = load_profile("distill", "smoke", CACHE_STUDENT)
    batch, most = params["batch_size"], params["max_train_utterances"]
    if examples % batch or examples > most or epochs < 2:
        raise SystemExit(f"--examples must be a multiple of the batch size {batch} and at most {most} (the loop's "
                         "max_train_utterances on smoke), --epochs at least 2")
    per_epoch = examples // batch
    params = load_profile("distill", "smoke", {**CACHE_STUDENT, "max_steps": epochs * per_epoch + 1})  # the extra
    # step only closes the last timed step
    data = cache_dataset(examples)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(tmp)
        t0 = time.time()  # warm-up, not timed: the process's first steps and the DAC codes (cached in ws)
        timed_distillation("off", {**params, "max_steps": 2}, data, ws, "warmup")
        print(f"warm-up: {time.time() - t0:.0f} s", flush=True)
        for mode in ("off", "memory"):
            t0 = time.time()
            runs[mode] = timed_distillation(mode, params, data, ws, mode)
            print(f"{mode}: {time.time() - t0:.0f} s", flush=True)

    def mean(xs: list[float]) -> float:
        return float(np.mean(xs))

    rows = []
    for mode, r in runs.items():
        steps, teach = r["step_seconds"], r["teacher_seconds"][:epochs * per_epoch]
        rows.append({"mode": mode, "s_per_step_epoch1": mean(steps[:per_epoch]),
                     "s_per_step_epochs2plus": mean(steps[per_epoch:]),
                     "teacher_s_per_step_epoch1": mean(teach[:per_epoch]),
                     "teacher_s_per_step_epochs2plus": mean(teach[per_epoch:]),
                     "teacher_forwards": r["teacher_forwards"], "cache_bytes": r["cache_bytes"],
                     "cache_estimate_bytes": round(r["cache_report"].get("teacher_cache_estimate_gb", 0) * 1e9)
                     if mode == "memory" else 0,
                     "final_loss": r["losses"][-1]})
    off, mem = runs["off"]["losses"], runs["memory"]["losses"]
    rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(off, mem, strict=True)]
    agree = rel[0] <= tolerance and rel[-1] <= tolerance
    print(f"\nteacher_cache off vs memory, CPU, {torch.get_num_threads()} threads, RANDOM weights (speed only)")
    print(f"teacher {CACHE_TEACHER} (tiny codec), student decoder layers {runs['off']['student_decoder_layers']}, "
          f"T5 blocks {runs['off']['student_text_encoder_layers']}; {examples} clips of 1-2 s, batch {batch}, "
          f"{per_epoch} steps per epoch, {epochs} epochs timed (+1 untimed closing step)\n")
    print("| mode | s/step epoch 1 | s/step epochs >= 2 | teacher targets s/step epoch 1 | epochs >= 2 | "
          "teacher forwards | cache bytes (estimate) | final loss |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['s_per_step_epoch1']:.3f} | {r['s_per_step_epochs2plus']:.3f} | "
              f"{r['teacher_s_per_step_epoch1']:.3f} | {r['teacher_s_per_step_epochs2plus']:.4f} | "
              f"{r['teacher_forwards']} | {r['cache_bytes']:,} ({r['cache_estimate_bytes']:,}) | {r['final_loss']:.6f} |")
    speedup = rows[0]["s_per_step_epochs2plus"] / rows[1]["s_per_step_epochs2plus"]
    share = sum(runs["off"]["teacher_seconds"][:epochs * per_epoch]) / sum(runs["off"]["step_seconds"])
    medians = [float(np.median(runs[m]["step_seconds"][per_epoch:])) for m in ("off", "memory")]
    print(f"\noff: the teacher's forward is {share:.0%} of the step time; memory: the teacher ran "
          f"{rows[1]['teacher_forwards']} times (once per batch of epoch 1: {per_epoch}); epochs >= 2: "
          f"{speedup:.2f}x faster per step with the cache (means; medians {medians[0]:.3f} vs {medians[1]:.3f} s, "
          f"{medians[0] / medians[1]:.2f}x)")
    print(f"loss |off - memory| / off: step 1 (same weights, fp16 storage only) {rel[0]:.2e}, final step "
          f"{rel[-1]:.2e} (|diff| {abs(off[-1] - mem[-1]):.2e}), largest over the {len(rel)} steps {max(rel):.2e}; "
          f"step 1 and final {'within' if agree else 'OUTSIDE'} the storage tolerance {tolerance:g}")
    print(json.dumps({"rows": rows, "loss_rel_diff": rel, "step_seconds": {m: r["step_seconds"] for m, r in runs.items()},
                      "threads": torch.get_num_threads(), "teacher_shape": CACHE_TEACHER,
                      "cache_report": runs["memory"]["cache_report"]}, indent=1, default=str))
    if not agree:
        raise SystemExit("the cached run's losses differ from the uncached run's by more than the storage tolerance")


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
    ap.add_argument("--teacher-cache", action="store_true",
                    help="time a short CPU distillation with teacher_cache off vs memory instead (see above)")
    ap.add_argument("--epochs", type=int, default=5, help="--teacher-cache: epochs timed (at least 2)")
    ap.add_argument("--examples", type=int, default=16, help="--teacher-cache: training clips (multiple of 4, at most 16)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.teacher_cache:
        teacher_cache_bench(args.epochs, args.examples)
        return

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
