"""OpenSLR download + unpack + read, against a local HTTP server standing in for openslr.org."""

import functools
import http.server
import threading
import zipfile

from nbhelpers.data import download
from nbhelpers.data.sources import read_source


def test_download_unpack_and_read(tmp_path, make_speech, write_audio, monkeypatch):
    served = tmp_path / "served" / "79"
    for part, spk in (("kn_in_female", "knf_00118"), ("kn_in_male", "knm_00200")):
        wav = write_audio(tmp_path / "build" / part / "wavs" / f"{spk}_0001.wav", make_speech(), 48000)
        served.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(served / f"{part}.zip", "w") as z:
            z.write(wav, f"wavs/{wav.name}")
            z.writestr("line_index.tsv", f"{spk}_0001\tನಮಸ್ಕಾರ, ಇಂದು ಮಳೆ.\n")
            z.writestr("LICENSE", "CC BY-SA 4.0")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TTS_OPENSLR_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/")
        root = download.download_openslr("79", tmp_path / "sources")
        utts = read_source(root, "kn")
        assert {(u.speaker, u.gender) for u in utts} == {("knf_00118", "female"), ("knm_00200", "male")}
        assert all(u.problem is None for u in utts)
        server.shutdown()  # a second call must not need the network: the unpack is marked done
        assert download.download_openslr("79", tmp_path / "sources") == root
    finally:
        server.shutdown()
        server.server_close()


def test_base_url_setting(monkeypatch):
    monkeypatch.delenv("TTS_OPENSLR_BASE_URL", raising=False)
    assert download.openslr_url("79", "kn_in_male.zip") == "https://www.openslr.org/resources/79/kn_in_male.zip"
    monkeypatch.setenv("TTS_OPENSLR_BASE_URL", "https://us.openslr.org/resources/")
    assert download.openslr_url("37", "bn_bd.zip") == "https://us.openslr.org/resources/37/bn_bd.zip"


def test_url_source_fetches_and_unpacks_a_tarball_once(tmp_path, make_speech, write_audio):
    """``url:`` sources (LJ Speech's LJSpeech-1.1.tar.bz2): downloaded and unpacked once, the single top folder is
    what the reader gets, and a second call needs no network."""
    import tarfile

    from nbhelpers.data import resolve_source
    from nbhelpers.paths import Workspace

    build = tmp_path / "build" / "LJSpeech-1.1"
    write_audio(build / "wavs" / "LJ001-0001.wav", make_speech(), 22050)
    (build / "metadata.csv").write_text("LJ001-0001|Printing, in the only sense.|Printing, in the only sense.\n",
                                        encoding="utf-8")
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "LJSpeech-1.1.tar.bz2", "w:bz2") as tar:
        tar.add(build, arcname="LJSpeech-1.1")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"url:http://127.0.0.1:{server.server_address[1]}/LJSpeech-1.1.tar.bz2"
    try:
        root, fmt = resolve_source(url, "en", Workspace(tmp_path / "ws"), format="ljspeech",
                                   sources_dir=tmp_path / "sources")
        assert root.endswith("LJSpeech-1.1") and fmt == "ljspeech"
        utts = read_source(root, "en", format=fmt)
        assert [(u.id, u.text, u.problem) for u in utts] == [("LJ001-0001", "Printing, in the only sense.", None)]
        assert not list((tmp_path / "sources").rglob("*.tar.bz2"))  # the archive is gone once unpacked
        server.shutdown()
        assert resolve_source(url, "en", Workspace(tmp_path / "ws"), format="ljspeech",
                              sources_dir=tmp_path / "sources")[0] == root
    finally:
        server.shutdown()
        server.server_close()
