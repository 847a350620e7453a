"""Stage 04's espeak-ng Bangla corpus (tests/vits/conftest.py's ``make_corpus``, loaded by path: conftest module
names collide across test folders) at <workspace>/data/bn_smoke, the export stage 08 trains on."""

import importlib.util
import shutil
from pathlib import Path

import pytest

# coqui's trainer binds its log handler to sys.stderr when first imported: imported here (at collection) that is
# never a test's capsys stream, which is closed by the time a later test trains
import trainer.logger  # noqa: F401, E402


def _make_corpus():
    spec = importlib.util.spec_from_file_location("vits_fixtures", Path(__file__).parents[1] / "vits" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_corpus


@pytest.fixture(scope="session")
def baselines_corpus(tmp_path_factory) -> Path:
    return _make_corpus()(tmp_path_factory.mktemp("bn") / "bn_smoke").parent


@pytest.fixture
def bn_export(baselines_corpus, isolated_workspace) -> Path:
    """A fresh copy at <workspace>/data/bn_smoke (a test may damage it); returns its ljspeech/ folder."""
    dest = Path(isolated_workspace) / "data" / "bn_smoke"
    shutil.copytree(baselines_corpus, dest)
    return dest / "ljspeech"
