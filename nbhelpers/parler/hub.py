"""``push``: publish a finished stage-02 export or stage-03 student to the Hugging Face hub with a model card generated
from the stage records (data prep's: corpus, hours, licence; training's: steps, losses, evaluation metrics).

The token is the suite's ``HF_TOKEN`` (a Kaggle/Colab secret that the notebook hands to its stages, or the
environment variable); it goes to ``huggingface_hub`` only and never into the card, the push record or a printed line.
``HF_ENDPOINT`` (huggingface_hub's own setting) points the upload at another hub.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from ..paths import Workspace
from ..records import read_records, write_json

TOKEN_ENV = "HF_TOKEN"
DATA_STAGE = "01_data_prep"
PUSH_FILE = "push.json"
CARD_FILE = "README.md"
# licences of the corpora the profiles name (docs/data.md); anything else is stated as unknown on the card
DATA_LICENCES = {"openslr:79": "CC BY-SA 4.0 (OpenSLR SLR79)", "openslr:37": "CC BY-SA 4.0 (OpenSLR SLR37)",
                 "embedded:": "sentences written for this project, spoken by espeak-ng (smoke corpus)"}
USE = {
    "02_parler_finetune": ["from parler_tts import ParlerTTSForConditionalGeneration",
                           "from transformers import AutoTokenizer",
                           "model = ParlerTTSForConditionalGeneration.from_pretrained(repo_id)",
                           "prompt_tokenizer = AutoTokenizer.from_pretrained(repo_id)",
                           "description_tokenizer = AutoTokenizer.from_pretrained(repo_id, "
                           "subfolder='description_tokenizer')"],
    "03_parler_distill": ["from huggingface_hub import snapshot_download",
                          "from nbhelpers.distill.train import load_student   # its prompt tokenizer is pruned",
                          "bundle = load_student(snapshot_download(repo_id))"],
}
WHAT = {"02_parler_finetune": "Parler-TTS fine-tuned for Kannada (stage 02)",
        "03_parler_distill": "Parler-TTS student distilled for Kannada (stage 03)"}
OUTPUT_KEY = {"02_parler_finetune": "export", "03_parler_distill": "student"}


class PushError(RuntimeError):
    """Pushing cannot start: no token, no finished model; the message says how to fix it."""


def hub_token() -> str:
    """The Hugging Face write token from ``HF_TOKEN``; a clear error naming how to set it when it is missing."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise PushError(f"no Hugging Face token: pushing needs a token with write access "
                        f"(https://huggingface.co/settings/tokens) in {TOKEN_ENV}. Kaggle: Add-ons > Secrets > "
                        f"{TOKEN_ENV}, attached to the notebook; Colab: the key icon > Secrets > {TOKEN_ENV}, notebook "
                        f"access on (the notebook's set-up cell hands it to the stages); a terminal: "
                        f"export {TOKEN_ENV}=<token>. Nothing was uploaded.")
    return token


def finished_run(stage: str, workspace: Workspace, run: str | None = None) -> dict[str, Any]:
    """The newest ``done`` record of ``stage`` (of run folder ``run`` when given) whose model folder exists."""
    key = OUTPUT_KEY[stage]
    for record in reversed(read_records(workspace, stage)):
        folder = record.get("outputs", {}).get(key)
        if record.get("status") != "done" or not folder or not Path(folder).is_dir():
            continue
        if run is None or Path(record["outputs"].get("run_dir", Path(folder).parent)).name == run:
            return record
    which = f" (run {run!r})" if run else ""
    raise PushError(f"no finished {stage} model{which} in {workspace.root}: run the stage to the end first "
                    f"(its record must say status done and list its {key!r} folder)")


def data_rows(dataset: str, workspace: Workspace) -> list[dict[str, Any]]:
    """Corpus, source, utterances, hours and licence of ``dataset`` from the newest data-prep record naming it."""
    name = Path(dataset).parent.name if Path(dataset).name == "parler" else Path(dataset).name
    for record in reversed(read_records(workspace, DATA_STAGE)):
        if record.get("status") == "done" and name in record.get("inputs", {}):
            source = str(record["inputs"][name])
            m = record.get("metrics", {})
            resource = ":".join(source.split(":")[:2])  # openslr:37:bn_bd.zip -> openslr:37; embedded:kn -> itself
            licence = next((v for k, v in DATA_LICENCES.items() if resource == k or (k.endswith(":")
                                                                                      and source.startswith(k))),
                           "unknown: check the corpus's own licence before publishing")
            minutes = m.get(f"{name}_minutes")
            return [{"dataset": name, "source": source, "utterances": m.get(f"{name}_kept"),
                     "hours": round(minutes / 60, 3) if minutes is not None else None, "licence": licence}]
    return [{"dataset": dataset, "source": "not prepared in this workspace (no data-prep record)",
             "utterances": None, "hours": None, "licence": "unknown: check the data's own licence before publishing"}]


