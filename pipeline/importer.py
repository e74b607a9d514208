"""Make a run folder from the files an Ascend (NPU) contest user already has.

    check_inputs(predictions, tests, squad_predictions, squad, train_log, eval_log)
    import_run(name, predictions, tests, train_log, eval_log, squad_predictions=..., ...)

A run holds one or both tasks. Math: the contest prediction .npy (read with the safe loader
first: a file that would run code is refused) and the test rows it answers (problem/solution
in prediction order; the counts must match). SQuAD: the prediction .npy of the contest's SQuAD
eval, matched by position to the 2,067 items built from dev-v1.1.json (or a JSONL eval set),
scored by `evaluate` exactly as `score-squad` scores it; or, without predictions, the F1/EM
printed in a MindFormers eval log. The training log gives the trainable parameter count (ratio
over Llama3-8B's 8,030,000,000). A phase-2 (multiple-choice) prediction file is refused.
check_inputs reads and checks everything without writing, so the dashboard can say what is
wrong before it offers the import.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from pipeline import contest, fileio, runs
from pipeline.errors import PipelineError

TRAIN_LOG = "train.log"
SQUAD_LOG = "squad_eval.log"
# InternLM's chat markers and the multiple-choice answer phrase of the phase-2 prompts.
_PHASE2_MARKERS = ("<|User|>:", "<|Bot|>:", "The right option is")


def default_squad() -> Path:
    from pipeline.data.squad import SQUAD_DEV
    return SQUAD_DEV


def _regular_file(path, what: str) -> Path:
    """The path once it opens as a bounded regular file (fileio.open_regular's checks: not a
    device such as /dev/zero, a pipe or a folder, not over the size limit)."""
    path = Path(path).expanduser()
    with fileio.open_regular(path, what):
        return path


def _check_json_lines(path: Path, what: str) -> None:
    """Name the two common mistakes before the row reader does: an empty file and a JSON
    array (one document) where JSON Lines (one object per line) are expected."""
    with fileio.open_regular(path, "JSON Lines file") as fh:
        head = fh.read(4096).lstrip()
    if not head:
        raise PipelineError(f"the {what} is empty; expected JSON Lines: one "
                            "{\"problem\": ..., \"solution\": ...} object per line", path)
    if head.startswith(b"[") and head[1:].lstrip()[:1] in (b"{", b""):  # an array of rows
        raise PipelineError(f"the {what} is a JSON array; expected JSON Lines "
                            "(one {\"problem\": ..., \"solution\": ...} object per line)", path)


def is_phase2(texts: list[str]) -> bool:
    """True when most predictions are phase-2 (InternLM-7B multiple-choice) answers."""
    sample = texts[:50]
    hits = sum(1 for t in sample if sum(m in t for m in _PHASE2_MARKERS) >= 2)
    return hits * 2 > len(sample)


def _load_task_predictions(path: Path, what: str) -> list[str]:
    from pipeline.npy import load_predictions
    texts = load_predictions(path)
    if is_phase2(texts):
        raise PipelineError(
            f"{what}: this is a phase-2 prediction file (InternLM-7B multiple-choice answers, "
            "'The right option is ...'); only phase-1 math and SQuAD predictions can be imported", path)
    return texts


def check_inputs(predictions=None, tests=None, squad_predictions=None, squad=None,
                 train_log=None, eval_log=None, partial: bool = False) -> dict:
    """Read and check an import's files without writing anything.

    Returns {"math": {"predictions", "rows", "head"} | None, "squad": {"predictions", "rows",
    "head"} | None, "squad_items": the eval items scored, "math_rows": the test rows,
    "warnings": [...]}. Raises PipelineError naming the file for: no task at all, math
    predictions without tests (or the reverse), an unsafe or malformed .npy, a phase-2 file,
    bad test rows (a JSON array, an empty file, rows without problem/solution), a count
    mismatch (fewer SQuAD predictions than items only with partial, as score-squad
    --partial), or a path that is not a regular file.
    """
    from pipeline.data.squad import load_squad_eval
    from pipeline.infer import load_math_tests

    if (predictions is None) != (tests is None):
        raise PipelineError("math needs both the predictions (.npy) and the test rows they answer "
                            "(--predictions with --tests)")
    if predictions is None and squad_predictions is None and eval_log is None:
        raise PipelineError("nothing to import: give --predictions with --tests (math), "
                            "--squad-predictions (SQuAD), or both")
    out = {"math": None, "squad": None, "math_rows": None, "squad_items": None, "warnings": []}
    if predictions is not None:
        pred_path = _regular_file(predictions, ".npy file")
        tests_path = _regular_file(tests, "JSON Lines file")
        texts = _load_task_predictions(pred_path, "math predictions")
        _check_json_lines(tests_path, "math test file")
        rows = load_math_tests(tests_path)
        if len(texts) != len(rows):
            raise PipelineError(f"{len(texts)} math predictions but {len(rows)} test rows in "
                                f"{tests_path}; they must match one to one", pred_path)
        out["math"] = {"predictions": len(texts), "rows": len(rows), "head": texts[:3]}
        out["math_rows"] = rows
    if squad_predictions is not None:
        pred_path = _regular_file(squad_predictions, ".npy file")
        squad_path = _regular_file(squad if squad is not None else default_squad(), "SQuAD eval file")
        texts = _load_task_predictions(pred_path, "SQuAD predictions")
        items = load_squad_eval(squad_path)
        # Same rule as score-squad: matched by position, so the counts must agree; a run cut
        # short is scored against its first items only when asked (partial).
        if len(texts) > len(items):
            raise PipelineError(f"{len(texts)} SQuAD predictions but the eval set {squad_path} has "
                                f"only {len(items)} items", pred_path)
        if len(texts) < len(items) and not partial:
            raise PipelineError(
                f"{len(texts)} SQuAD predictions but the eval set {squad_path} has {len(items)} "
                "items; they are matched by position, so the counts must agree (import with "
                f"--partial to score a run cut short against the first {len(texts)} items)", pred_path)
        if len(texts) < len(items):
            out["warnings"].append(f"{len(texts)} SQuAD predictions for {len(items)} items: "
                                   f"scored against the first {len(texts)} items only")
            items = items[:len(texts)]
        out["squad"] = {"predictions": len(texts), "rows": len(items), "head": texts[:3]}
        out["squad_items"] = items
    for log in (train_log, eval_log):
        if log is not None:
            _regular_file(log, "log file")
    return out


def _train_log_info(train_log, warnings: list[str]) -> tuple[int | None, dict]:
    from pipeline.logs import parse_log
    parsed = parse_log(train_log)
    warnings += [f"{Path(train_log).name}: {w}" for w in parsed["warnings"]]
    trainable = None
    if parsed["trainable_params"] is not None and not parsed["trainable_params_rounded"]:
        trainable = parsed["trainable_params"]
    elif parsed["trainable_params_rounded"]:
        warnings.append("the training log prints the parameter count in millions only; "
                        "the trainable count (and so the ratio) is unknown")
    else:
        warnings.append("the training log has no 'Network Parameters' line")
    return trainable, {"path": TRAIN_LOG, "source": str(train_log), "steps": len(parsed["loss"])}


def _eval_log_info(eval_log, warnings: list[str], scored_from_predictions: bool) -> dict:
    from pipeline.logs import parse_log
    parsed = parse_log(eval_log)
    warnings += [f"{Path(eval_log).name}: {w}" for w in parsed["warnings"]]
    if parsed["squad"] is None:
        raise PipelineError("no SQuAD scores in this log (expected 'F1 score: .., Em score: ..')",
                            eval_log)
    if scored_from_predictions:
        warnings.append("SQuAD is scored from --squad-predictions; the eval log's "
                        f"F1 {parsed['squad']['f1']:.4f} is kept in the manifest only")
    elif not parsed["squad"].get("final", True):
        warnings.append(f"the SQuAD log stops at {parsed['squad']['count']} items: "
                        "its running score is used")
    return {"path": SQUAD_LOG, "source": str(eval_log), **parsed["squad"]}


def _checked_baseline(baseline: str, results: Path | None, needs_squad: bool) -> str:
    """The baseline run's folder; PipelineError when it is missing or, for a SQuAD gate,
    has no SQuAD scores (checked before anything is written)."""
    from pipeline.evaluate import run_scores
    base = runs.resolve_run(baseline, results)
    if needs_squad and not run_scores(base).get("squad"):
        raise PipelineError("the baseline run has no SQuAD scores to gate against", base)
    return str(base)


def _import_file_names(run: Path) -> list[str]:
    """The files an import writes (and a forced re-import replaces)."""
    names = ["manifest.json", "metrics.json", TRAIN_LOG, SQUAD_LOG]
    return names + [runs.task_file(run, kind, task).name for kind in ("predictions", "tests", "infer", "samples")
                    for task in runs.TASKS]


def _set_aside(run: Path) -> Path:
    """Move what an earlier import (or run) left into a hidden folder of the run, so a forced
    re-import never scores a stale task file and a failed one can put it back."""
    aside = Path(tempfile.mkdtemp(prefix=".replaced-", dir=run))
    for name in _import_file_names(run):
        if (run / name).is_file():
            os.replace(run / name, aside / name)
    return aside


def _undo(run: Path, created: bool, aside: Path | None) -> None:
    """A failed import leaves the run as it found it: its own files removed, a replaced
    run's files back, a folder it made gone (unless something else, a job log, is in it)."""
    for name in _import_file_names(run):
        (run / name).unlink(missing_ok=True)
    if aside is not None:
        for item in aside.iterdir():
            os.replace(item, run / item.name)
        aside.rmdir()
    if created and run.is_dir() and not any(run.iterdir()):
        run.rmdir()


