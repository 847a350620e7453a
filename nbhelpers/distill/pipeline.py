"""The whole stage in one call (CLI and notebook): teacher -> student -> distillation with stage 02's loop ->
export -> teacher-vs-student comparison -> stage record. A run stopped by the time budget saves a checkpoint
and records ``resume_needed``; calling again resumes it exactly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..budget import TimeBudget
from ..measure.harness import append_record
from ..parler.codes import load_or_encode
from ..parler.data import Filters, build_examples
from ..parler.model import ParlerBundle, get_bundle
from ..parler.train import RunPaths, load_dataset, process_state, run_seed, train, write_wav, write_wavs
from ..paths import Workspace
from ..records import append_stage_record
from ..samples import write_samples
from .evaluate import Reference, compare, int8_copy, reference_rows
from .report import (
    ARCHITECTURE_FILE,
    LOSS_CURVE_FILE,
    LOSS_PARTS,
    PLAN_FILE,
    TEACHER_CACHE_FILE,
    architecture_tables,
    cache_decision,
    plot_curves,
    sample_rows,
    write_json,
    write_tables,
)
from .train import (
    STAGE,
    find_teacher,
    load_student,
    load_teacher,
    loop_config,
    make_objective,
    make_student,
    save_student,
)


@dataclass
class DistillResult:
    status: str
    paths: RunPaths
    report: dict[str, Any]
    history: list[dict[str, Any]]
    comparison: dict[str, dict[str, Any]] = field(default_factory=dict)
    teacher: ParlerBundle | None = None
    student: ParlerBundle | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)  # test-split rows also synthesised, with recordings

    @property
    def student_dir(self) -> Path:
        return self.paths.run_dir / "student"


def dataset_for(params: dict[str, Any], workspace: Workspace, dataset: Any = None) -> Any:
    """The DatasetDict to distil on: an object or folder as given, else the profile's prepared dataset found
    in *this* workspace (or a Kaggle input)."""
    from ..data.layout import DatasetPaths

    source = dataset if dataset is not None else params["dataset"]
    if isinstance(source, str) and not Path(source).exists():
        source = str(DatasetPaths.find(source, workspace).parler_hf)
    return load_dataset(source)


def plan(params: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None) -> dict[str, Any]:
    """Build the initial student without training and return its construction report (architecture diff,
    layer mappings, prompt vocabulary sizes)."""
    ws = workspace or Workspace()
    teacher_src = find_teacher(params["teacher"], ws)
    teacher = load_teacher(teacher_src, workspace=ws, seed=run_seed(params))
    data = dataset_for(params, ws, dataset)
    _, report = make_student(params, teacher, list(data["train"]["text"]) + list(data["validation"]["text"]))
    return {"teacher_source": teacher_src, **report}


def run_dir(params: dict[str, Any], workspace: Workspace) -> Path:
    return RunPaths(workspace.stage_dir("distill"), params["run"]).run_dir


def write_plan(params: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None) -> Path:
    """What notebook 03 shows before training: the settings and the initial student's architecture tables,
    written to ``<workspace>/distill/<run>/plan.json``."""
    ws = workspace or Workspace()
    report = plan(params, workspace=ws, dataset=dataset)
    return write_json(run_dir(params, ws) / PLAN_FILE, {"settings": params,
                                                         "architecture": architecture_tables(report, params)})


def quantised_copies(sources: dict[str, str], params: Mapping[str, Any], device: torch.device, workspace: Workspace
                     ) -> tuple[dict[str, Callable[[], ParlerBundle]], dict[str, str]]:
    """Loaders of the bitsandbytes copies ``bnb_inference`` asks for (``teacher_8bit``, ``student_4bit``...) from
    ``sources`` (the teacher's source, the exported student's folder), and each copy that cannot load here with
    the reason: bitsandbytes quantises on CUDA only, so a CPU run measures none of them and says so."""
    loaders: dict[str, Callable[[], ParlerBundle]] = {}
    not_measured: dict[str, str] = {}
    for quant in params["bnb_inference"]:
        for who, source in sources.items():
            name = f"{who}_{quant}"
            if device.type != "cuda":
                not_measured[name] = (f"bitsandbytes {quant} weights need a CUDA GPU; stage 03 ran on {device.type} "
                                      "(run it on the kaggle-t4 or colab-t4 profile)")
            elif who == "student":
                loaders[name] = partial(load_student, source, quantization=quant, device_map={"": device.index or 0})
            else:
                loaders[name] = partial(get_bundle, source, workspace_dir=workspace.stage_dir("parler", "base"),
                                        seed=run_seed(params), quantization=quant, device_map={"": device.index or 0})
    return loaders, not_measured


def evaluate_pair(teacher: ParlerBundle, student: ParlerBundle, params: dict[str, Any], data: Any, *,
                  workspace: Workspace, disk: dict[str, Path] | None = None,
                  references: list[Reference] | None = None,
                  quantised: dict[str, Callable[[], ParlerBundle]] | None = None) -> dict[str, dict[str, Any]]:
    """Teacher vs student (its int8 copy when asked and on CPU, the ``quantised`` bitsandbytes copies on CUDA) on
    the profile's sentences plus the ``references`` (test-split rows, scored against their recordings), and on the
    test split's codes."""
    device = next(teacher.model.parameters()).device
    student.model.to(device)
    codes = load_or_encode(teacher, data, RunPaths(workspace.stage_dir("parler")).codes, splits=("test",),
                           batch_size=params["codes_batch_size"], device=device)["test"]
    max_frames = int(params["max_audio_seconds"] * teacher.frame_rate)
    examples = {name: build_examples(b, data["test"], codes, filters=Filters(max_frames=max_frames), name="test")[0]
                for name, b in (("teacher", teacher), ("student", student))}
    systems: dict[str, Any] = {"teacher": teacher, "student": student}
    if params["int8"] and device.type == "cpu":
        systems["student_int8"] = ParlerBundle(int8_copy(student.model), student.prompt_tokenizer,
                                               student.description_tokenizer, "student_int8")
        examples["student_int8"] = examples["student"]
    systems.update(quantised or {})
    frames = params["eval_frames"] or None
    dtype = torch.float16 if device.type == "cuda" and params["mixed_precision"] in ("auto", "fp16") else None
    return compare(systems, sentences=list(params["eval_sentences"]), description=params["sample_description"],
                   test_examples=examples, disk=disk, references=references,
                   frames=frames, max_seconds=params["eval_max_seconds"], seed=run_seed(params),
                   warmup=params["eval_warmup"], repeats=params["eval_repeats"], dtype=dtype,
                   quality=params["quality"], asr_model=params["asr_model"])


