"""Train the two baselines on data prep's LJSpeech-style export (the one stage 04 uses), each with coqui's Trainer
on a time budget (``nbhelpers.coqui_runs``: stops with a checkpoint, continues in the next session), then publish
one bundle and the test-sentence samples: FastSpeech2 mel -> HiFi-GAN waveform."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..budget import TimeBudget
from ..checkpoint import save_checkpoint
from ..coqui_runs import Fit, find_resumable_run, fit_budgeted, resumable_checkpoint, session_budget
from ..measure.profiling import record_fields
from ..paths import Workspace
from ..records import append_stage_record, write_json
from ..vits.config import Row, read_speakers, save_config, to_samples
from ..vits.preflight import Check, PreflightReport, check_characters, check_espeak, check_inputs
from ..vits.report import preflight_summary
from . import STAGE
from .config import MODELS, fastspeech2_config, fastspeech2_shape, hifigan_config, load_config, test_sentences
from .synth import FILES, Baseline, bundles_dir, load_bundle

PREFLIGHT_FILE = "preflight.json"
# coqui's training-log losses drawn per model (TensorBoard TrainIterStats/<tag>, written every plot_step)
LOSS_TAGS = {"fastspeech2": ("loss_spec", "loss_dur", "loss_aligner", "loss_binary_alignment", "loss_pitch",
                             "loss_energy"),
             "hifigan": ("G_l1_spec_loss", "G_feat_match_loss", "G_adv_loss", "D_mse_gan_loss")}
RESYNTHESIS_ITEMS = 3  # held-out recordings the vocoder re-voices from their own mels (PESQ/STOI)
CACHE_STATS = {"f0_cache_path": "pitch_stats.npy", "energy_cache_path": "energy_stats.npy"}


def runs_path(which: str) -> str:
    """Workspace-relative folder of one model's coqui runs."""
    return f"baselines/{which}/runs"


@dataclass
class Prepared:
    """The checked dataset rows and the profile values a session trains with."""

    params: dict[str, Any]
    workspace: Workspace
    dataset_dir: Path
    train_rows: list[Row]
    val_rows: list[Row]
    report: PreflightReport
    speakers: dict[str, str]  # row id -> speaker name (multi_speaker), else empty

    @property
    def speaker_names(self) -> list[str] | None:
        """The speakers FastSpeech2 embeds (sorted), or None for one speaker."""
        return sorted(set(self.speakers.values())) or None


def prepare(params: dict[str, Any], workspace: Workspace, *, dataset_dir: str | Path | None = None) -> Prepared:
    """Pre-flight (stage 04's checks: environment, dataset rows and wavs, characters the text front end would drop)
    and the rows; writes ``<workspace>/baselines/preflight.json``. Raises PreflightError listing every failure."""
    from TTS.tts.utils.text.tokenizer import TTSTokenizer

    report, dataset_dir, train_rows, val_rows = check_inputs(params, workspace, dataset_dir)
    if params["language"] == "en":
        report.add(check_espeak("stage 08's English front end", "English phonemes", "set language = 'bn'"))
    speakers: dict[str, str] = {}
    if params["multi_speaker"] and report.ok:
        speakers, check = speaker_check(dataset_dir, train_rows + val_rows)
        report.add(check)
    try:
        shape = fastspeech2_shape(params)
        report.add(Check("FastSpeech2 shape", True, ", ".join(f"{k} {v}" for k, v in shape.items())))
    except ValueError as err:
        report.add(Check("FastSpeech2 shape", False, str(err)))
    if report.ok:  # the dataset's rows are readable and the model can be built: check their characters too
        tokenizer, _ = TTSTokenizer.init_from_config(fastspeech2_config(params, workspace.root))
        report.add(check_characters(train_rows + val_rows, tokenizer))
    print(report)
    write_json(workspace.stage_dir("baselines") / PREFLIGHT_FILE, preflight_summary(report))
    report.raise_if_failed()
    return Prepared(params, workspace, Path(dataset_dir), train_rows, val_rows, report, speakers)


