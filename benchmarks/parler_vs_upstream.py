"""Stage 02's trainer against upstream parler-tts's ``training/run_parler_tts_training.py`` (issue #21): the same
tiny random-weight model (saved once to a folder), the same espeak-ng Kannada clips, the same optimizer steps, batch,
learning-rate schedule and precision (fp32, CPU), each side run as its own process, alternating suite, upstream,
suite, upstream... Each process is timed start to exit (model load, data loading, code encoding, training, the final
validation loss and saving), with its peak RSS. Every round starts cold: new workspace / output folders and a new
``datasets`` cache for both.

  PYTHONPATH=. .venv-parler/bin/python benchmarks/parler_vs_upstream.py               # 3 rounds of 40 steps

Upstream is a program run unchanged, never vendored: its ``training/`` folder is extracted at run time from a local
git snapshot (``--upstream-git``, from ``github:huggingface/parler-tts``) into /tmp/upstream-parler/training. Its
``[train]`` extras (wandb, evaluate: imported at start-up, unused here) are not on the parler stack; they are
installed with ``pip --no-deps --target`` into /tmp/upstream-parler/site (pins below, wandb 0.19 for the stack's
protobuf 4) and put on its PYTHONPATH only. Its process imports ``nbhelpers.parler.model`` first: upstream's
``DACModel`` ignores the codec widths in the config, so without the suite's ``SizedDACModel`` registration the tiny
model could not be loaded at all (size mismatch). Everything points at local paths, HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = Path("/tmp/upstream-parler")
MIRROR = Path("/work/.mirror/huggingface+parler-tts/repo")
EXTRAS = ["evaluate==0.4.6", "wandb==0.19.1", "pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0",
          "typing-inspection==0.4.5", "sentry-sdk==2.75.0", "gitpython==3.2.1", "gitdb==4.0.12", "smmap==5.0.3",
          "docker-pycreds==0.4.0", "setproctitle==1.3.8", "six==1.17.0"]
DESCRIPTIONS = ["A female speaker talks slowly in a quiet room.", "A male speaker talks quickly with a clear voice."]
# upstream's script run unchanged, after registering the sized DAC (see the module docstring)
SHIM = ("import runpy, sys; import nbhelpers.parler.model; sys.argv[0] = 'training/run_parler_tts_training.py'; "
        "runpy.run_path(sys.argv[0], run_name='__main__')")


def fetch_upstream(git_dir: Path, dest: Path) -> str:
    """Extract upstream's ``training/`` at HEAD of ``git_dir`` into ``dest``; returns the commit id."""
    commit = subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    shutil.rmtree(dest / "training", ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", f"--git-dir={git_dir}", "archive", commit, "training"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return commit


def ensure_extras(site: Path) -> None:
    """Upstream's import-time extras, installed once (no dependencies: the parler stack has the rest)."""
    if not (site / "wandb").is_dir() or not (site / "evaluate").is_dir():
        subprocess.run([shutil.which("pip") or "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                        *EXTRAS], check=True)


def build_data(root: Path, n_train: int, n_val: int, n_test: int) -> tuple[Path, Path]:
    """espeak-ng Kannada clips at 44.1 kHz: a saved DatasetDict (the suite's input) and the same rows as parquet
    files, audio + text in audio/, descriptions in meta/ (``load_dataset(folder)``, upstream's input)."""
    import datasets
    import numpy as np
    import soundfile as sf
    import soxr

    from nbhelpers.data.corpus import SENTENCES

    rows = []
    for i in range(n_train + n_val + n_test):
        text = SENTENCES["kn"][i % len(SENTENCES["kn"])]
        wav = root / "wav" / f"u{i}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["espeak-ng", "-v", "kn" if i % 2 == 0 else "kn+m3", "-s", "170", "-w", str(wav), text],
                       check=True, capture_output=True)
        audio, sr = sf.read(wav, dtype="float32")
        rows.append({"audio": {"array": soxr.resample(audio, sr, 44100).astype(np.float32), "sampling_rate": 44100},
                     "text": text, "text_description": DESCRIPTIONS[i % 2]})
    features = datasets.Features({"audio": datasets.Audio(sampling_rate=44100), "text": datasets.Value("string"),
                                  "text_description": datasets.Value("string")})
    cuts = {"train": rows[:n_train], "validation": rows[n_train:n_train + n_val], "test": rows[n_train + n_val:]}
    dd = datasets.DatasetDict({k: datasets.Dataset.from_list(v, features=features) for k, v in cuts.items()})
    dd.save_to_disk(str(root / "suite"))
    for split in ("train", "validation"):  # upstream joins an audio dataset and a metadata (description) dataset
        for part, columns in (("audio", ["audio", "text"]), ("meta", ["text_description"])):
            (root / "upstream" / part / split).mkdir(parents=True, exist_ok=True)
            dd[split].select_columns(columns).to_parquet(str(root / "upstream" / part / split / "data.parquet"))
    seconds = sum(len(r["audio"]["array"]) for r in rows[:n_train]) / 44100
    print(f"data: {n_train}/{n_val}/{n_test} clips, {seconds:.0f} s of training audio")
    return root / "suite", root / "upstream"


def build_model(folder: Path) -> Path:
    """The tiny random-weight model with both tokenizers, plus the DAC feature extractor upstream loads."""
    from transformers import EncodecFeatureExtractor

    from nbhelpers.parler.model import build_tiny, save_bundle

    save_bundle(build_tiny(0), folder)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=44100, padding_side="right", padding_value=0.0,
                            return_attention_mask=True).save_pretrained(folder / "feature_extractor")
    return folder


def suite_command(model: Path, data: Path, ws: Path, steps: int, batch: int) -> list[str]:
    sets = {"batch_size": batch, "max_train_utterances": 0, "warmup_steps": 0, "eval_every": steps, "save_every": 0,
            "gen_eval_every": 0, "sample_max_seconds": 0.05, "sample_max_chars_per_second": 0, "mixed_precision": "no"}
    return [sys.executable, "-m", "nbhelpers.parler", "train", "--profile", "smoke", "--workspace", str(ws),
            "--dataset", str(data), "--model", str(model), "--max-steps", str(steps),
            *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]]


