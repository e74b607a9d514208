"""The runs shipped in results/ re-score (from their predictions alone) to their metrics."""
import json
import shutil
from pathlib import Path

import pytest

from pipeline.evaluate import evaluate

RESULTS = Path(__file__).resolve().parents[2] / "results"
SHIPPED = sorted(p for p in RESULTS.glob("*/metrics.json"))


def _comparable(metrics: dict) -> dict:
    drop = {"evaluated"}
    return {k: v for k, v in metrics.items() if k not in drop}


@pytest.mark.skipif(not SHIPPED, reason="no shipped runs in results/")
@pytest.mark.parametrize("metrics_path", SHIPPED, ids=lambda p: p.parent.name)
def test_shipped_predictions_give_shipped_metrics(metrics_path, tmp_path):
    shipped = json.loads(metrics_path.read_text(encoding="utf-8"))
    # Re-score a copy of every run (the baseline too), so results/ is never touched.
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy, ignore=shutil.ignore_patterns("adapter", "*.ckpt", "job.*"))
    manifest = json.loads((copy / metrics_path.parent.name / "manifest.json").read_text())
    rescored = evaluate(metrics_path.parent.name, baseline=manifest.get("baseline_run"),
                        results=copy)["metrics"]
    assert _comparable(rescored) == _comparable(shipped)
    for task in ("math", "squad"):
        shipped_rows = metrics_path.parent / f"samples_{task}.jsonl"
        if shipped_rows.exists():
            assert (copy / metrics_path.parent.name / f"samples_{task}.jsonl").read_text(
                encoding="utf-8") == shipped_rows.read_text(encoding="utf-8")


@pytest.mark.skipif(not SHIPPED, reason="no shipped runs in results/")
def test_shipped_manifests_hold_no_machine_paths():
    """A clone lives anywhere: every path a shipped run records is relative to the repo."""
    for path in [*RESULTS.glob("*/manifest.json"), *RESULTS.glob("main_job_*.json")]:
        text = path.read_text(encoding="utf-8")
        assert '"/' not in text and " /" not in text, path