def run(params: dict[str, Any], *, workspace: Workspace | None = None, dataset: Any = None,
        budget: TimeBudget | None = None, stop_after: int | None = None) -> DistillResult:
    """Distil (or resume), then export, compare and record; returns everything the notebook shows."""
    ws = workspace or Workspace()
    if params["torch_threads"] > 0:
        torch.set_num_threads(params["torch_threads"])
    state = process_state()  # this process's device (each process of a multi-GPU launch gets its own GPU)
    teacher_src = find_teacher(params["teacher"], ws)
    with state.main_process_first():  # the tiny teacher is materialised once, by the main process
        teacher = load_teacher(teacher_src, workspace=ws, seed=run_seed(params))
    teacher.model.to(state.device)
    data = dataset_for(params, ws, dataset)
    texts = list(data["train"]["text"]) + list(data["validation"]["text"])
    student, report = make_student(params, teacher, texts)
    report["teacher_source"] = teacher_src
    if state.is_main_process:
        write_json(run_dir(params, ws) / ARCHITECTURE_FILE, architecture_tables(report, params))
    objective = make_objective(params, teacher, student, report, data, workspace=ws)
    result = train(loop_config(params, "student"), workspace=ws, dataset=data, run=params["run"],
                   budget=budget, stop_after=stop_after, bundle=student, loss_fn=objective, stage_dir="distill")
    paths = result.paths
    out = DistillResult(result.status, paths, report, result.history, teacher=teacher,
                        metrics={**result.metrics, **objective.cache_report()})
    if not state.is_main_process:  # multi-GPU: the main process exports, compares and records; no barrier after
        return out                   # this point, so a long comparison cannot time out a waiting process
    outputs: dict[str, Any] = {"run_dir": paths.run_dir, "checkpoints": paths.checkpoints, "history": paths.history,
                               "architecture": paths.run_dir / ARCHITECTURE_FILE,
                               "loss_curve": plot_curves(result.history, paths.run_dir / LOSS_CURVE_FILE,
                                                         parts=LOSS_PARTS, title="distillation",
                                                         ylabel="loss and its parts (nats)"),
                               "teacher_cache": write_json(paths.run_dir / TEACHER_CACHE_FILE,
                                                           cache_decision(out.metrics))}
    if result.status == "done":
        trained = ParlerBundle(result.model, student.prompt_tokenizer, student.description_tokenizer, "student")
        report["steps"] = result.step
        save_student(trained, out.student_dir, report)
        out.student = load_student(out.student_dir)
        teacher_dir = Path(teacher_src) if Path(teacher_src).is_dir() else None
        disk = {"student": out.student_dir, **({"teacher": teacher_dir} if teacher_dir else {})}
        out.references = reference_rows(data["test"], params["eval_test_rows"])
        quantised, not_measured = quantised_copies({"teacher": teacher_src, "student": str(out.student_dir)}, params,
                                                   next(teacher.model.parameters()).device, ws)
        out.comparison = evaluate_pair(teacher, out.student, params, data, workspace=ws, disk=disk,
                                       references=out.references, quantised=quantised)
        n_fixed = len(dict.fromkeys(params["eval_sentences"]))  # the eval_sentences come first, then test-split rows
        compare_dir = paths.run_dir / "compare"
        for name, row in out.comparison.items():
            write_wavs(compare_dir, name, row["audios"][:n_fixed], teacher.sampling_rate)
            write_wavs(compare_dir, f"{name}_test", row["audios"][n_fixed:], teacher.sampling_rate)
        recordings = {ref.text: str(write_wav(compare_dir / f"recording_test_{i}.wav", ref.audio, ref.sampling_rate))
                      for i, ref in enumerate(out.references)}
        table = {n: {k: v for k, v in r.items() if k != "audios"} for n, r in out.comparison.items()}
        write_json(paths.run_dir / "comparison.json", table)
        bench = paths.run_dir / "bench_records.jsonl"
        bench.unlink(missing_ok=True)  # this run's records only (a resumed run used to append twice)
        for row in table.values():  # tts-bench/1 records, for the suite benchmark (06)
            append_record({**row["record"], "stage": STAGE}, bench)
        steps = f"{result.step} distillation steps"
        states = {"teacher": "teacher (stage 02's model)", "student": f"student, {steps}"}
        kinds = {"int8": "dynamic int8", "8bit": "bitsandbytes 8-bit", "4bit": "bitsandbytes 4-bit (NF4)"}
        named = {n: ", ".join([states[n.partition("_")[0]], *([kinds[n.partition("_")[2]]] if "_" in n else [])])
                 for n in table}
        rows = sample_rows(table["teacher"]["texts"], n_fixed, named, compare_dir, recordings)
        outputs.update(student=out.student_dir, comparison=paths.run_dir / "comparison.json", bench_records=bench,
                       samples=write_samples(rows, compare_dir), **write_tables(paths.run_dir, table, params["profile"]))
        s = table["student"]
        out.metrics.update({k: s[k] for k in ("params_total_ratio", "params_decoder_ratio", "speedup", "test_ce",
                                              "code_accuracy", "cer", "dnsmos_ovrl", "mcd_db", "cer_vs_teacher",
                                              "mos_vs_teacher", "quality_within_10pct") if k in s})
        out.metrics.update({f"teacher_{k}": table["teacher"].get(k) for k in ("test_ce", "cer", "dnsmos_ovrl", "mcd_db")})
        if not_measured:  # 06 lists each as a row marked not available, with the reason
            out.metrics["not_measured"] = not_measured
    append_stage_record(STAGE, profile=params["profile"], status=result.status, workspace=ws,
                        inputs={"teacher": teacher_src, "dataset": params["dataset"]}, outputs=outputs,
                        metrics=out.metrics)
    return out
