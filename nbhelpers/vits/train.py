"""Train VITS with coqui's Trainer inside a notebook without killing the kernel: ``nbhelpers.coqui_runs`` drives
the Trainer on a time budget (a checkpoint and a normal return instead of ``sys.exit``/``os._exit``) and finds the
run the next session continues with ``continue_path`` (optimizer, scheduler and the step counter continue); a fresh
fine-tune restores weights only, with a report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import coqui_runs
from ..budget import TimeBudget
from ..coqui_runs import fit_budgeted, resumable_checkpoint, session_budget
from ..measure.profiling import record_fields
from ..paths import Workspace
from ..records import append_stage_record, write_json
from . import STAGE
from .config import (
    TEST_SENTENCES,
    Row,
    build_config,
    download_start,
    load_coqui_config,
    save_config,
    starting_point,
    to_samples,
)
from .lora import add_lora, generator_params
from .preflight import Check, PreflightReport, check_characters, check_espeak, check_inputs, check_restore
from .report import PREFLIGHT_FILE, SESSION_FILE, session_dict, write_preflight, write_timing
from .restore import RestoreReport, report_dict, restore_weights

RUNS = "runs"


@dataclass
class Prepared:
    """Everything a run needs after pre-flight: config, model, data rows and where it starts from."""

    params: dict[str, Any]
    workspace: Workspace
    config: Any
    model: Any
    train_rows: list[Row]
    val_rows: list[Row]
    dataset_dir: Path | None
    report: PreflightReport
    continue_dir: Path | None = None
    restore_path: Path | None = None


@dataclass
class TrainResult(coqui_runs.Fit):
    """A VITS session: how the budgeted coqui ``Trainer`` session ended (status from its stop reason) plus the run
    it continued and what restoring a checkpoint into a fresh model brought in."""

    continued_from: Path | None = None
    restore: RestoreReport | None = None
    restore_summary: dict[str, Any] | None = None  # report_dict(restore), kept when read back from session.json
    adapters: dict[str, Any] | None = None  # mode, LoRA layers/rank/alpha, the generator's trainable/total params


def runs_dir(workspace: Workspace) -> Path:
    return workspace.stage_dir("vits", RUNS)


def find_resumable_run(workspace: Workspace) -> Path | None:
    """The VITS run with the highest resumable step in the workspace or under /kaggle/input (copied into the
    workspace first; see :func:`nbhelpers.coqui_runs.find_resumable_run`)."""
    return coqui_runs.find_resumable_run(workspace, f"vits/{RUNS}")


def prepare(params: dict[str, Any], workspace: Workspace | str | None = None, *, dataset_dir: str | Path | None = None,
            restore_path: str | Path | None = None, resume: bool = True, print_report: bool = True) -> Prepared:
    """Pre-flight and build: find the dataset, a run to continue (if ``resume``) or the start model, build the
    config and model, and check environment, dataset, characters and the restore checkpoint. Raises
    PreflightError listing every failed check with its fix."""
    from TTS.tts.models.vits import Vits

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    report, dataset_dir, train_rows, val_rows = check_inputs(params, ws, dataset_dir)
    report.raise_if_failed()

    continue_dir = find_resumable_run(ws) if resume else None
    out = runs_dir(ws)
    if continue_dir is not None:
        config = load_coqui_config(continue_dir / "config.json")
        config.output_path, config.phoneme_cache_path = str(out), str(out / "phoneme_cache")
        save_config(config, continue_dir / "config.json")  # coqui reloads it; keep paths valid on this machine
        restore_path = None
        report.add(Check("resume", True, f"continuing {continue_dir.name} from "
                         f"{resumable_checkpoint(continue_dir).name} (optimizer, scheduler and step counter)"))
    else:
        start = starting_point(params["start"])
        if start.text == "espeak-bn":
            report.add(check_espeak())
            report.raise_if_failed()
        base_config = None
        if restore_path is not None:
            beside = Path(restore_path).parent / "config.json"
            base_config = load_coqui_config(beside) if beside.is_file() else None
        elif start.model_id is not None:
            try:
                restore_path, config_path = download_start(start)
            except RuntimeError as e:
                report.add(Check("start model", False, str(e)))
                report.raise_if_failed()
            base_config = load_coqui_config(config_path)
        config = build_config(params, out, dataset_dir, base_config, start)
    model = Vits(config)
    if continue_dir is not None:
        report.add(check_adapters(model, params, resumable_checkpoint(continue_dir)))
    report.add(check_characters(train_rows + val_rows, model.tokenizer))
    if restore_path is not None:
        report.add(check_restore(restore_path, model))
    if print_report:
        print(report)
    prep = Prepared(params, ws, config, model, train_rows, val_rows, Path(dataset_dir), report, continue_dir,
                    Path(restore_path) if restore_path else None)
    write_preflight(ws, report, prep if report.ok else None)
    report.raise_if_failed()
    return prep


def train(prep: Prepared, *, budget: TimeBudget | None = None, max_steps: int | None = None,
          record: bool = True) -> TrainResult:
    """Run (or continue) training until the budget runs out, ``max_steps`` total steps are done or the epochs
    end; always leaves a checkpoint and returns normally (also on Ctrl-C / notebook interrupt)."""
    import torch

    params = prep.params
    budget = budget or session_budget(params)
    max_steps = max_steps if max_steps is not None else (params.get("max_steps") or None)
    restore = None
    if prep.restore_path is not None and prep.continue_dir is None:
        restore = restore_weights(prep.model, prep.restore_path)
        print(restore.summary())
    adapters = {"mode": "full", **generator_params(prep.model)}
    if params["mode"] == "lora":  # after the restore (the start's weights), before coqui builds its optimisers
        adapters = {"mode": "lora", **add_lora(prep.model, list(params["lora_targets"]), params["lora_rank"],
                                               params["lora_alpha"])}
        print(f"LoRA: {adapters['lora_layers']} layers at rank {params['lora_rank']}; "
              f"{adapters['params_trainable']:,} of {adapters['params_total']:,} generator parameters train")
    fit = fit_budgeted(prep.config, prep.model, to_samples(prep.train_rows), to_samples(prep.val_rows),
                       budget=budget, max_steps=max_steps, continue_dir=prep.continue_dir, desc="VITS training",
                       profile_steps=params["profile_steps"])
    result = TrainResult(**vars(fit), continued_from=prep.continue_dir, restore=restore, adapters=adapters)
    print(f"training stopped ({result.reason}) at step {result.end_step} after {result.seconds:.0f} s; "
          f"status {result.status}; checkpoint {result.checkpoint}")
    metrics = train_metrics(result)
    if torch.cuda.is_available():  # CPU: run_guarded adds the process's peak RSS
        metrics["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    session = write_json(result.run_dir / SESSION_FILE, session_dict(result, metrics))  # what `finish` reads
    if record:
        append_stage_record(STAGE, profile=params["profile"], status=result.status, workspace=prep.workspace,
                            inputs={"dataset": prep.dataset_dir, "continued_from": prep.continue_dir,
                                    "restore_path": prep.restore_path},
                            outputs={"run_dir": result.run_dir, "checkpoint": result.checkpoint, "session": session,
                                     "preflight": prep.workspace.stage_dir("vits") / PREFLIGHT_FILE},
                            metrics=metrics)
    return result


def check_adapters(model: Any, params: dict[str, Any], checkpoint: Path | None) -> Check:
    """The run being continued was trained in the profile's ``mode`` with the same adapters (a LoRA run's checkpoint
    holds them; a full run's holds none): else coqui could not load it into this model."""
    from .lora import adapter_layout, checkpoint_weights, targets

    if checkpoint is None:
        return Check("LoRA settings", True, "no checkpoint to continue")
    saved = adapter_layout(checkpoint_weights(checkpoint))
    wanted = ({n: params["lora_rank"] for n in targets(model, list(params["lora_targets"]))}
              if params["mode"] == "lora" else {})
    if saved == wanted:
        return Check("LoRA settings", True, f"{checkpoint.name} matches mode {params['mode']}")
    was = f"lora (rank {max(saved.values())}, {len(saved)} layers)" if saved else "full"
    now = f"lora (rank {params['lora_rank']}, {len(wanted)} layers)" if wanted else "full"
    return Check("LoRA settings", False, f"{checkpoint} was trained with mode {was}, the profile now asks for {now}. "
                 "Fix: set mode / lora_rank / lora_targets back to the run's, or start a new run with --no-resume")


