"""Secrets never reach Kaggle: a token or key hard-coded in a notebook cell, baked in as an innocently named
parameter, or lying in a packaged file is refused by `python -m kaggle_kernels push/run` with the file, the cell
(or line) and a redacted excerpt, before any request reaches the (fake) Kaggle API, and never printed."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import nbformat
import pytest

KAGGLE_TESTS = Path(__file__).resolve().parents[2] / "kaggle"
_spec = importlib.util.spec_from_file_location("kaggle_test_fixtures", KAGGLE_TESTS / "conftest.py")
kfx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kfx)
cli, fake, home, project = kfx.cli, kfx.fake, kfx.home, kfx.project  # the kaggle tests' fixtures, reused

from kaggle_kernels.scan import scan_bytes, scan_folder  # noqa: E402

HF = "hf_" + "Zq8" * 11 + "x"  # token-shaped (hf_ + 34 letters/digits), built so no literal token is in the file
HEX = "0123456789abcdef" * 2  # a 32-hex Kaggle API key shape
KGAT = "KGAT_" + "a1B2" * 8


def _add_cell(notebook: Path, cell) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(cell)
    nbformat.write(nb, notebook)


def _nothing_sent(fake, *results) -> None:
    assert fake.requests == [] and fake.calls == [] and fake.kernels == {} and fake.blobs == {}
    for r in results:
        for secret in (HF, HEX, KGAT):
            assert secret not in r.stdout + r.stderr  # redacted, never printed


def _no_copy_left(out: Path) -> None:
    for path in (p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(s.encode() in data for s in (HF, HEX, KGAT)), path


@pytest.mark.parametrize("command", ["push", "run"])
def test_token_in_a_code_cell_is_refused_before_any_request(cli, fake, project, command):
    nb = project.parent / "notebooks" / "01_data_prep.ipynb"
    _add_cell(nb, nbformat.v4.new_code_cell(f'import os\nos.environ["HF_TOKEN"] = "{HF}"  # quick test'))
    done = cli(command, "01_data_prep")
    assert done.returncode == 1, done.stderr
    assert f"{nb} cell 5 (code source, line 2): Hugging Face token" in done.stderr  # numbered as the user sees it
    assert 'os.environ["HF_TOKEN"] = "hf_***"  # quick test' in done.stderr  # the redacted excerpt
    assert "Kaggle Secrets" in done.stderr and "Traceback" not in done.stderr
    _nothing_sent(fake, done)
    _no_copy_left(cli.out)


def test_key_in_a_markdown_cell_of_a_later_stage_stops_the_whole_run(cli, fake, project):
    nb = project.parent / "notebooks" / "02_parler_finetune.ipynb"
    _add_cell(nb, nbformat.v4.new_markdown_cell(f"My key for later: {HEX}"))
    done = cli("run", "01_data_prep", "02_parler_finetune")  # stage 01 is clean, but nothing may start
    assert done.returncode == 1
    assert "cell 5 (markdown source, line 1): Kaggle API key (32 hex digits)" in done.stderr
    assert "My key for later: <Kaggle API key (32 hex digits)>" in done.stderr
    _nothing_sent(fake, done)


@pytest.mark.parametrize("how", ["-p", "config"])
def test_token_valued_parameter_under_an_innocent_name_is_refused(cli, fake, project, how):
    if how == "config":
        project.write_text(project.read_text().replace("parameters = { max_steps = 100 }",
                                                       f'parameters = {{ max_steps = 100, note = "{KGAT}" }}'))
        done = cli("push", "02_parler_finetune")
    else:
        done = cli("push", "02_parler_finetune", "-p", f"note={HF}")
    assert done.returncode == 1
    assert "parameter 'note' looks like a credential (its value holds a " in done.stderr
    assert "token: " + ("KGAT_***" if how == "config" else "hf_***") in done.stderr
    _nothing_sent(fake, done)


def test_secret_in_a_packaged_file_is_refused_before_upload(cli, fake, tmp_path):
    suite = tmp_path / "suite"
    shutil.copytree(Path(__file__).resolve().parents[3] / "nbhelpers", suite / "nbhelpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("requirements.txt", "requirements-parler.txt", "requirements-kernel.txt"):
        (suite / name).write_text("tqdm\n")
    (suite / "nbhelpers" / "local_settings.py").write_text(f'KAGGLE = "{KGAT}"\n')
    done = cli("push", "01_data_prep", "--suite-root", str(suite))
    assert done.returncode == 1
    assert "tts_suite.zip:nbhelpers/local_settings.py line 1: Kaggle API token" in done.stderr
    assert 'KAGGLE = "KGAT_***"' in done.stderr
    _nothing_sent(fake, done)
    _no_copy_left(cli.out)


def test_scanner_reads_outputs_metadata_and_bundled_files(tmp_path):
    """Outputs and metadata of a notebook, kernel-metadata.json and any other file in a pushed folder."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(key)", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text=f"the key is {HEX}\n")])]
    found = scan_bytes("k.ipynb", nbformat.writes(nb).encode())
    assert [(f.where, f.kind) for f in found] == [("cell 1 (code output 1)", "Kaggle API key (32 hex digits)")]
    folder = tmp_path / "kernel"
    folder.mkdir()
    (folder / "kernel-metadata.json").write_text(json.dumps({"id": "a/b", "dataset_sources": [f"a/{HEX}"]}))
    (folder / "helper.py").write_text(f"x = 1\nTOKEN = '{HF}'\n")
    (folder / "weights.bin").write_bytes(b"\0" * 100 + HEX.encode())  # binary: not text that Kaggle shows
    got = {(f.file, f.where) for f in scan_folder(folder)}
    assert got == {("kernel-metadata.json", "line 1"), ("helper.py", "line 2")}
    assert all(HF not in str(f) and HEX not in str(f) for f in scan_folder(folder))


def test_hashes_and_ordinary_names_are_not_secrets():
    text = ("sha256 " + "ab" * 32 + " commit " + "c" * 40 + " from transformers.utils import logging as hf_logging "
            "hf_hub_download(repo) uuid 123e4567-e89b-12d3-a456-426614174000")
    assert scan_bytes("x.py", text.encode()) == []