def upstream_command(model: Path, data: Path, out: Path, steps: int, batch: int) -> list[str]:
    args = {"model_name_or_path": model, "feature_extractor_name": model / "feature_extractor",
            "description_tokenizer_name": model / "description_tokenizer", "prompt_tokenizer_name": model,
            "train_dataset_name": data / "audio", "train_metadata_dataset_name": data / "meta",
            "train_dataset_config_name": "default", "train_split_name": "train", "eval_dataset_name": data / "audio",
            "eval_metadata_dataset_name": data / "meta",
            "eval_split_name": "validation", "target_audio_column_name": "audio", "prompt_column_name": "text",
            "description_column_name": "text_description", "preprocessing_num_workers": 1,
            "per_device_train_batch_size": batch, "per_device_eval_batch_size": batch, "max_steps": steps,
            "learning_rate": 3e-3, "lr_scheduler_type": "cosine", "warmup_steps": 0, "adam_beta2": 0.99,
            "weight_decay": 0.0, "max_grad_norm": 1.0, "freeze_text_encoder": "true", "attn_implementation": "sdpa",
            "dtype": "float32", "audio_encoder_per_device_batch_size": 8, "output_dir": out / "run",
            "save_to_disk": out / "vectorized", "temporary_save_to_disk": out / "codes", "report_to": "tensorboard",
            "logging_steps": 10, "save_steps": steps, "eval_steps": steps, "seed": 0, "dataloader_num_workers": 0}
    return [sys.executable, "-c", SHIM, "--do_train", "--do_eval", "--overwrite_output_dir",
            *[a for k, v in args.items() for a in (f"--{k}", str(v))]]


def timed(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run ``cmd`` to exit; (wall seconds, peak RSS MiB of the process). Raises with the log's tail on failure."""
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}; end of {log}:\n{tail}")
    return wall, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clips", type=int, default=24, help="training clips (plus 8 validation, 4 test)")
    p.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each process (the machine is shared)")
    p.add_argument("--upstream-git", type=Path, default=MIRROR, help="git dir of a huggingface/parler-tts snapshot")
    p.add_argument("--keep", type=Path, help="work in this folder and keep it (logs, outputs)")
    args = p.parse_args(argv)
    commit = fetch_upstream(args.upstream_git, UPSTREAM)
    ensure_extras(UPSTREAM / "site")
    work = args.keep or Path(tempfile.mkdtemp(prefix="parler-vs-upstream-"))
    work.mkdir(parents=True, exist_ok=True)
    suite_data, upstream_data = build_data(work / "data", args.clips, 8, 4)
    model = build_model(work / "model")
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(args.threads),
            "MKL_NUM_THREADS": str(args.threads)}
    rows: list[tuple[int, str, float, float]] = []
    for r in range(1, args.rounds + 1):
        for side in ("suite", "upstream"):
            out = work / f"round{r}" / side
            out.mkdir(parents=True, exist_ok=True)
            env = {**base, "HF_DATASETS_CACHE": str(out / "hf-cache")}  # cold: no cached map()/parquet conversion
            if side == "suite":
                env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
                cmd, cwd = suite_command(model, suite_data, out / "ws", args.steps, args.batch), ROOT
            else:
                env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(UPSTREAM / "site"), str(UPSTREAM)])
                cmd, cwd = upstream_command(model, upstream_data, out, args.steps, args.batch), UPSTREAM
            wall, rss = timed(cmd, cwd=cwd, env=env, log=out / "log.txt")
            if side == "upstream" and not list((out / "run").glob(f"checkpoint-{args.steps}-epoch-*")):
                raise RuntimeError(f"upstream wrote no checkpoint-{args.steps}: see {out / 'log.txt'}")
            rows.append((r, side, wall, rss))
            print(f"round {r} {side}: {wall:.1f} s, peak RSS {rss:.0f} MiB", flush=True)
    import torch

    print(f"\nupstream commit {commit}; {args.steps} steps, batch {args.batch}, fp32 cpu, {args.threads} thread(s), "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| round | suite wall s | upstream wall s | suite peak RSS MiB | upstream peak RSS MiB |")
    print("|---|---|---|---|---|")
    by = {(r, s): (w, m) for r, s, w, m in rows}
    for r in range(1, args.rounds + 1):
        (sw, sm), (uw, um) = by[r, "suite"], by[r, "upstream"]
        print(f"| {r} | {sw:.1f} | {uw:.1f} | {sm:.0f} | {um:.0f} |")
    med = {s: statistics.median(w for _, side, w, _ in rows if side == s) for s in ("suite", "upstream")}
    print(f"| median | {med['suite']:.1f} | {med['upstream']:.1f} | | |")
    print(f"upstream / suite (medians): {med['upstream'] / med['suite']:.2f}x")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
