"""Download and unpack corpora (GPU profiles on Kaggle/Colab, which have internet): OpenSLR resources and any
archive URL (LJ Speech's tarball). Resumable: a finished archive is kept until unpacked and a finished unpack is
marked, so a restarted session does not fetch again. Zip and tar (gz, bz2, xz) archives."""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

# Where resources are fetched from: <base>/<n>/<file>. $TTS_OPENSLR_BASE_URL points at a mirror (OpenSLR lists
# several, e.g. https://us.openslr.org/resources or https://openslr.elda.org/resources) or a local copy.
OPENSLR_BASE_URL = "https://www.openslr.org/resources"
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")


def openslr_url(number: str, name: str) -> str:
    """The download URL of archive ``name`` of resource ``number`` ($TTS_OPENSLR_BASE_URL or the main site)."""
    base = os.environ.get("TTS_OPENSLR_BASE_URL") or OPENSLR_BASE_URL
    return f"{base.rstrip('/')}/{number}/{name}"
# Archive names per resource (each unpacks to a folder with line_index.tsv and wavs/).
OPENSLR_FILES = {
    "79": ["kn_in_female.zip", "kn_in_male.zip"],  # Kannada, CC BY-SA 4.0
    "37": ["bn_bd.zip", "bn_in.zip"],  # Bangla (Bangladesh, India), CC BY-SA 4.0
    "60": ["train-clean-100.tar.gz"],  # LibriTTS (English, 247 speakers, 53.8 h), CC BY 4.0
}


def _stem(name: str) -> str:
    """An archive's name without its archive suffix (``train-clean-100.tar.gz`` -> ``train-clean-100``)."""
    return next((name[: -len(s)] for s in (".zip", *TAR_SUFFIXES) if name.endswith(s)), name)


def fetch_and_unpack(url: str, root: Path, name: str) -> Path:
    """Download ``url`` as ``root/name`` (into a ``.part`` file, renamed when complete) and unpack it into
    ``root/<stem>/``; a marker skips both next time, and the archive is deleted once unpacked (it would count twice
    against the disk). Returns the unpacked folder."""
    done, target = root / f".{name}.unpacked", root / _stem(name)
    if done.is_file():
        return target
    archive = root / name
    if not archive.is_file():
        part = archive.with_name(name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, part.open("wb") as out:
                total = int(resp.headers.get("Content-Length") or 0)
                with tqdm(total=total, unit="B", unit_scale=True, desc=name) as bar:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
        except OSError as err:
            raise RuntimeError(f"could not download {url} ({err}). Without internet, download it elsewhere, "
                               f"unpack it and point the profile's source at the folder.") from err
        part.replace(archive)
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
    elif name.endswith(TAR_SUFFIXES):
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")  # no absolute paths, links out of the folder or devices
    else:
        raise ValueError(f"{url}: not a .zip or .tar(.gz/.bz2/.xz) archive, so it cannot be unpacked")
    done.touch()
    archive.unlink()
    return target


def download_url(url: str, dest: str | Path) -> Path:
    """Fetch and unpack the archive at ``url`` into ``dest/url_<hash>/``; returns the folder it unpacked to, or the
    single folder inside it (LJ Speech's ``LJSpeech-1.1/``), where a reader finds the corpus."""
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    root = Path(dest) / f"url_{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    root.mkdir(parents=True, exist_ok=True)
    target = fetch_and_unpack(url, root, name)
    inside = [p for p in target.iterdir() if not p.name.startswith(".")]
    return inside[0] if len(inside) == 1 and inside[0].is_dir() else target


def download_openslr(spec: str, dest: str | Path) -> Path:
    """Fetch OpenSLR resource ``spec`` ("79", or "79:file1.zip,file2.zip") into ``dest/openslr_<n>/``."""
    number, _, files = spec.partition(":")
    names = files.split(",") if files else OPENSLR_FILES.get(number)
    if not names:
        raise ValueError(f"openslr:{number}: archive names unknown; write them out, e.g. openslr:{number}:a.zip,b.zip")
    root = Path(dest) / f"openslr_{number}"
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        fetch_and_unpack(openslr_url(number, name), root, name)
    return root
