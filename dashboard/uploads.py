"""Files the Import page stages: uploads under results/_uploads/<run>/<field>/ and the
checks `import` would run on them, cached on each file's (path, mtime)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import streamlit as st

from dashboard import data
from pipeline import jobs, runs

UPLOADS = "_uploads"  # under results/; not a valid run id, so never listed as a run
UPLOAD_MAX_AGE_S = 3600


def stage_upload(run_name: str, field: str, filename: str, payload: bytes) -> Path:
    """Save an uploaded file to results/_uploads/<run>/<field>/<name> for the importer.

    One folder per field: the math and SQuAD files of an NPU run often share a name
    (result_npy.npy). Rewritten only when the bytes changed, so its mtime (the key of the
    cached checks) stays put across reruns.
    """
    folder = data.results_dir() / UPLOADS / runs.check_run_id(run_name) / field
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(filename).name
    if not path.is_file() or path.stat().st_size != len(payload) or path.read_bytes() != payload:
        path.write_bytes(payload)
    return path


def sweep_uploads(max_age_s: float = UPLOAD_MAX_AGE_S) -> list[str]:
    """Remove staged upload folders no import needs any more; returns their run names.

    A folder goes once its run exists (the importer copied what it needs) or when nothing in
    it changed for max_age_s (an abandoned page); never while an import job for it runs.
    """
    root = data.results_dir() / UPLOADS
    removed = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        run = data.results_dir() / folder.name
        if not folder.is_dir() or jobs.is_alive(run):
            continue
        newest = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()),
                     default=folder.stat().st_mtime)
        if (run / "manifest.json").is_file() or time.time() - newest > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


@st.cache_data(show_spinner=False, max_entries=16)
def _check_import(keys: tuple, partial: bool) -> dict:
    from pipeline.importer import check_inputs  # reads .npy files with the safe loader only
    info = check_inputs(**{field: path for field, path, _ in keys}, partial=partial)
    return {task: info[task] for task in ("math", "squad")} | {"warnings": info["warnings"]}


def check_import(partial: bool = False, **paths) -> dict:
    """{"math", "squad", "warnings"} of an import's files, checked as `import` checks them
    (the counts match, .npy files safe and phase 1, test rows JSON Lines of problem/solution,
    regular files only). Raises PipelineError saying what is wrong with which file."""
    keys = tuple((field, str(path), data._key(Path(path))[1] if path else 0)
                 for field, path in sorted(paths.items()) if path)
    return _check_import(keys, partial)
