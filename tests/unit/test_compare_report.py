"""Many runs side by side (pipeline.compare), the errors command and the shareable report."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.compare import (
    compare_table, error_breakdown, pair_rows, per_type_against_first, run_settings)
from pipeline.errors import PipelineError
from pipeline.scoring.stats import mcnemar_exact

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "runs"
BASE, CAND, IMPORTED = "smollm2-base", "smollm2-lora-r8", "npu-llama3-r8"


def rows_of(run):
    return [json.loads(line) for line in (FIXTURES / run / "samples_math.jsonl").read_text().splitlines()]


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_compare_table_reads_settings_from_manifests_and_logs():
    table = {r["run"]: r for r in compare_table([BASE, CAND, IMPORTED], FIXTURES, "exact")}
    lora = table[CAND]
    assert (lora["lora_rank"], lora["lora_alpha"], lora["targets"]) == (8, 16, "wq,wv")
    assert lora["lr"] == 1e-4 and lora["steps"] == 30 and lora["minutes"] > 0
    met = json.loads((FIXTURES / CAND / "metrics.json").read_text())
    assert lora["accuracy"] == met["math"]["rules"]["exact"]["accuracy"]
    # the imported NPU run: steps and peak lr from its training log
    npu = table[IMPORTED]
    assert npu["kind"] == "imported" and npu["steps"] == 260 and npu["minutes"] > 0
    # a base model trained nothing, whatever its preset's training section says
    base = table[BASE]
    assert base["lr"] is None and base["steps"] is None and base["gate"] == "reference"


def test_run_settings_fall_back_to_the_training_log():
    settings = run_settings({"kind": "imported", "adapter": {"trainable_params": 5}},
                            {"steps": 12, "peak_lr": 3e-4, "minutes": 1.5})
    assert settings["lr"] == 3e-4 and settings["steps"] == 12 and settings["minutes"] == 1.5


def test_pair_rows_matches_problems_not_positions():
    first = [{"problem": "计算 1.00 + 2.00 等于多少？", "reference": "3.00", "id": "a"},
             {"problem": "计算 2.00 + 2.00 等于多少？", "reference": "4.00", "id": "b"},
             {"problem": "only here", "reference": "1", "id": "c"}]
    other = [{"problem": "计算 2.00  + 2.00 等于多少？ ", "reference": "4.00", "id": "x"},
             {"problem": "计算 1.00 + 2.00 等于多少？", "reference": "3.00", "id": "y"},
             {"problem": "计算 1.00 + 2.00 等于多少？", "reference": "9.00", "id": "z"}]
    assert [(a["id"], b["id"]) for a, b in pair_rows(first, other)] == [("a", "y"), ("b", "x")]


def test_per_type_p_values_are_mcnemar_over_paired_rows():
    base, cand = rows_of(BASE), rows_of(CAND)
    cand = list(reversed(cand))  # order must not matter
    table = per_type_against_first({BASE: base, CAND: cand}, "exact")
    assert table[-1]["type"] == "all"
    by_id = {r["id"]: r["verdicts"]["exact"] for r in cand}
    base_only = sum(r["verdicts"]["exact"] and not by_id[r["id"]] for r in base)
    cand_only = sum(not r["verdicts"]["exact"] and by_id[r["id"]] for r in base)
    cell = table[-1]["runs"][CAND]
    assert cell["paired"] == len(base)
    assert cell["p"] == pytest.approx(mcnemar_exact(base_only, cand_only))
    assert cell["low"] < cell["accuracy"] < cell["high"]
    assert table[-1]["runs"][BASE]["p"] is None


def test_errors_command_counts_classes_and_positions(tmp_path):
    out = cli("errors", "--run", FIXTURES / CAND, "--type", "add", "--rule", "exact", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    adds = [r for r in rows_of(CAND) if r["type"] == "add"]
    assert res["total"] == len(adds)
    assert res["wrong"] == sum(not r["verdicts"]["exact"] for r in adds) == sum(res["classes"].values())
    assert list(res["positions"]) == ["add"]
    assert list(res["positions"]["add"])[0] == "sign"
    human = cli("errors", "--run", FIXTURES / CAND, "--type", "add")
    assert "share of rows with the right digit" in human.stdout and "hundredths" in human.stdout
    bad = cli("errors", "--run", FIXTURES / CAND, "--type", "nope")
    assert bad.returncode == 2 and "no 'nope' rows" in bad.stderr


def test_error_breakdown_without_samples_says_what_to_run(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "empty"}))
    with pytest.raises(PipelineError, match="evaluate"):
        error_breakdown(str(run))


def test_report_writes_markdown_and_png_charts(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results)
    out = tmp_path / "share" / "report.md"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "report", "--runs", BASE, CAND, IMPORTED,
         "--out", str(out), "--rule", "exact"], cwd=REPO, capture_output=True, text=True,
        timeout=300, env={**os.environ, "PIPELINE_RESULTS": str(results)})
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "| `smollm2-lora-r8` | finetuned | r8 / 16 | wq,wv |" in text
    assert "## Math by type" in text and ", p " in text
    assert "![Accuracy by type](report_files/accuracy_by_type.png)" in text
    png = out.parent / "report_files" / "accuracy_by_type.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out.parent / "report_files" / "accuracy_vs_ratio.png").stat().st_size > 1000


def test_report_zip_holds_the_markdown_and_its_pngs():
    import io
    import zipfile
    from pipeline.report import report_zip
    with zipfile.ZipFile(io.BytesIO(report_zip([BASE, CAND], FIXTURES, "exact"))) as zf:
        names = set(zf.namelist())
        text = zf.read("report.md").decode("utf-8")
    assert names == {"report.md", "report_files/accuracy_by_type.png",
                     "report_files/accuracy_vs_ratio.png"}
    assert "report_files/accuracy_by_type.png" in text and f"`{CAND}`" in text


def test_report_refuses_a_run_named_twice():
    from pipeline.report import build_report
    with pytest.raises(PipelineError, match="twice"):
        build_report([BASE, BASE], FIXTURES)
