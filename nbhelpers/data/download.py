"""Download and unpack OpenSLR resources (GPU profiles on Kaggle/Colab, which have internet). Resumable: a
finished archive is kept and a finished unpack is marked, so a restarted session does not fetch again."""

from __future__ import annotations

import os
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

# Where resources are fetched from: <base>/<n>/<file>. $TTS_OPENSLR_BASE_URL points at a mirror (OpenSLR lists
# several, e.g. https://us.openslr.org/resources or https://openslr.elda.org/resources) or a local copy.
OPENSLR_BASE_URL = "https://www.openslr.org/resources"


def openslr_url(number: str, name: str) -> str:
    """The download URL of archive ``name`` of resource ``number`` ($TTS_OPENSLR_BASE_URL or the main site)."""
    base = os.environ.get("TTS_OPENSLR_BASE_URL") or OPENSLR_BASE_URL
    return f"{base.rstrip('/')}/{number}/{name}"
# Archive names per resource (each unpacks to a folder with line_index.tsv and wavs/).
OPENSLR_FILES = {
    "79": ["kn_in_female.zip", "kn_in_male.zip"],  # Kannada, CC BY-SA 4.0
    "37": ["bn_bd.zip", "bn_in.zip"],  # Bangla (Bangladesh, India), CC BY-SA 4.0
}


def download_openslr(spec: str, dest: str | Path) -> Path:
    """Fetch OpenSLR resource ``spec`` ("79", or "79:file1.zip,file2.zip") into ``dest/openslr_<n>/``."""
    number, _, files = spec.partition(":")
    names = files.split(",") if files else OPENSLR_FILES.get(number)
    if not names:
        raise ValueError(f"openslr:{number}: archive names unknown; write them out, e.g. openslr:{number}:a.zip,b.zip")
    root = Path(dest) / f"openslr_{number}"
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        done = root / f".{name}.unpacked"
        if done.is_file():
            continue
        archive = root / name
        if not archive.is_file():
            url = openslr_url(number, name)
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
                                   f"unzip it and point the profile's source at the folder.") from err
            part.replace(archive)
        with zipfile.ZipFile(archive) as z:
            z.extractall(root / name.removesuffix(".zip"))
        done.touch()
        archive.unlink()  # the unpacked copy is what we read; keeps the workspace under Kaggle's 20 GB
    return root

