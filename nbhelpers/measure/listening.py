"""Listening-test kit: a static, blind, randomised HTML page (audio + 1-5 rating form that downloads a CSV)
and the aggregation of returned CSVs into MOS with 95 % confidence intervals per system."""

from __future__ import annotations

import csv
import html
import json
import math
import random
import shutil
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CSV_FIELDS = ("rater", "item", "rating")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Listening test</title>
<style>body{{font-family:sans-serif;max-width:780px;margin:2em auto}} .item{{border:1px solid #ccc;padding:.6em;
margin:.6em 0;border-radius:6px}} label{{margin-right:1em}}</style></head><body>
<h1>Listening test</h1>
<p>Rate how natural each clip sounds, from 1 (bad) to 5 (excellent). The clips are in random order and do not
say which system made them. Use headphones, play every clip, rate all of them, then press
<b>Download ratings</b> and send the CSV file back.</p>
<p><label>Your name or id: <input id="rater" required></label></p>
<form id="form">
{items}
</form>
<button onclick="download()">Download ratings</button>
<p id="msg" style="color:#b00"></p>
<script>
const ITEMS = {ids};
function download() {{
  const rater = document.getElementById('rater').value.trim().replace(/[",\\n]/g, ' ');
  if (!rater) {{ document.getElementById('msg').textContent = 'Please enter your name or id.'; return; }}
  const rows = ['rater,item,rating'];
  const missing = [];
  for (const id of ITEMS) {{
    const c = document.querySelector('input[name="' + id + '"]:checked');
    if (!c) {{ missing.push(id); continue; }}
    rows.push(rater + ',' + id + ',' + c.value);
  }}
  if (missing.length) {{ document.getElementById('msg').textContent = 'Not rated yet: ' + missing.join(', '); return; }}
  const blob = new Blob([rows.join('\\n') + '\\n'], {{type: 'text/csv'}});
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'ratings_' + rater + '.csv';
  a.click();
  document.getElementById('msg').textContent = '';
}}
</script></body></html>
"""


def kit_items(gallery: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One clip per (system, language, text) from a benchmark gallery: the first backend measured of each
    system, so raters judge systems, not the same model's backends over and over."""
    seen, items = set(), []
    for g in gallery:
        key = (g["system"], g.get("language", ""), g["text"])
        if key not in seen:
            seen.add(key)
            items.append({"system": g["system"], "path": g["path"], "text": g["text"]})
    return items


def make_kit(items: Iterable[dict[str, Any]], out_dir: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Write ``index.html`` + ``audio/item_NNN.wav`` (anonymous, shuffled with ``seed``) and ``key.json``
    (item -> system, text, source file; keep it away from raters). ``items``: dicts with system, path, text."""
    items = [dict(i) for i in items]
    if not items:
        raise ValueError("the listening kit needs at least one audio item")
    for i in items:
        if not Path(i["path"]).is_file():
            raise FileNotFoundError(f"listening kit: audio {i['path']} of system {i['system']} is missing")
    random.Random(seed).shuffle(items)
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir / "audio", ignore_errors=True)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    key, blocks = {}, []
    for n, item in enumerate(items, 1):
        item_id = f"item_{n:03d}"
        name = f"{item_id}{Path(item['path']).suffix}"
        shutil.copyfile(item["path"], out_dir / "audio" / name)
        key[item_id] = {"system": item["system"], "text": item.get("text", ""), "source": str(item["path"])}
        radios = "".join(f'<label><input type="radio" name="{item_id}" value="{v}">{v}</label>' for v in range(1, 6))
        blocks.append(f'<div class="item"><b>{item_id}</b><br><audio controls preload="none" '
                      f'src="audio/{html.escape(name)}"></audio><br>{radios}</div>')
    page = out_dir / "index.html"
    page.write_text(_PAGE.format(items="\n".join(blocks), ids=json.dumps(list(key))), encoding="utf-8")
    key_path = out_dir / "key.json"
    key_path.write_text(json.dumps({"seed": seed, "items": key}, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"page": page, "key": key_path, "audio": out_dir / "audio"}


def read_ratings(paths: Iterable[str | Path], key: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of returned CSVs joined with the key; a bad row raises naming file, line and the fix. A rater's
    repeated rating of one item keeps the last one."""
    items = key["items"]
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        path = Path(path)
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or set(CSV_FIELDS) - set(reader.fieldnames):
                raise ValueError(f"{path}: header must contain {','.join(CSV_FIELDS)} (got {reader.fieldnames}); "
                                 "return the file the listening page downloaded, unedited")
            for line, row in enumerate(reader, 2):
                item, rating = (row.get("item") or "").strip(), (row.get("rating") or "").strip()
                if item not in items:
                    raise ValueError(f"{path}:{line}: unknown item {item!r}: this CSV belongs to another kit "
                                     "(check key.json)")
                if rating not in {"1", "2", "3", "4", "5"}:
                    raise ValueError(f"{path}:{line}: rating {rating!r} is not an integer from 1 to 5")
                rater = (row.get("rater") or "").strip() or path.stem
                latest[(rater, item)] = {"rater": rater, "item": item, "rating": int(rating),
                                         "system": items[item]["system"]}
    return list(latest.values())


def mos_ci(ratings: list[int], confidence: float = 0.95) -> dict[str, float | int | None]:
    """Mean opinion score with a Student-t confidence interval (half-width None for fewer than 2 ratings)."""
    from scipy import stats

    n = len(ratings)
    if n == 0:
        raise ValueError("no ratings")
    mean = sum(ratings) / n
    if n < 2:
        return {"mos": mean, "n": n, "std": None, "ci95": None, "low": None, "high": None}
    std = math.sqrt(sum((r - mean) ** 2 for r in ratings) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"mos": mean, "n": n, "std": std, "ci95": half, "low": mean - half, "high": mean + half}


def aggregate(csv_paths: Iterable[str | Path], key_path: str | Path) -> dict[str, dict[str, Any]]:
    """MOS and 95 % CI per system from returned rating CSVs and the kit's key.json."""
    key = json.loads(Path(key_path).read_text(encoding="utf-8"))
    by_system: dict[str, list[int]] = defaultdict(list)
    for row in read_ratings(csv_paths, key):
        by_system[row["system"]].append(row["rating"])
    return {system: mos_ci(r) for system, r in sorted(by_system.items())}
