"""Every stage's profiles loaded together: what one stage reads under a profile is what an earlier stage writes
under the same profile (dataset names and their languages), and no real profile reads a smoke artefact."""

import ast
from pathlib import Path

import pytest

from nbhelpers.profiles import PROFILES, load_profile

REAL = [p for p in PROFILES if p != "smoke"]
# (stage profile, key holding a prepared dataset name, the language the stage needs)
READERS = [("parler", "dataset", "kn"), ("distill", "dataset", "kn"), ("pocket", "dataset", "kn"),
           ("vits", "dataset", "bn")]


def prepared(profile: str) -> dict[str, str]:
    """Dataset name -> language for what stage 01 prepares under ``profile``."""
    data = load_profile("data", profile)
    return {name: data["sources"][name]["language"] for name in data["datasets"]}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_dataset_a_stage_reads_is_prepared_by_data_prep(profile):
    written = prepared(profile)
    reads = [(stage, load_profile(stage, profile)[key], lang) for stage, key, lang in READERS]
    reads += [("bench", name, lang) for lang, name in load_profile("bench", profile)["datasets"].items()]
    for stage, name, lang in reads:
        assert name in written, (f"{stage} [{profile}] reads dataset {name!r}, but data prep [{profile}] prepares "
                                 f"only {sorted(written)}")
        assert written[name] == lang, f"{stage} [{profile}] needs {lang} data; {name!r} is {written[name]}"


@pytest.mark.parametrize("profile", REAL)
def test_real_profiles_never_read_smoke_artefacts(profile):
    for stage in ("parler", "distill", "pocket", "vits", "bench"):
        params = load_profile(stage, profile)
        names = [params.get("dataset")] + list(params.get("datasets", {}).values())
        assert not any(n and "smoke" in n for n in names), f"{stage} [{profile}] reads a smoke dataset: {names}"
    for stage in ("parler", "pocket"):
        assert load_profile(stage, profile)["model"] != "tiny", f"{stage} [{profile}] trains the tiny random model"
    assert load_profile("distill", profile)["teacher"] in ("auto",), "03 distils this run's stage-02 export"
    assert load_profile("vits", profile)["start"] != "tiny"


def test_no_module_constant_names_a_smoke_dataset():
    """Dataset names belong in the profiles; a constant naming kn_smoke/bn_smoke would be read by real runs."""
    root = Path(__file__).resolve().parents[2] / "nbhelpers"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: a default argument of a smoke helper is fine
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                for const in ast.walk(node):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str) and \
                            const.value in ("kn_smoke", "bn_smoke"):
                        offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"module constants naming smoke datasets: {offenders}"
