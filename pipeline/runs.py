"""The run folder: results/<run-id>/, the contract between stages and the dashboard.

    manifest.json          what produced the run (model, adapter, data, config,
                           prompt template, versions, command, time)
    tests_<task>.jsonl     the exact test rows the predictions answer, in order
    predictions_<task>.npy contest-format predictions (prompt + continuation)
    infer_<task>.jsonl     inference progress: one row per finished sample
                           (index, continuation, seconds); lets a killed job resume
    samples_<task>.jsonl   per-sample scored rows keyed by a stable id
    metrics.json           summary: math, squad, trainable_ratio, score
    train.log              MindFormers-format training log (train runs)
    adapter/               adapter-only checkpoints (train runs)
    job.json, job.log      background job status and output (dashboard jobs)

Task is "math" or "squad". Rescoring reads tests + predictions only, never
re-runs inference.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import sys
from pathlib import Path

from pipeline import fileio
from pipeline.errors import PipelineError

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("PIPELINE_RESULTS", REPO_ROOT / "results"))
TASKS = ("math", "squad")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def check_run_id(run_id: str) -> str:
    """A run id is a safe slug, so it can never point outside results/."""
    if not _RUN_ID.match(run_id or ""):
        raise PipelineError(
            f"run id {run_id!r} is not allowed: use letters, digits, '-' and '_' "
            "(1-100 characters, starting with a letter or digit)")
    return run_id


def run_dir(run_id: str, results: Path | None = None, create: bool = False) -> Path:
    path = Path(results or RESULTS_DIR) / check_run_id(run_id)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    elif not path.is_dir():
        raise PipelineError("no such run folder", path)
    return path


def resolve_run(ref: str, results: Path | None = None) -> Path:
    """A run given as an id under results/ or as a path to a run folder."""
    path = Path(ref)
    if path.is_dir() and (path / "manifest.json").exists():
        return path
    return run_dir(ref, results)


def list_runs(results: Path | None = None) -> list[Path]:
    root = Path(results or RESULTS_DIR)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "manifest.json").is_file())


def task_file(run: Path, kind: str, task: str) -> Path:
    if task not in TASKS:
        raise PipelineError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    ext = {"predictions": "npy", "tests": "jsonl", "infer": "jsonl", "samples": "jsonl"}[kind]
    return run / f"{kind}_{task}.{ext}"


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks): the data hashes in manifests."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def versions() -> dict:
    """Versions of what matters for reproducing a run."""
    from importlib import metadata
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("mindspore", "mindformers", "numpy", "gguf", "tokenizers", "jieba"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        from pipeline import __version__
        out["pipeline"] = __version__
    except ImportError:  # pragma: no cover
        pass
    return out


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON through a unique temp file + rename (pipeline.fileio.atomic_write): a crash
    never leaves half a file and concurrent writers never collide. PipelineError on OS errors."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    fileio.atomic_write(path, text)


def read_json(path: Path) -> dict:
    """A JSON file (bounded, UTF-8); PipelineError naming the file and line when it is bad."""
    text = fileio.read_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"not valid JSON (line {exc.lineno}: {exc.msg})", path) from exc
    except RecursionError:
        raise PipelineError("JSON nested too deeply", path) from None


def read_manifest(run: Path) -> dict:
    return read_json(Path(run) / "manifest.json")


def update_manifest(run: Path, **fields) -> dict:
    """Merge fields into manifest.json (creating it), keeping what is there."""
    path = Path(run) / "manifest.json"
    manifest = read_json(path) if path.exists() else {
        "run_id": Path(run).name, "created": now_iso(), "versions": versions()}
    manifest.update(fields)
    manifest["updated"] = now_iso()
    write_json_atomic(path, manifest)
    return manifest


def read_jsonl(path: Path) -> list[dict]:
    """Read JSON Lines (bounded, UTF-8, regular files only: pipeline.fileio); a malformed line
    is a PipelineError naming file and line."""
    rows = []
    for line_no, line in fileio.iter_text_lines(path, "JSON Lines file"):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise PipelineError(f"line {line_no}: not valid JSON ({exc.msg})", path) from exc
        except RecursionError:
            raise PipelineError(f"line {line_no}: JSON nested too deeply", path) from None
    return rows


def write_jsonl(path: Path, rows) -> None:
    """Write JSON Lines atomically (unique temp file + rename); PipelineError on OS errors."""
    def write(fh):
        for row in rows:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    fileio.atomic_write(path, write)


def run_lock(run: Path):
    """Exclusive per-run lock (evaluate holds it while it scores and writes)."""
    return fileio.folder_lock(run)
