"""The model-size studies: one model trained per size point on the same data and step budget, each point compared
on quality and speed, plotted as quality against speed.

- Parler distillation (stage 03, ``--stage distill``): one student per size point (decoder layers, width,
  feed-forward size, attention heads, text-encoder blocks) from the same teacher; parameters, speed-up over the
  teacher, held-out cross-entropy and code accuracy, the quality estimates, time per step and memory.
- FastSpeech2 (stage 08, ``--stage baselines``): one acoustic model per shape (width, encoder/decoder layers,
  attention heads, feed-forward size) as a new run; parameters, its real-time factor on its own, the final mel
  loss and time per step.

    python -m nbhelpers.bench size-study --profile smoke --teacher tiny --points "layers=1;layers=2;layers=2,hidden=32,heads=2" --steps 8
    python -m nbhelpers.bench size-study --stage baselines --profile smoke --points "hidden=16;hidden=32;hidden=64,layers=2" --steps 6
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import Workspace
from ..records import FINAL, write_json

# a point's short name -> the setting it sets, per study (0 keeps the teacher's / the size preset's value)
STUDY_KNOBS = {"distill": {"layers": "student_decoder_layers", "hidden": "student_decoder_hidden",
                           "ffn": "student_decoder_ffn", "heads": "student_decoder_heads",
                           "text_layers": "student_text_encoder_layers"},
               "baselines": {"hidden": "fastspeech2_hidden", "layers": "fastspeech2_layers",
                             "heads": "fastspeech2_heads", "ffn": "fastspeech2_ffn"}}
KNOBS = STUDY_KNOBS["distill"]
ABBREV = {"layers": "l", "hidden": "h", "ffn": "f", "heads": "a", "text_layers": "t"}
RUN_PREFIX = "size-"
STAGE = "03_parler_distill"
BASELINES_STAGE = "08_baselines"


@dataclass(frozen=True)
class SizePoint:
    """One model size: (knob, value) pairs in its study's knob order; knobs left out keep the profile's value."""

    knobs: tuple[tuple[str, int], ...]
    stage: str = "distill"

    @property
    def name(self) -> str:
        return "-".join(f"{ABBREV[k]}{v}" for k, v in self.knobs)

    @property
    def settings(self) -> dict[str, int]:
        return {STUDY_KNOBS[self.stage][k]: v for k, v in self.knobs}


def parse_points(spec: str, stage: str = "distill") -> list[SizePoint]:
    """``"layers=1;layers=2,hidden=32,heads=2"`` -> size points of ``stage``'s study (``;`` between points, ``,``
    between knobs)."""
    knob_names = STUDY_KNOBS[stage]
    points = []
    for item in (x.strip() for x in spec.split(";") if x.strip()):
        knobs: dict[str, int] = {}
        for pair in (p.strip() for p in item.split(",") if p.strip()):
            key, sep, text = pair.partition("=")
            if key not in knob_names or not sep:
                raise ValueError(f"size point {item!r}: {pair!r} is not KNOB=N; knobs: {', '.join(knob_names)}")
            if not text.isdigit():
                raise ValueError(f"size point {item!r}: {key} must be a whole number >= 0 (0: the "
                                 f"{'teacher' if stage == 'distill' else 'size preset'}'s)")
            if key in knobs:
                raise ValueError(f"size point {item!r} sets {key} twice")
            knobs[key] = int(text)
        if stage == "distill" and knobs.get("layers") == 0:
            raise ValueError(f"size point {item!r}: a student needs at least one decoder layer")
        points.append(SizePoint(tuple((k, knobs[k]) for k in knob_names if k in knobs), stage))
    if not points:
        raise ValueError('no size points given: e.g. --points "layers=1;layers=2"')
    if len({p.name for p in points}) != len(points):
        raise ValueError(f"size points {spec!r} name the same size twice")
    return points


def size_row(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The figures one distillation run gives the study (None where 03 did not measure them)."""
    m = record.get("metrics") or {}
    return {"point": name, "status": record.get("status"), "steps": m.get("step"),
            "params_total": m.get("params_total"), "params_total_ratio": m.get("params_total_ratio"),
            "params_decoder_ratio": m.get("params_decoder_ratio"), "speedup": m.get("speedup"),
            "test_ce": m.get("test_ce"), "teacher_test_ce": m.get("teacher_test_ce"),
            "code_accuracy": m.get("code_accuracy"), "dnsmos_ovrl": m.get("dnsmos_ovrl"), "cer": m.get("cer"),
            "final_eval_loss": m.get("final_eval_loss"), "seconds_per_step": m.get("seconds_per_step"),
            "peak_memory_gib": m.get("peak_memory_gib")}