def load_session(path: str | Path) -> TrainResult:
    """A session written by :func:`train` (``session.json``), for ``finish`` in a later process."""
    import json

    d = json.loads(Path(path).read_text(encoding="utf-8"))
    opt = {k: Path(d[k]) if d.get(k) else None for k in ("checkpoint", "continued_from")}
    return TrainResult(d["reason"], Path(d["run_dir"]), d["start_step"], d["end_step"], d["seconds"], opt["checkpoint"],
                       d.get("last_losses") or {}, d.get("profile"), continued_from=opt["continued_from"],
                       restore_summary=d.get("restore"), adapters=d.get("adapters"))


def train_metrics(result: TrainResult) -> dict[str, Any]:
    """Numbers of one session for the stage record."""
    out = {"start_step": result.start_step, "end_step": result.end_step, "train_seconds": round(result.seconds, 1),
           "stop_reason": result.reason, **{f"train_{k}": round(v, 4) for k, v in result.losses.items()},
           "processes": 1, **(result.adapters or {}),  # one GPU: docs/vits.md (coqui's DDP mode is not used)
           **record_fields(result.profile)}
    if result.end_step > result.start_step:
        out["seconds_per_step"] = round(result.seconds / (result.end_step - result.start_step), 4)
    if result.restore is not None:
        out["restore"] = report_dict(result.restore)
    elif result.restore_summary is not None:
        out["restore"] = result.restore_summary
    return out


