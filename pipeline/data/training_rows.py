"""A preset's training data -> the (input_ids, labels) arrays a training run steps over.

``data.train`` names a MindRecord (data prepare's output, used as it is) or a JSON Lines
file of problem/solution rows, which is written into the run folder as a MindRecord first,
in the layout pipeline.data.mindrecord documents. A row longer than seq_length + 1 tokens
is refused, naming the file and its lines: training never cuts an answer silently.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import runs
from pipeline.data.mindrecord import IGNORE_ID, read_mindrecord_arrays, write_mindrecord
from pipeline.errors import PipelineError

_LISTED = 5  # overlong lines named in the error; the count is complete


def jsonl_to_mindrecord(rows: list, out: Path, template: str, seq_length: int,
                        src: Path | None = None) -> Path:
    """problem/solution rows -> MindRecord at `out` (width seq_length + 1, prompt masked).

    Raises PipelineError naming `src` and the line for a row without problem and solution,
    for no rows, and for rows longer than seq_length + 1 tokens.
    """
    from pipeline.model.tokenizer import load_tokenizer
    for line, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or "problem" not in row or "solution" not in row:
            raise PipelineError(f"line {line}: expected an object with 'problem' and 'solution'", src)
    if not rows:
        raise PipelineError("no training rows", src)
    report = write_mindrecord(out, [template.format(problem=r["problem"]) for r in rows],
                              [str(r["solution"]) for r in rows], load_tokenizer(), seq_length,
                              overlong="drop", progress=False,
                              ids=[str(line) for line in range(1, len(rows) + 1)])
    long = report["overlong"]
    if long["count"]:
        Path(out).unlink(missing_ok=True)
        Path(str(out) + ".db").unlink(missing_ok=True)
        lines = ", ".join(long["first_ids"][:_LISTED]) + (", ..." if long["count"] > _LISTED else "")
        raise PipelineError(f"{long['count']} row(s) have more than train.seq_length + 1 = "
                            f"{seq_length + 1} tokens (line {lines}; longest "
                            f"{report['max_tokens']}); raise train.seq_length, or prepare the "
                            "data with a recipe (`python -m pipeline data prepare`, overlong: "
                            "drop)", src)
    return Path(out)


def load_training_arrays(preset, run: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """(source file, input_ids, labels) for preset.data.train; a JSONL is converted into
    run/data/train.mindrecord. Raises PipelineError for a recipe YAML (prepare it first)."""
    src = Path(preset.data.train)
    if src.suffix in (".jsonl", ".json"):
        mr = jsonl_to_mindrecord(runs.read_jsonl(src), run / "data" / "train.mindrecord",
                                 preset.data.template, preset.train.seq_length, src)
        return (src, *read_mindrecord_arrays(mr))
    if src.suffix in (".yaml", ".yml"):
        raise PipelineError("a data recipe must be prepared first: run `python -m pipeline data "
                            "prepare` and point data.train (or --data) at the MindRecord it writes", src)
    return (src, *read_mindrecord_arrays(src))


def fit_width(ids: np.ndarray, labels: np.ndarray, seq_length: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut records to seq_length + 1 columns (the preset's graph width), dropping rows whose
    tokens reach past it, so one graph serves a MindRecord written wider (e.g. 257).
    Narrower data is used as it is. Returns (ids, labels, rows dropped)."""
    width = seq_length + 1
    if ids.shape[1] <= width:
        return ids, labels, 0
    fits = ((ids[:, width:] == 0) & (labels[:, width:] == IGNORE_ID)).all(axis=1)
    return ids[fits, :width], labels[fits, :width], int((~fits).sum())


def drop_unsupervised(ids: np.ndarray, labels: np.ndarray, src) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows whose labels are all masked (prompt longer than seq_length) teach nothing and
    make MindFormers report a loss of 0; drop them. Fails when no row is left."""
    keep = (labels[:, 1:] != IGNORE_ID).any(axis=1)
    if not keep.any():
        raise PipelineError("no row has an unmasked label within seq_length: every prompt is too "
                            "long, raise train.seq_length", src)
    return ids[keep], labels[keep], int((~keep).sum())


def longest_target(labels: np.ndarray) -> int:
    """Labelled positions in the longest row (its answer's tokens)."""
    return int((labels[:, 1:] != IGNORE_ID).sum(axis=1).max())
