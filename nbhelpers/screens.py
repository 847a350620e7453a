"""A suite run's executed notebooks as a person sees them: rendered to HTML (nbconvert, the lab template, folded code
folded) and opened in headless Chromium, where every image must load, every audio element must have a source the
browser can play, and no element may show an error. Writes ``<run>/html/<notebook>.html``, a screenshot of each
notebook's first screen ``<run>/screens/<notebook>.png`` and the findings ``<run>/screens/check.json``.

``python -m nbhelpers.screens runs/<time>-smoke`` (main stack; needs Debian's ``chromium``, which ``make setup``
installs); ``tests/suite/test_student_view.py`` runs the same check on its smoke run."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")
# Runs in the page after load: checks images, audio sources and error outputs, writes the findings into the DOM.
PROBE = """
<script>
window.addEventListener('load', () => {
  const problems = [];
  let remote = 0;  // badges from colab.research.google.com / kaggle.com: not reachable offline, not checked
  document.querySelectorAll('img').forEach((img, i) => {
    if (/^https?:/.test(img.getAttribute('src') || '')) { remote++; return; }
    if (!img.complete || img.naturalWidth === 0) problems.push(`image ${i} did not load: ${img.src.slice(0, 80)}`);
  });
  const audios = [...document.querySelectorAll('audio')];
  let pending = audios.length;
  const done = () => {
    const out = document.createElement('pre');
    out.id = 'student-check';
    out.textContent = JSON.stringify({images: document.images.length - remote, remote_images: remote, audio: audios.length,
                                     problems});
    document.body.appendChild(out);
  };
  document.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"], .output_error')
    .forEach((el, i) => { if (/Traceback|Error/.test(el.textContent)) problems.push(`error output ${i}`); });
  if (!pending) return done();
  audios.forEach((a, i) => {
    const src = a.currentSrc || (a.querySelector('source') || {}).src || a.src || '';
    const type = (a.querySelector('source') || {}).type || (src.match(/^data:([^;]+)/) || [])[1] || '';
    if (!src || (type && !a.canPlayType(type))) problems.push(`audio ${i} has no playable source (${type})`);
    const settle = (ok) => { if (!ok) problems.push(`audio ${i} failed to load`); if (--pending === 0) done(); };
    a.addEventListener('loadedmetadata', () => settle(a.duration > 0), {once: true});
    a.addEventListener('error', () => settle(false), {once: true});
    a.preload = 'metadata';
    a.load();
  });
});
</script>
"""


def render(notebook: Path, out: Path) -> Path:
    """``notebook`` as a standalone HTML page (images and audio embedded as data URIs) with :data:`PROBE`."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    book = nbformat.read(notebook, as_version=4)
    for cell in book.cells:  # folded code stays folded, as JupyterLab shows it
        if cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"):
            cell.metadata.setdefault("tags", []).append("student-folded")
    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"student-folded"}, enabled=True), True)
    body, _ = exporter.from_notebook_node(book)
    page = out / f"{notebook.stem}.html"
    page.write_text(body.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return page


class ChromiumMissing(RuntimeError):
    """No Chromium to open the pages with; the message names the fix."""


def chromium_path() -> str:
    """Debian's Chromium (``chromium`` or ``chromium-browser`` on PATH), or :class:`ChromiumMissing` naming the fix."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise ChromiumMissing("headless Chromium is needed to open the rendered notebooks and was not found on PATH: "
                              "run `make setup` (installs Debian's chromium) or `apt-get install -y chromium`")
    return exe


def chromium(*args: str) -> str:
    """Run headless Chromium with a fresh profile folder; returns its stdout."""
    exe = chromium_path()
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=300)
    return done.stdout


def check_run(run: Path) -> dict[str, dict]:
    """Render, probe and screenshot every executed notebook of ``run``; returns the findings per notebook."""
    chromium_path()
    html_dir, screens = run / "html", run / "screens"
    html_dir.mkdir(exist_ok=True)
    screens.mkdir(exist_ok=True)
    findings = {}
    notebooks = sorted((run / "executed").glob("[0-9][0-9]_*.ipynb"))
    for n, notebook in enumerate(notebooks, 1):
        print(f"[{n}/{len(notebooks)}] {notebook.stem}: rendering and opening in headless Chromium", flush=True)
        page = render(notebook, html_dir)
        dom = chromium("--virtual-time-budget=20000", "--dump-dom", page.as_uri())
        marker = dom.split('<pre id="student-check">', 1)[-1].split("</pre>", 1)[0] if "student-check" in dom else ""
        try:
            result = json.loads(marker.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                                .replace("&gt;", ">"))
        except json.JSONDecodeError:
            result = {"problems": ["the page's check did not finish"]}
        chromium("--window-size=1280,900", f"--screenshot={screens / (notebook.stem + '.png')}", page.as_uri())
        findings[notebook.stem] = result
    tmp = screens / "check.json.tmp"
    tmp.write_text(json.dumps(findings, indent=1), encoding="utf-8")
    tmp.replace(screens / "check.json")
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbhelpers.screens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a suite run folder (with executed/)")
    try:
        findings = check_run(parser.parse_args(argv).run.resolve())
    except ChromiumMissing as err:
        print(err, file=sys.stderr)
        return 2
    bad = {k: v["problems"] for k, v in findings.items() if v.get("problems")}
    for stem, result in findings.items():
        print(f"{stem}: {result.get('images', '?')} images, {result.get('audio', '?')} audio, "
              f"{len(result.get('problems', []))} problem(s)")
    for stem, problems in bad.items():
        print(f"{stem}:\n  " + "\n  ".join(problems))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