def finish(result: TrainResult, params: dict[str, Any], workspace: Workspace | str | None = None, *,
           dataset_dir: str | Path | None = None, record: bool = True) -> dict[str, Any]:
    """After a session (a budget stop included: its record then says resume_needed): publish the best model as an
    inference bundle (weights, config, ONNX fp32 and, with ``onnx_int8``, int8), write sample WAVs and the loss plot,
    check fp32 ONNX Runtime against PyTorch and int8 against fp32, time all backends on CPU with the same thread
    count, and append the stage record. Returns the outputs and metrics."""
    from ..measure.harness import append_record
    from .export import (
        ONNX_FILES,
        Backend,
        OnnxVits,
        best_checkpoint,
        compare_backends,
        fold_weight_norm,
        load_model,
        plot_losses,
        publish_bundle,
        speak_samples,
        synthesize,
        time_backends,
    )
    from .quantize import compare_int8

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    best = best_checkpoint(result.run_dir)
    model = load_model(best).cpu()
    int8 = params["export_onnx"] and params["onnx_int8"]
    bundle = publish_bundle(model, model.config, result.end_step, ws, onnx=params["export_onnx"], int8=int8,
                            meta={"source_checkpoint": str(best), "start": params["start"]})
    fold_weight_norm(model)  # inference from here on, with plain weights like the ONNX export
    out_dir = ws.stage_dir("vits")
    state = f"after {result.end_step} training steps" + (" from a random tiny start" if params["start"] == "tiny" else
                                                         f" from {params['start']}")
    samples = speak_samples(lambda text: synthesize(model, text), out_dir / "samples", state)
    loss_png = plot_losses(result.run_dir, out_dir / "losses.png")
    outputs = {"bundle": bundle, "model": bundle / "model.pth", "config": bundle / "config.json",
               "best_checkpoint": best, "run_dir": result.run_dir, "tensorboard": result.run_dir,
               "samples": samples,
               "loss_plot": loss_png, "preflight": out_dir / PREFLIGHT_FILE}
    metrics = train_metrics(result)
    if params["export_onnx"]:
        import torch

        threads = torch.get_num_threads()  # the same thread count for every backend
        fp32_path = outputs["onnx"] = bundle / ONNX_FILES["fp32"]
        onnx = OnnxVits(fp32_path, model.config, threads=threads)
        metrics["onnx_vs_pytorch"] = compare_backends(model, onnx, tolerance=params["onnx_tolerance"])
        backends = {"pytorch": Backend(lambda t, **kw: synthesize(model, t, **kw), model, [bundle / "model.pth"],
                                       threads=threads),
                    "onnxruntime": Backend(onnx.synthesize, fp32_path, [fp32_path], threads=threads)}
        if int8:
            int8_path = outputs["onnx_int8"] = bundle / ONNX_FILES["int8"]
            quant = OnnxVits(int8_path, model.config, threads=threads)
            metrics["int8_vs_fp32"] = compare_int8(onnx, quant, TEST_SENTENCES, params["int8_max_convergence"])
            backends["onnxruntime-int8"] = Backend(quant.synthesize, int8_path, [int8_path], "int8", threads)
        records = time_backends(backends, repeats=params["timing_repeats"])
        for rec in records.values():
            append_record(rec, out_dir / "bench.jsonl")
        outputs["bench_records"] = out_dir / "bench.jsonl"
        metrics["cpu_rtf"] = {k: {f: r[f] for f in ("rtf", "rtf_median", "latency_s_median", "peak_rss_mib",
                                                     "params", "disk_mib")} for k, r in records.items()}
        metrics["onnx_speedup"] = records["pytorch"]["rtf"] / records["onnxruntime"]["rtf"]
        if int8:
            metrics["onnx_int8_speedup"] = records["pytorch"]["rtf"] / records["onnxruntime-int8"]["rtf"]
        outputs.update(write_timing(metrics, out_dir))
    if record:
        append_stage_record(STAGE, profile=params["profile"], status=result.status, workspace=ws,
                            inputs={"dataset": dataset_dir, "start": params["start"]}, outputs=outputs,
                            metrics=metrics, note="smoke: random-init tiny model, mechanics only"
                            if params["start"] == "tiny" else "")
    return {"outputs": outputs, "metrics": metrics, "model": model}
