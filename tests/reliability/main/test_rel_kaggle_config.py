"""kernels.toml is checked as a whole when it is read: a string where a list belongs, a session cap of 0, an
unknown machine shape, unknown keys and wrong types are each named (file, table, key) with the fix, in one
error, before anything is built or sent; and the continuation hint of a capped chain keeps --test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

KAGGLE_TESTS = Path(__file__).resolve().parents[2] / "kaggle"
_spec = importlib.util.spec_from_file_location("kaggle_test_fixtures_cfg", KAGGLE_TESTS / "conftest.py")
kfx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kfx)
cli, fake, home, project = kfx.cli, kfx.fake, kfx.home, kfx.project  # the kaggle tests' fixtures, reused

from kaggle_kernels.config import DEFAULT_CONFIG, ConfigError, load_config  # noqa: E402

K02 = "alice/tts-suite-test-02-parler-finetune"

# (edit of the fixture config, what the error must say)
BAD = {
    "string_sources": (('enable_gpu = false\n', 'enable_gpu = false\ndataset_sources = "alice/extra-data"\n'),
                       ['[kernels.01_data_prep] dataset_sources = "alice/extra-data": expected a list of '
                        "'owner/dataset' strings; write dataset_sources = [\"alice/extra-data\"]"]),
    "zero_sessions": (("max_sessions = 5", "max_sessions = 0"),
                      ["[suite] max_sessions = 0: expected a whole number of sessions >= 1"]),
    "machine_shape": (('machine_shape = "NvidiaTeslaT4"', 'machine_shape = "T4x2"'),
                      ['[suite] machine_shape = "T4x2": expected one of "NvidiaTeslaT4", "NvidiaTeslaP100"']),
    "kernel_machine_shape": (("chain = true", 'chain = true\nmachine_shape = "NvidiaTeslaA100"'),
                             ['[kernels.02_parler_finetune] machine_shape = "NvidiaTeslaA100": expected one of']),
    "unknown_key": (("chain = true", "chain = true\nmax_session = 3"),
                    ["[kernels.02_parler_finetune] has an unknown key 'max_session': did you mean 'max_sessions'?"]),
    "quoted_bool": (("enable_gpu = false", 'enable_gpu = "false"'),
                    ['[kernels.01_data_prep] enable_gpu = "false": expected true or false (no quotes)']),
    "quoted_number": (("max_sessions = 5", 'max_sessions = "5"'),
                      ['[suite] max_sessions = "5": expected a whole number of sessions >= 1']),
    "float_sessions": (("max_sessions = 5", "max_sessions = 2.5"), ["[suite] max_sessions = 2.5: expected a whole"]),
    "after_string": (('after = ["01_data_prep"]', 'after = "01_data_prep"'),
                     ['[kernels.02_parler_finetune] after = "01_data_prep": expected a list of kernel keys']),
    "after_unknown": (('after = ["01_data_prep"]', 'after = ["01_data_prepp"]'),
                      ["[kernels.02_parler_finetune] after names '01_data_prepp', which is not a kernel"]),
    "parameters_string": (("parameters = { max_steps = 100 }", 'parameters = "max_steps=100"'),
                          ["[kernels.02_parler_finetune] parameters = \"max_steps=100\": expected a table"]),
    "bad_kernel_ref": (("chain = true", 'chain = true\nkernel_sources = ["just-a-slug"]'),
                       ["kernel_sources = [\"just-a-slug\"]: expected a list of 'owner/kernel'"]),
    "missing_notebook": (('notebook = "{nb}/01_data_prep.ipynb"\nenable_gpu', "enable_gpu"),
                         ["[kernels.01_data_prep] is missing 'notebook'"]),
    "resume_via": (('resume_via = "auto"', 'resume_via = "checkpoint"'),
                   ['[suite] resume_via = "checkpoint": expected one of "auto", "kernel", "dataset"']),
}


def _edit(project: Path, old: str, new: str) -> None:
    text = project.read_text()
    old, new = old.replace("{nb}", str(project.parent / "notebooks")), new.replace("{nb}", str(project.parent / "notebooks"))
    assert old in text, old
    project.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_value_is_named_with_file_table_key_and_fix(project, case):
    (old, new), expected = BAD[case]
    _edit(project, old, new)
    with pytest.raises(ConfigError) as err:
        load_config(project, owner="alice")
    message = str(err.value)
    assert message.startswith(f"{project}: 1 problem(s)"), message
    for part in expected:
        assert part in message, message


def test_every_problem_is_reported_at_once_through_the_cli(cli, fake, project):
    _edit(project, 'enable_gpu = false\n', 'enable_gpu = false\ndataset_sources = "alice/extra"\n')
    _edit(project, "chain = true", "chain = true\nmax_sessions = 0\nmachine_shape = \"TPU\"")
    # the broken entries are not even the ones pushed: the file is checked whole, once, when it is read
    done = cli("push", "09_bad_sources")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{project}: 3 problem(s)" in done.stderr
    for key in ("[kernels.01_data_prep] dataset_sources", "[kernels.02_parler_finetune] max_sessions = 0",
                '[kernels.02_parler_finetune] machine_shape = "TPU"'):
        assert key in done.stderr
    assert fake.requests == []


def test_shipped_config_is_valid():
    cfg = load_config(DEFAULT_CONFIG, owner="alice")
    assert all(cfg.kernel(k).max_sessions >= 1 for k in cfg.keys())


def test_continuation_hint_keeps_the_kernel_selection(cli, fake, project):
    """A chain stopped by its session cap prints a command that addresses the same (test) kernels."""
    def output(ref: str, version: int, body: dict) -> tuple[dict[str, bytes], str]:
        stage = "01_data_prep" if ref.endswith("01-data-prep") else "02_parler_finetune"
        status = "done" if stage == "01_data_prep" else "resume_needed"
        return {"run_log.jsonl": f'{{"stage": "{stage}", "status": "{status}"}}\n'.encode()}, ""
    fake.output_fn = output
    stopped = cli("run", "01_data_prep", "02_parler_finetune", "--max-sessions", "1")
    assert stopped.returncode == 3, stopped.stderr
    hint = stopped.stderr.split("continue with `", 1)[1].split("`", 1)[0]
    assert hint.startswith("python -m kaggle_kernels run 02_parler_finetune --resume-from-version 1")
    assert "--test" in hint.split() and f"--config {project}" in hint and "--owner alice" in hint
    # the printed command, run as printed, continues the test kernel (not the real one)
    args = hint.split()[3:]
    for opt in ("--test", "--config"):  # the fixture runner adds these itself
        i = args.index(opt)
        del args[i:i + (2 if opt == "--config" else 1)]
    fake.output_fn = lambda ref, version, body: (
        {"run_log.jsonl": b'{"stage": "02_parler_finetune", "status": "done"}\n'}, "")
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert len(fake.kernels[K02]) == 2 and fake.kernels[K02][1]["kernelDataSources"][-1] == f"{K02}/1"
    assert not [k for k in fake.kernels if "-test-" not in k and not k.endswith("code")]