def newest_size_runs(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{point name: the newest final record of its ``distill/size-<name>`` run}, oldest point first."""
    newest: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("stage") == STAGE and r.get("status") in FINAL:
            run = Path(str((r.get("outputs") or {}).get("run_dir") or "")).name
            if run.startswith(RUN_PREFIX):
                newest.pop(run[len(RUN_PREFIX):], None)
                newest[run[len(RUN_PREFIX):]] = r
    return newest


def plot_sizes(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Held-out cross-entropy (lower is better) against speed-up over the teacher, one labelled point per size."""
    teacher = next((r["teacher_test_ce"] for r in rows if r.get("teacher_test_ce") is not None), None)
    return _scatter(rows, "speedup", "test_ce", path, xlabel="speed-up over the teacher (x, same texts and device)",
                    ylabel="held-out cross-entropy over audio codes (lower is better)",
                    title="Student size: quality against speed (Parler distillation)",
                    line=("teacher", teacher) if teacher is not None else None)


def _scatter(rows: list[dict[str, Any]], x: str, y: str, path: Path, *, xlabel: str, ylabel: str, title: str,
             line: tuple[str, float] | None = None) -> Path | None:
    """One labelled point (name and parameters) per row that has both figures, an optional labelled horizontal
    line; None when no row has them."""
    done = [r for r in rows if isinstance(r.get(x), float | int) and isinstance(r.get(y), float | int)]
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter([r[x] for r in done], [r[y] for r in done])
    for r in done:
        ax.annotate(f"{r['point']} ({r['params_total'] / 1e6:.3g} M)" if r.get("params_total") else r["point"],
                    (r[x], r[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if line is not None:
        ax.axhline(line[1], linestyle="--", color="grey", label=line[0])
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fastspeech2_row(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The figures one stage-08 run gives the FastSpeech2 size study (None where 08 did not measure them)."""
    m = record.get("metrics") or {}
    start, end, seconds = m.get("fastspeech2_start_step"), m.get("fastspeech2_end_step"), m.get("fastspeech2_train_seconds")
    return {"point": name, "status": record.get("status"), "steps": end, "shape": m.get("fastspeech2_shape"),
            "params_total": m.get("fastspeech2_params"), "rtf": m.get("fastspeech2_rtf"),
            "final_mel_loss": m.get("fastspeech2_train_loss_spec"),
            "seconds_per_step": round(seconds / (end - start), 4) if seconds and end and end > (start or 0) else None}


def shape_name(shape: dict[str, int]) -> str:
    """``{"hidden": 32, "layers": 1, ...}`` -> ``h32-l1-a1-f64`` (a FastSpeech2 run's full shape)."""
    return "-".join(f"{ABBREV[k]}{shape[k]}" for k in STUDY_KNOBS["baselines"] if k in shape)


def newest_fastspeech2_sizes(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{full shape name: the newest final stage-08 record with that FastSpeech2 shape}, oldest shape first."""
    newest: dict[str, dict[str, Any]] = {}
    for r in records:
        shape = (r.get("metrics") or {}).get("fastspeech2_shape")
        if r.get("stage") == BASELINES_STAGE and r.get("status") in FINAL and isinstance(shape, dict):
            newest.pop(shape_name(shape), None)
            newest[shape_name(shape)] = r
    return newest


def plot_fastspeech2_sizes(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Final mel loss (lower is better) against FastSpeech2's real-time factor, one labelled point per shape."""
    return _scatter(rows, "rtf", "final_mel_loss", path,
                    xlabel="FastSpeech2 real-time factor (compute s per audio s, lower is faster)",
                    ylabel="final training mel loss (L1, lower is better)",
                    title="FastSpeech2 shape: quality against speed (stage 08)")


def run_size_study(profile: str, workspace: Workspace, points: list[SizePoint], steps: int, *,
                   teacher: str | None = None, stage: str = "distill") -> dict[str, Any]:
    """Run stage 03 once per size point (run ``distill/size-<point>``, same profile, teacher, data and ``steps``),
    or with ``stage="baselines"`` stage 08 as a new run per FastSpeech2 shape (``steps`` FastSpeech2 steps, one
    HiFi-GAN step: the vocoder only has to exist); then write ``<workspace>/bench/sizes[-fastspeech2]/study.json``
    and the plot; return the study."""
    from .. import nb

    distill = stage == "distill"
    out = workspace.stage_dir("bench", "sizes" if distill else "sizes-fastspeech2")
    rows: list[dict[str, Any]] = []
    for point in points:
        if distill:
            settings: dict[str, Any] = {"run": RUN_PREFIX + point.name, "max_steps": steps, **point.settings,
                                        **({"teacher": teacher} if teacher else {})}
            args: tuple[str, ...] = ("run",)
        else:
            settings = {**point.settings, "fastspeech2_max_steps": steps, "hifigan_max_steps": 1}
            args = ("train", "--no-resume")
        try:
            done = nb.run(stage, *args, profile=profile, workspace=workspace.root, settings=settings, quiet=True)
        except nb.StageFailed as err:
            rows.append({"point": point.name, "status": "failed", "reason": str(err)[:1500]})
            continue
        rows.append((size_row if distill else fastspeech2_row)(point.name, done.record or {}))
    chart = (plot_sizes if distill else plot_fastspeech2_sizes)(rows, out / "sizes.png")
    study = {"stage": stage, "profile": profile, "steps": steps, "teacher": teacher, "points": rows,
             "sizes_png": str(chart or "")}
    path = write_json(out / "study.json", study)
    return {**study, "path": str(path)}
