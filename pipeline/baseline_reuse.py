"""Reuse a baseline's decoded rows instead of decoding them again (`infer --reuse`).

The base model's greedy continuations depend only on the model, the test rows, the
inference settings, the batch size, the decoder and the library versions: two main jobs
that agree on all of them decode the same text (measured: a fresh clone's main-base math
rows were identical, 300 of 300, to the shipped smollm2-base). So a run in the same results
folder that agrees on every one of them, keyed like a cache, stands in for a new decode,
and the main job gives those minutes to training. Only base-model runs qualify: an
adapter's identity is not in any key. The manifest records where the rows came from
(``inference.<task>.reused_from``), so it never claims a decode that did not happen.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline import runs
from pipeline.errors import PipelineError

# What a manifest records as its decoder; the packed matmul kernel (pipeline.kernels) rounds
# differently from MindSpore's MatMul, so a decode with it is another decoder for reuse.
# Manifests written before the kernel existed record DECODER and decoded with MindSpore's.
DECODER = "pipeline.decode greedy, key/value cache"


def decoder_name(kernel: str) -> str:
    """The decoder string for a decode whose matmuls ran on `kernel` ('packed' or 'mindspore')."""
    return DECODER if kernel == "mindspore" else f"{DECODER}, {kernel} matmul kernel"


# Versions that could change a decoded token; python/platform/jieba/pipeline cannot.
KEY_VERSIONS = ("mindspore", "mindformers", "numpy", "gguf", "tokenizers")


def reuse_key(settings: dict, batch_size: int, model_config: dict | None,
              versions: dict | None = None, decoder: str = DECODER) -> dict:
    """What must agree for two base-model decodes to give the same rows."""
    versions = runs.versions() if versions is None else versions
    return {"settings": settings, "batch_size": batch_size, "decoder": decoder,
            "model": model_config, "versions": {k: versions.get(k) for k in KEY_VERSIONS}}


def recorded_key(manifest: dict, task: str) -> dict | None:
    """The reuse key a run's manifest records for `task`; None when it is no base-model
    decode or predates the batch size being recorded."""
    entry = (manifest.get("inference") or {}).get(task) or {}
    settings = entry.get("settings")
    if manifest.get("kind") != "baseline" or not isinstance(settings, dict) \
            or settings.get("adapter") is not None or "batch_size" not in entry:
        return None
    return reuse_key(settings, entry["batch_size"], (manifest.get("config") or {}).get("model"),
                     manifest.get("versions") or {}, entry.get("decoder", DECODER))


def find_source(run: Path, task: str, tests: list[dict], key: dict) -> Path | None:
    """The newest other run beside `run` whose recorded key equals `key`, whose test rows
    are `tests` exactly and which finished every one of them; None when there is none.
    Runs that cannot be read are passed over (they are no candidates, not errors)."""
    from pipeline.infer import finished_rows
    run = Path(run).resolve()
    candidates = [p for p in _beside(run) if p.resolve() != run]
    candidates.sort(key=lambda p: (p / "manifest.json").stat().st_mtime, reverse=True)
    want = json.loads(json.dumps(key))   # compare as a manifest stores it (tuples -> lists)
    for other in candidates:
        try:
            manifest = runs.read_manifest(other)
            if recorded_key(manifest, task) != want:
                continue
            tests_file = runs.task_file(other, "tests", task)
            if not tests_file.is_file() or runs.read_jsonl(tests_file) != tests:
                continue
            if len(finished_rows(other, task, len(tests))) == len(tests):
                return other
        except (PipelineError, OSError, ValueError):
            continue
    return None


def _curve_owner(folder: Path) -> Path | None:
    """The run whose checkpoint curve holds `folder` (results/<run>/checkpoints/<point>),
    None for a run folder of its own."""
    return folder.parent.parent if folder.parent.name == "checkpoints" else None


def _beside(run: Path) -> list[Path]:
    """Runs beside `run`, and the base-model folders of checkpoint curves
    (results/<run>/checkpoints/base, pipeline.checkpoint_curve.base_squad) in its results
    folder: a curve's base decode in one run stands in for another's."""
    owner = _curve_owner(run)
    results = owner.parent if owner is not None else run.parent
    found = runs.list_runs(run.parent) + [p / "checkpoints" / "base" for p in runs.list_runs(results)]
    return [p for p in dict.fromkeys(found) if (p / "manifest.json").is_file()]


def copy_rows(source: Path, run: Path, task: str, rows: int) -> None:
    """Write source's finished rows 0..rows-1 as run's infer_<task>.jsonl (index order)."""
    from pipeline.infer import finished_rows
    done = finished_rows(source, task, rows)
    runs.write_jsonl(runs.task_file(run, "infer", task), [done[i] for i in range(rows)])


def origin(source: Path, task: str) -> str:
    """The run whose decode the rows really are (a reuse of a reuse names the first)."""
    entry = (runs.read_manifest(source).get("inference") or {}).get(task) or {}
    if entry.get("reused_from"):
        return entry["reused_from"]
    source = Path(source)   # a curve's base point is named by its path in the results folder
    owner = _curve_owner(source)
    return f"{owner.name}/checkpoints/{source.name}" if owner is not None else source.name