def speaker_check(dataset_dir: str | Path, rows: list[Row]) -> tuple[dict[str, str], Check]:
    """The speaker of every row from data prep's ``speakers.csv`` for multi-speaker training: refused when the file
    is missing, a row has no speaker, or there is only one speaker (then there is nothing to embed)."""
    speakers = read_speakers(dataset_dir)
    missing = [r for r in rows if r.id not in speakers]
    names = {speakers[r.id] for r in rows if r.id in speakers}
    if not speakers or missing or len(names) < 2:
        why = (f"{Path(dataset_dir) / 'speakers.csv'} is missing" if not speakers else
               f"{len(missing)} row(s) have no speaker in speakers.csv, e.g. {missing[0].id}" if missing else
               f"all rows are spoken by {next(iter(names))}")
        return {}, Check("speakers", False, f"multi_speaker needs a speaker per row and at least two speakers: {why}. "
                         "Fix: re-run data prep (01) for this dataset, or set multi_speaker = false")
    return {r.id: speakers[r.id] for r in rows}, Check("speakers", True, f"{len(names)} speakers")


def _drop_partial_caches(config: Any) -> None:
    """coqui computes the F0/energy caches only when their folder is missing, and writes the stats file last: a
    folder without it is what an interrupted session left, so it is removed and computed again."""
    for key, stats in CACHE_STATS.items():
        folder = getattr(config, key, None)
        if folder and Path(folder).is_dir() and not (Path(folder) / stats).is_file():
            print(f"{folder} is incomplete (no {stats}: an interrupted session?); computing it again")
            shutil.rmtree(folder)


