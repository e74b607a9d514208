"""Make a run folder from the files an Ascend (NPU) contest user already has.

    import_run(name, predictions, tests, train_log=None, eval_log=None)

copies the contest prediction .npy (read with the safe loader first: a file that would run
code is refused) and the math test rows (their count must match the predictions), parses the
MindFormers training log for the trainable parameter count (ratio over Llama3-8B's
8,030,000,000) and the SQuAD eval log for F1/EM, writes a manifest of kind "imported" and
scores the run, so NPU results sit beside CPU ones in every view.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pipeline import contest, runs
from pipeline.errors import PipelineError

TRAIN_LOG = "train.log"
SQUAD_LOG = "squad_eval.log"


def import_run(name: str, predictions, tests, train_log=None, eval_log=None,
               prompt: str | None = None, results: Path | None = None, force: bool = False,
               command: str | None = None) -> dict:
    """Create results/<name>/ from NPU artefacts and evaluate it; returns evaluate()'s result
    plus "warnings". Raises PipelineError (naming the file) for a bad or unsafe .npy, bad test
    rows, a count mismatch, an unreadable log, or an existing run (unless force)."""
    from pipeline.data.prompts import template_text
    from pipeline.evaluate import evaluate
    from pipeline.infer import load_math_tests
    from pipeline.runs import file_sha256
    from pipeline.logs import parse_log
    from pipeline.npy import load_predictions

    runs.check_run_id(name)
    predictions, tests = Path(predictions), Path(tests)
    texts = load_predictions(predictions)
    rows = load_math_tests(tests)
    if len(texts) != len(rows):
        raise PipelineError(f"{len(texts)} predictions but {len(rows)} test rows in {tests}; "
                            "they must match one to one", predictions)
    warnings: list[str] = []
    trainable = None
    train_info = eval_info = None
    if train_log:
        parsed = parse_log(train_log)
        warnings += [f"{Path(train_log).name}: {w}" for w in parsed["warnings"]]
        if parsed["trainable_params"] is not None and not parsed["trainable_params_rounded"]:
            trainable = parsed["trainable_params"]
        elif parsed["trainable_params_rounded"]:
            warnings.append("the training log prints the parameter count in millions only; "
                            "the trainable count (and so the ratio) is unknown")
        else:
            warnings.append("the training log has no 'Network Parameters' line")
        train_info = {"path": TRAIN_LOG, "source": str(train_log), "steps": len(parsed["loss"])}
    if eval_log:
        parsed = parse_log(eval_log)
        warnings += [f"{Path(eval_log).name}: {w}" for w in parsed["warnings"]]
        if parsed["squad"] is None:
            raise PipelineError("no SQuAD scores in this log (expected 'F1 score: .., Em score: ..')",
                                eval_log)
        eval_info = {"path": SQUAD_LOG, "source": str(eval_log), **parsed["squad"]}
        if not parsed["squad"].get("final", True):
            warnings.append(f"the SQuAD log stops at {parsed['squad']['count']} items: "
                            "its running score is used")

    run = runs.run_dir(name, results, create=True)
    if (run / "manifest.json").is_file() and not force:
        raise PipelineError("run already exists; choose another --name or pass --force", run)
    shutil.copyfile(predictions, runs.task_file(run, "predictions", "math"))
    runs.write_jsonl(runs.task_file(run, "tests", "math"), rows)
    if train_log:
        shutil.copyfile(train_log, run / TRAIN_LOG)
    if eval_log:
        shutil.copyfile(eval_log, run / SQUAD_LOG)
    runs.update_manifest(
        run, kind="imported",
        model={"preset": "llama3-8b", "name": "Llama3-8B",
               "total_params": contest.LLAMA3_8B_TOTAL_PARAMS},
        adapter={"path": None, "trainable_params": trainable},
        data={"math_tests": {"path": str(tests), "sha256": file_sha256(tests), "rows": len(rows)}},
        prompt_template={"math": template_text(prompt) if prompt else None},
        imported={"predictions": str(predictions), "train_log": train_info},
        squad_log=eval_info, command=command or " ".join(sys.argv))
    result = evaluate(run)
    result["warnings"] = warnings
    return result
