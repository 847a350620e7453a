"""The model-size study: stage 03 distils one student per size point (decoder layers, width, feed-forward size,
attention heads, text-encoder blocks) from the same teacher, data and step budget, and each point is compared on
what 03 measures against the teacher: parameters, speed-up, held-out cross-entropy and code accuracy, the quality
estimates, time per step and memory. The plot shows quality against speed-up, one point per size.

    python -m nbhelpers.bench size-study --profile smoke --teacher tiny --points "layers=1;layers=2;layers=2,hidden=32,heads=2" --steps 8
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import Workspace
from ..records import FINAL, write_json

# a point's short name -> the distill setting it sets (0 keeps the teacher's value, as in profiles/distill.toml)
KNOBS = {"layers": "student_decoder_layers", "hidden": "student_decoder_hidden", "ffn": "student_decoder_ffn",
         "heads": "student_decoder_heads", "text_layers": "student_text_encoder_layers"}
ABBREV = {"layers": "l", "hidden": "h", "ffn": "f", "heads": "a", "text_layers": "t"}
RUN_PREFIX = "size-"
STAGE = "03_parler_distill"


@dataclass(frozen=True)
class SizePoint:
    """One student size: (knob, value) pairs in KNOBS order; knobs left out keep the profile's value."""

    knobs: tuple[tuple[str, int], ...]

    @property
    def name(self) -> str:
        return "-".join(f"{ABBREV[k]}{v}" for k, v in self.knobs)

    @property
    def settings(self) -> dict[str, int]:
        return {KNOBS[k]: v for k, v in self.knobs}


def parse_points(spec: str) -> list[SizePoint]:
    """``"layers=1;layers=2,hidden=32,heads=2"`` -> size points (``;`` between points, ``,`` between knobs)."""
    points = []
    for item in (x.strip() for x in spec.split(";") if x.strip()):
        knobs: dict[str, int] = {}
        for pair in (p.strip() for p in item.split(",") if p.strip()):
            key, sep, text = pair.partition("=")
            if key not in KNOBS or not sep:
                raise ValueError(f"size point {item!r}: {pair!r} is not KNOB=N; knobs: {', '.join(KNOBS)}")
            if not text.isdigit():
                raise ValueError(f"size point {item!r}: {key} must be a whole number >= 0 (0: the teacher's)")
            if key in knobs:
                raise ValueError(f"size point {item!r} sets {key} twice")
            knobs[key] = int(text)
        if knobs.get("layers") == 0:
            raise ValueError(f"size point {item!r}: a student needs at least one decoder layer")
        points.append(SizePoint(tuple((k, knobs[k]) for k in KNOBS if k in knobs)))
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
    done = [r for r in rows if isinstance(r.get("speedup"), float | int) and isinstance(r.get("test_ce"), float | int)]
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter([r["speedup"] for r in done], [r["test_ce"] for r in done])
    for r in done:
        ax.annotate(f"{r['point']} ({r['params_total'] / 1e6:.3g} M)" if r.get("params_total") else r["point"],
                    (r["speedup"], r["test_ce"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    teacher = next((r["teacher_test_ce"] for r in done if r.get("teacher_test_ce") is not None), None)
    if teacher is not None:
        ax.axhline(teacher, linestyle="--", color="grey", label="teacher")
        ax.legend()
    ax.set_xlabel("speed-up over the teacher (x, same texts and device)")
    ax.set_ylabel("held-out cross-entropy over audio codes (lower is better)")
    ax.set_title("Student size: quality against speed (Parler distillation)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_size_study(profile: str, workspace: Workspace, points: list[SizePoint], steps: int, *,
                   teacher: str | None = None) -> dict[str, Any]:
    """Run stage 03 once per size point (run ``distill/size-<point>``, same profile, teacher, data and ``steps``),
    then write ``<workspace>/bench/sizes/study.json`` and ``sizes.png``; return the study."""
    from .. import nb

    out = workspace.stage_dir("bench", "sizes")
    rows: list[dict[str, Any]] = []
    for point in points:
        settings: dict[str, Any] = {"run": RUN_PREFIX + point.name, "max_steps": steps, **point.settings}
        if teacher:
            settings["teacher"] = teacher
        try:
            done = nb.run("distill", "run", profile=profile, workspace=workspace.root, settings=settings, quiet=True)
        except nb.StageFailed as err:
            rows.append({"point": point.name, "status": "failed", "reason": str(err)[:1500]})
            continue
        rows.append(size_row(point.name, done.record or {}))
    chart = plot_sizes(rows, out / "sizes.png")
    study = {"profile": profile, "steps": steps, "teacher": teacher, "points": rows, "sizes_png": str(chart or "")}
    path = write_json(out / "study.json", study)
    return {**study, "path": str(path)}