def _metric_lines(metrics: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [f"- {k}: {_fmt(metrics[k])}" for k in keys if metrics.get(k) is not None]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(stage: str, record: dict[str, Any], workspace: Workspace, *, licence: str, repo_id: str) -> str:
    """The hub README: YAML metadata, data (from data prep's record), training and evaluation (from the stage's
    record), how to load it. Figures judged "not meaningful here" are written as that sentence, not a number."""
    m, inputs = record.get("metrics", {}), record.get("inputs", {})
    data = data_rows(str(inputs.get("dataset", "")), workspace)
    base = str(inputs.get("model") or inputs.get("teacher") or "")
    smoke = record.get("profile") == "smoke" or base == "tiny"
    lines = ["---", "language: kn", f"license: {licence}", "library_name: parler-tts", "pipeline_tag: text-to-speech",
             "tags: [text-to-speech, parler-tts, kannada]", "---", "", f"# {WHAT[stage]}", ""]
    if smoke:
        lines += ["**Smoke run: a tiny model with random initial weights, trained for a few steps. It shows that the "
                  "pipeline works; its audio is noise, not speech.**", ""]
    lines += [f"- Base / teacher: `{base}`; profile `{record.get('profile')}`; run `{record.get('run_id')}` "
              f"({record.get('time')}).", "", "## Data", "", "| dataset | source | utterances | hours | licence |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['source']} | {_fmt(r['utterances'])} | {_fmt(r['hours'])} | {r['licence']} |"
              for r in data]
    lines += ["", "## Training", ""]
    lines += _metric_lines(m, ("step", "max_steps", "mode", "effective_batch", "precision", "processes",
                               "train_utterances", "params_trainable", "params_total", "loss_first_10pct",
                               "loss_last_10pct", "final_loss", "final_eval_loss"))
    evaluation = _metric_lines(m, ("params_total_ratio", "params_decoder_ratio", "speedup", "test_ce",
                                   "code_accuracy", "cer", "dnsmos_ovrl", "cer_vs_teacher", "quality_within_10pct"))
    gen = m.get("gen_eval") or {}
    if gen:
        evaluation += [f"- generation evaluation at step {gen.get('step')} ({gen.get('items')} held-out test items, "
                       f"Whisper `{gen.get('asr_model')}`):"]
        evaluation += [f"  - {k}: {_fmt(gen[k])}" for k in ("cer", "wer", "pitch_bin_match", "pitch_bin_distance",
                                                            "speed_bin_match", "speed_bin_distance") if k in gen]
    lines += ["", "## Evaluation", ""] + (evaluation or ["- none recorded"])
    lines += ["", "## Use", "", "```python", f"repo_id = {repo_id!r}", *USE[stage], "```"]
    if base == "tiny":
        lines += ["", "The tiny model's codec has custom widths: `import nbhelpers.parler.model` before loading it."]
    lines += ["", "Trained with the TTS fine-tuning notebook suite; the stage record it was generated from is "
              "`run_log.jsonl` in the training workspace.", ""]
    return "\n".join(lines)


def push(stage: str, *, repo_id: str, workspace: Workspace | None = None, run: str | None = None,
         private: bool = False, licence: str = "apache-2.0") -> dict[str, Any]:
    """Upload the newest finished model of ``stage`` to ``repo_id`` (created if needed) with a generated card, in
    one commit; writes ``<run_dir>/push.json`` (repo, commit, files, card digest; never the token) and returns it."""
    from huggingface_hub import CommitOperationAdd, HfApi

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PushError(f"--repo-id {repo_id!r} must be <user or organisation>/<name>, e.g. yourname/kannada-parler")
    ws = workspace or Workspace()
    token = hub_token()
    record = finished_run(stage, ws, run)
    folder = Path(record["outputs"][OUTPUT_KEY[stage]])
    card = model_card(stage, record, ws, licence=licence, repo_id=repo_id)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() != CARD_FILE)
    ops = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(), path_or_fileobj=str(p)) for p in files]
    ops.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8")))
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    commit = api.create_commit(repo_id, ops, commit_message=f"{WHAT[stage]}: run {record.get('run_id')}",
                               repo_type="model")
    info = {"repo_id": repo_id, "repo_url": str(url), "private": private, "commit_url": commit.commit_url,
            "commit": commit.oid, "stage": stage, "run_id": record.get("run_id"), "folder": str(folder),
            "files": [CARD_FILE, *(p.relative_to(folder).as_posix() for p in files)],
            "bytes": sum(p.stat().st_size for p in files) + len(card.encode()),
            "card_sha256": hashlib.sha256(card.encode()).hexdigest(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    run_dir = Path(record["outputs"].get("run_dir", folder.parent))
    info["record"] = str(write_json(run_dir / PUSH_FILE, info))
    return info


def add_push_arguments(parser: Any) -> None:
    """``push``'s own options (stages 02 and 03 share them)."""
    parser.add_argument("--repo-id", required=True, help="<user or organisation>/<name> on the hub")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--run", help="run folder name (default: the newest finished run)")


def run_push(stage: str, args: Any, licence: str) -> int:
    """``push`` from a command line: one summary line, or ``ERROR: ...`` and exit status 1 (nothing uploaded)."""
    import sys

    from huggingface_hub.errors import HfHubHTTPError

    try:
        info = push(stage, repo_id=args.repo_id, workspace=Workspace(args.workspace), run=args.run,
                    private=args.private, licence=licence)
    except PushError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    except HfHubHTTPError as err:  # e.g. 401 (token without write access), 403 (namespace not yours)
        print(f"ERROR: the hub refused the upload to {args.repo_id}: {str(err).splitlines()[0]}. Check that "
              f"{TOKEN_ENV} is a token with write access to that namespace; nothing was published.", file=sys.stderr)
        return 1
    print(f"pushed {len(info['files'])} files ({info['bytes'] / 2**20:.1f} MiB) to {info['repo_url']} "
          f"({'private' if info['private'] else 'public'}); commit {info['commit_url']}")
    print(f"wrote {info['record']}")
    return 0