def import_run(name: str, predictions=None, tests=None, train_log=None, eval_log=None,
               prompt: str | None = None, results: Path | None = None, force: bool = False,
               command: str | None = None, squad_predictions=None, squad=None,
               baseline: str | None = None, partial: bool = False) -> dict:
    """Create results/<name>/ from NPU artefacts and evaluate it (SQuAD gated against
    `baseline` when given, else the contest's base Llama3-8B); returns evaluate()'s result
    plus "warnings". Raises PipelineError (naming the file) for anything check_inputs
    refuses, an unreadable log, a missing baseline run, or an existing run (unless force);
    nothing is written then. A failure while writing or scoring (a full disk, a kill) leaves
    the run as it was: no half-made folder, and a forced re-import's old files put back."""
    runs.check_run_id(name)
    checked = check_inputs(predictions, tests, squad_predictions, squad, train_log, eval_log,
                           partial)
    warnings = list(checked["warnings"])
    trainable, train_info = _train_log_info(train_log, warnings) if train_log else (None, None)
    eval_info = (_eval_log_info(eval_log, warnings, squad_predictions is not None)
                 if eval_log else None)
    if baseline is not None:
        baseline = _checked_baseline(baseline, results, needs_squad=checked["squad"] is not None
                                     or eval_info is not None)

    run = Path(results or runs.RESULTS_DIR) / name
    aside = None
    if (run / "manifest.json").is_file():
        if not force:
            raise PipelineError("run already exists; choose another --name or pass --force", run)
        aside = _set_aside(run)
    created = not run.exists()
    try:
        result = _write_and_score(run, checked, predictions, tests, squad_predictions, squad,
                                  train_log, eval_log, train_info, eval_info, trainable, prompt,
                                  command, baseline, results)
    except BaseException:
        _undo(run, created, aside)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    result["warnings"] = warnings
    return result


