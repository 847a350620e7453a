"""The OpenSLR stand-in: the real downloader fetches its archives from the loopback server named by
$TTS_OPENSLR_BASE_URL, and the real reader parses them (speaker-coded ids, both layouts, 48 kHz audio)."""

import re
import urllib.request

import pytest
import soundfile as sf

from nbhelpers.data.corpus import SENTENCES
from nbhelpers.data.download import download_openslr
from nbhelpers.data.sources import read_source
from nbhelpers.rehearsal import openslr

ID = re.compile(r"^(kn|bn)[fm]_\d{5}_\d{11}$")


@pytest.fixture(scope="module")
def built(standins):
    assert openslr.build(standins) == {}
    return standins


def test_archives_download_and_read(built, tmp_path, monkeypatch):
    with openslr.serve(built) as base_url:
        monkeypatch.setenv("TTS_OPENSLR_BASE_URL", base_url)
        roots = {n: download_openslr(n, tmp_path / "sources") for n in ("79", "37")}
    assert (roots["79"] / "kn_in_female" / "line_index.tsv").is_file()  # SLR79: index and wavs at the root
    assert (roots["37"] / "bn_bd" / "bn_bd" / "wavs").is_dir()  # SLR37: one folder with line_index.tsv + wavs/
    for number, language in (("79", "kn"), ("37", "bn")):
        utts = read_source(roots[number], language)
        assert len(utts) == 2 * len(SENTENCES[language])
        assert all(u.problem is None and ID.match(u.id) and u.id.startswith(language) for u in utts)
        assert {u.gender for u in utts} == {"female", "male"}
        assert len({u.speaker for u in utts}) == 4
        info = sf.info(utts[0].audio_path)
        assert (info.samplerate, info.channels) == (48_000, 1)


def test_rebuild_is_a_no_op_and_server_stops(built):
    archive = built / "openslr" / "79" / "kn_in_male.zip"
    before = archive.stat().st_mtime_ns
    openslr.build(built)
    assert archive.stat().st_mtime_ns == before
    with openslr.serve(built) as base_url:
        with urllib.request.urlopen(f"{base_url}/79/kn_in_male.zip", timeout=10) as resp:
            assert int(resp.headers["Content-Length"]) == archive.stat().st_size
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base_url}/79/kn_in_male.zip", timeout=2)