def init_duration_bias(model: Any, rows: list[Row], limit: int = 1000) -> float:
    """Start a fresh FastSpeech2's duration predictor at the corpus's mean mel frames per input symbol (the bias of
    its output layer; it predicts log(1 + frames)). Untouched, it predicts ~0, i.e. one frame per symbol: half a
    second for a sentence, and a duration loss that starts far from its target. Uses up to ``limit`` rows spread
    over ``rows``; returns the frames per symbol."""
    import math

    import soundfile as sf
    import torch

    sample = rows[::max(1, len(rows) // limit)][:limit]
    frames = sum(sf.info(str(r.wav)).frames / model.config.audio.hop_length for r in sample)
    symbols = sum(len(model.tokenizer.text_to_ids(r.text)) for r in sample)
    per = frames / max(symbols, 1)
    with torch.no_grad():
        model.duration_predictor.proj.bias.fill_(math.log1p(per))
    return per


def train_model(which: str, prep: Prepared, *, budget: TimeBudget, max_steps: int | None = None,
                resume: bool = True) -> Fit:
    """Train (or continue the newest run of) ``which`` (fastspeech2 or hifigan) until the budget or ``max_steps``.
    A continued run keeps its own config.json (sizes, learning rate); profile changes apply to new runs."""
    from TTS.tts.models.forward_tts import ForwardTTS
    from TTS.vocoder.models.gan import GAN

    ws = prep.workspace
    out = ws.root / runs_path(which)
    out.mkdir(parents=True, exist_ok=True)
    continue_dir = find_resumable_run(ws, runs_path(which)) if resume else None
    fresh = (fastspeech2_config(prep.params, out, prep.speaker_names) if which == "fastspeech2" else
             hifigan_config(prep.params, out))
    if continue_dir is not None:
        config = load_config(continue_dir / "config.json")  # paths below: this machine's (a run copied from
        # /kaggle/input keeps old ones)
        for key in ("output_path", "phoneme_cache_path", *CACHE_STATS):
            if hasattr(config, key):
                setattr(config, key, getattr(fresh, key))
        save_config(config, continue_dir / "config.json")  # coqui reloads it
        print(f"{which}: continuing {continue_dir.name} from {resumable_checkpoint(continue_dir).name}")
    else:
        config = fresh
    if which == "fastspeech2":
        _drop_partial_caches(config)
        model = ForwardTTS(config)  # a speaker embedding over config.speakers when multi-speaker
        if continue_dir is None:
            per = init_duration_bias(model, prep.train_rows)
            print(f"fastspeech2: the duration predictor starts at the corpus's {per:.2f} mel frames per symbol")
        train, val = to_samples(prep.train_rows, prep.speakers), to_samples(prep.val_rows, prep.speakers)
    else:
        model = GAN(config)
        train, val = [str(r.wav) for r in prep.train_rows], [str(r.wav) for r in prep.val_rows]
    return fit_budgeted(config, model, train, val, budget=budget, max_steps=max_steps, continue_dir=continue_dir,
                        desc=f"{which} training", profile_steps=prep.params["profile_steps"])


def train_both(prep: Prepared, *, budget: TimeBudget | None = None, resume: bool = True) -> dict[str, Fit]:
    """FastSpeech2 first with ``fastspeech2_budget_fraction`` of the session's remaining time, then HiFi-GAN with
    the rest; each stops at its own ``<model>_max_steps`` (0 = budget only)."""
    params = prep.params
    budget = budget or session_budget(params)
    fits = {}
    for which in MODELS:
        share = params["fastspeech2_budget_fraction"] if which == "fastspeech2" else 1.0
        fits[which] = train_model(which, prep, budget=TimeBudget(max(budget.remaining(), 0.0) * share),
                                  max_steps=params[f"{which}_max_steps"] or None, resume=resume)
        print(f"{which}: steps {fits[which].start_step} -> {fits[which].end_step} ({fits[which].reason}) in "
              f"{fits[which].seconds:.0f} s; checkpoint {fits[which].checkpoint}")
    return fits


def fit_metrics(fit: Fit) -> dict[str, Any]:
    """One model's session numbers for the stage record."""
    return {"start_step": fit.start_step, "end_step": fit.end_step, "train_seconds": round(fit.seconds, 1),
            "stop_reason": fit.reason, **{f"train_{k}": round(v, 4) for k, v in fit.losses.items()},
            **record_fields(fit.profile)}


def publish(fits: dict[str, Fit], workspace: Workspace, meta: dict[str, Any] | None = None) -> Path:
    """Atomically write ``<workspace>/baselines/model/step-N`` (N = both models' steps together, so it grows with
    every session): each model's weights (the HiFi-GAN generator only) and config.json."""
    import torch

    def write(folder: Path) -> None:
        for which, fit in fits.items():
            if fit.checkpoint is None:
                raise FileNotFoundError(f"{which} left no checkpoint in {fit.run_dir}. Fix: train it at least one "
                                        "step (its max_steps / budget).")
            state = torch.load(fit.checkpoint, map_location="cpu", weights_only=False)["model"]
            if which == "hifigan":
                state = {k.removeprefix("model_g."): v for k, v in state.items() if k.startswith("model_g.")}
            weights, config = FILES[which]
            torch.save({"model": state, "step": fit.end_step}, folder / weights)
            shutil.copyfile(fit.run_dir / "config.json", folder / config)

    step = sum(f.end_step for f in fits.values())
    return save_checkpoint(bundles_dir(workspace), step, write, keep=2,
                           meta={"steps": {w: f.end_step for w, f in fits.items()}, **(meta or {})})


def resynthesis_check(baseline: Baseline, rows: list[Row], out_dir: Path) -> tuple[dict[str, Any], Path | None]:
    """HiFi-GAN on the held-out recordings' own mels (up to RESYNTHESIS_ITEMS): mean PESQ / STOI against the
    recordings (time-aligned, so the scores mean what they say), or the reason they cannot be scored; the first
    pair is written to ``out_dir`` (``recording.wav``, ``vocoded.wav``) for listening."""
    from ..data.audio import load_audio, resample
    from ..measure.quality import aligned_pairs_quality
    from ..samples import write_wav

    sr, pairs = baseline.sample_rate, []
    for row in rows[:RESYNTHESIS_ITEMS]:
        audio, rate = load_audio(row.wav)
        audio = audio.mean(axis=1)
        audio = resample(audio, rate, sr) if rate != sr else audio
        pairs.append((audio, baseline.resynthesize(audio)))
    if not pairs:
        return {"resynthesis_not_available": "no held-out recordings"}, None
    scores = aligned_pairs_quality(pairs, sr)
    write_wav(out_dir / "recording.wav", pairs[0][0], sr)
    write_wav(out_dir / "vocoded.wav", pairs[0][1], sr)
    if "not_available" in scores:
        return {"resynthesis_not_available": scores["not_available"]}, out_dir
    return {"resynthesis_pesq_wb": round(scores["pesq_wb_mean"], 3), "resynthesis_stoi": round(scores["stoi_mean"], 3),
            "resynthesis_pairs": scores["pairs"]}, out_dir


def acoustic_speed(baseline: Baseline, texts: tuple[str, ...]) -> float:
    """FastSpeech2's real-time factor on its own (compute seconds per second of the mel it predicts, after one
    untimed warm-up), on the device it is on: what the size study compares across shapes."""
    import time

    import torch

    model = baseline.acoustic
    hop, sr = model.config.audio.hop_length, model.config.audio.sample_rate
    ids = [baseline.text_ids(t) for t in texts]
    aux = baseline.speaker_input()
    seconds = frames = 0.0
    with torch.inference_mode():
        model.inference(ids[0], aux)
        for x in ids:
            start = time.perf_counter()
            frames += model.inference(x, aux)["model_outputs"].shape[1]
            seconds += time.perf_counter() - start
    return seconds / max(frames * hop / sr, 1e-9)


def finish(fits: dict[str, Fit], prep: Prepared) -> dict[str, Any]:
    """Publish the bundle, synthesise the test sentences through it and append the stage record."""
    from ..vits.export import plot_losses, speak_samples

    ws, params = prep.workspace, prep.params
    bundle = publish(fits, ws, {"size": params["size"], "dataset": str(prep.dataset_dir)})
    baseline = load_bundle(bundle)
    out_dir = ws.stage_dir("baselines")
    state = (f"FastSpeech2 after {fits['fastspeech2'].end_step} steps, HiFi-GAN after {fits['hifigan'].end_step}, "
             "both trained from scratch" + (" (tiny smoke models)" if params["size"] == "tiny" else ""))
    if baseline.speakers:
        state += f", speaking as {baseline.speakers[0]} (one of {len(baseline.speakers)} speakers)"
    texts = test_sentences(baseline.language)
    samples = speak_samples(baseline.synthesize, out_dir / "samples", state, texts=texts)
    plots = {f"{w}_loss_plot": plot_losses(f.run_dir, out_dir / f"losses_{w}.png", f"{w} training losses",
                                           LOSS_TAGS[w]) for w, f in fits.items()}
    resynthesis, pair_dir = resynthesis_check(baseline, prep.val_rows, out_dir / "resynthesis")
    status = "resume_needed" if any(f.status == "resume_needed" for f in fits.values()) else "done"
    outputs = {"bundle": bundle, "samples": samples, **({"resynthesis": pair_dir} if pair_dir else {}),
               "preflight": out_dir / PREFLIGHT_FILE, **plots, **{f"{w}_run": f.run_dir for w, f in fits.items()}}
    metrics = {f"{w}_{k}": v for w, f in fits.items() for k, v in fit_metrics(f).items()}
    metrics.update(parameters_millions=round(sum(p.numel() for p in baseline.parameters()) / 1e6, 3),
                   size=params["size"], fastspeech2_shape=baseline.shape,  # as built (a continued run keeps its own)
                   fastspeech2_params=sum(p.numel() for p in baseline.acoustic.parameters()),
                   fastspeech2_rtf=round(acoustic_speed(baseline, texts), 5), language=baseline.language,
                   speakers=len(baseline.speakers) or 1, **resynthesis)
    append_stage_record(STAGE, profile=params["profile"], status=status, workspace=ws,
                        inputs={"dataset": prep.dataset_dir}, outputs=outputs, metrics=metrics,
                        note="smoke: tiny random-init models, mechanics only" if params["size"] == "tiny" else "")
    print(f"published {bundle}; samples in {samples}; status {status}")
    return {"outputs": outputs, "metrics": metrics, "status": status}