def _write_and_score(run, checked, predictions, tests, squad_predictions, squad, train_log,
                     eval_log, train_info, eval_info, trainable, prompt, command, baseline,
                     results) -> dict:
    """Write the run's files from checked inputs, then evaluate it."""
    from pipeline.data.prompts import template_text
    from pipeline.evaluate import evaluate
    from pipeline.runs import file_sha256

    run.mkdir(parents=True, exist_ok=True)
    data, imported = {}, {"train_log": train_info}
    if predictions is not None:
        shutil.copyfile(predictions, runs.task_file(run, "predictions", "math"))
        runs.write_jsonl(runs.task_file(run, "tests", "math"), checked["math_rows"])
        data["math_tests"] = {"path": str(tests), "sha256": file_sha256(tests),
                              "rows": len(checked["math_rows"])}
        imported["predictions"] = str(predictions)
    if squad_predictions is not None:
        squad_path = Path(squad) if squad is not None else default_squad()
        shutil.copyfile(squad_predictions, runs.task_file(run, "predictions", "squad"))
        runs.write_jsonl(runs.task_file(run, "tests", "squad"), checked["squad_items"])
        data["squad_tests"] = {"path": str(squad_path), "sha256": file_sha256(squad_path),
                               "rows": len(checked["squad_items"])}
        imported["squad_predictions"] = str(squad_predictions)
    if train_log:
        shutil.copyfile(train_log, run / TRAIN_LOG)
    if eval_log:
        shutil.copyfile(eval_log, run / SQUAD_LOG)
    runs.update_manifest(
        run, kind="imported",
        model={"preset": "llama3-8b", "name": "Llama3-8B",
               "total_params": contest.LLAMA3_8B_TOTAL_PARAMS},
        adapter={"path": None, "trainable_params": trainable},
        data=data, prompt_template={"math": template_text(prompt) if prompt else None},
        imported=imported, squad_log=eval_info, command=command or " ".join(sys.argv))
    return evaluate(run, baseline=baseline, results=results)
