"""Background jobs: real detached processes writing job.json / job.log / progress.json."""
import json
import sys
import time

import pytest

from pipeline import jobs
from pipeline.errors import PipelineError


def wait_finished(run_dir, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.read_job(run_dir)
        if job and job["status"] != "running":
            return job
        time.sleep(0.1)
    raise AssertionError(f"job in {run_dir} did not finish in {timeout}s: {jobs.read_job(run_dir)}")


def test_successful_cli_job_writes_done_and_log(tmp_path):
    argv = [sys.executable, "-c", "print('score', round(0.3 * 1 + 0.5 * 0.7, 4))"]
    job = jobs.start(tmp_path / "run", argv)
    assert job["status"] == "running" and job["pid"] > 0
    assert job["argv"] == argv and job["command"].startswith(sys.executable)
    done = wait_finished(tmp_path / "run")
    assert done["status"] == "done" and done["returncode"] == 0 and done["error"] is None
    assert done["ended"] >= done["started"]
    assert "score 0.65" in jobs.tail(tmp_path / "run")
    assert not jobs.is_alive(tmp_path / "run")


def test_failed_pipeline_job_keeps_log_and_reports_cli_error(tmp_path):
    argv = jobs.pipeline_argv("evaluate", "--run", str(tmp_path / "no-such-run"))
    run = tmp_path / "run"
    jobs.start(run, argv)
    done = wait_finished(run)
    assert done["status"] == "failed" and done["returncode"] != 0
    assert done["error"]  # argparse's or the CLI's one-line complaint
    assert (run / "job.log").read_text().startswith("$ ")


def test_error_line_prefers_cli_error():
    text = "loading\nerror: results/x: no such run folder\nTraceback tail\n"
    assert jobs._error_line(text) == "error: results/x: no such run folder"
    assert jobs._error_line("a\nlast line\n") == "last line"
    assert jobs._error_line("") is None


def test_same_job_cannot_start_twice_and_stop_ends_it(tmp_path):
    run = tmp_path / "run"
    jobs.start(run, [sys.executable, "-c", "import time; time.sleep(30)"])
    assert jobs.is_alive(run)
    with pytest.raises(PipelineError, match="already running"):
        jobs.start(run, [sys.executable, "-c", "print(1)"])
    assert jobs.stop(run)
    done = wait_finished(run, timeout=20)
    assert done["status"] == "failed" and done["returncode"] != 0
    # Once it has ended, a new job may start in the same folder.
    jobs.start(run, [sys.executable, "-c", "print('again')"])
    assert wait_finished(run)["status"] == "done"
    assert "again" in jobs.tail(run)


def test_job_mirrors_progress_file(tmp_path):
    code = ("from pipeline.progress import Progress\n"
            "with Progress(3, 'unit test', disable=True) as bar:\n"
            "    bar.update(3)\n")
    run = tmp_path / "run"
    jobs.start(run, [sys.executable, "-c", code])
    wait_finished(run)
    progress = json.loads((run / "progress.json").read_text())
    assert progress["done"] == 3 and progress["total"] == 3 and progress["stage"] == "unit test"


def test_vanished_process_reads_as_failed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "job.json").write_text(json.dumps({"pid": 2 ** 22 + 12345, "status": "running",
                                              "command": "x", "started": "t"}))
    job = jobs.read_job(run)
    assert job["status"] == "failed" and "without reporting" in job["error"]
    assert not jobs.is_alive(run)


def test_a_reused_pid_is_not_taken_for_the_live_job(tmp_path):
    # job.json names a live process (this test's own), but one started at another time:
    # the PID was reused by the system after the job's supervisor died.
    import os
    import psutil
    mine = psutil.Process(os.getpid()).create_time()
    (tmp_path / jobs.JOB_FILE).write_text(json.dumps(
        {"pid": os.getpid(), "pid_started": mine - 3600, "status": "running", "command": "x"}))
    job = jobs.read_job(tmp_path)
    assert job["status"] == "failed" and "ended without reporting" in job["error"]
    (tmp_path / jobs.JOB_FILE).write_text(json.dumps(
        {"pid": os.getpid(), "pid_started": mine, "status": "running", "command": "x"}))
    assert jobs.read_job(tmp_path)["status"] == "running"


def test_started_job_records_its_process_start_time(tmp_path):
    job = jobs.start(tmp_path, [sys.executable, "-c", "import time; time.sleep(0.5)"])
    assert isinstance(job["pid_started"], float)
    deadline = time.time() + 30
    while jobs.read_job(tmp_path)["status"] == "running" and time.time() < deadline:
        time.sleep(0.1)
    assert jobs.read_job(tmp_path)["status"] == "done"


def test_tail_returns_last_lines(tmp_path):
    (tmp_path / "job.log").write_text("".join(f"line {i}\n" for i in range(100)))
    assert jobs.tail(tmp_path, 3) == "line 97\nline 98\nline 99\n"
    assert jobs.tail(tmp_path / "missing") == ""


def test_train_config_overrides_and_argv(tmp_path):
    import yaml
    preset = tmp_path / "preset.yaml"
    preset.write_text("name: p\nlora:\n  rank: 8\n  alpha: 16.0\n  targets: [wq, wv]\ntrain:\n  lr: 1.0e-4\n")
    out = jobs.write_train_config(preset, tmp_path / "run" / "train_config.yaml", rank=4,
                                  targets=["wq", "wk"])
    config = yaml.safe_load(out.read_text())
    assert config["lora"] == {"rank": 4, "alpha": 16.0, "targets": ["wq", "wk"]}
    assert config["train"] == {"lr": 1.0e-4}
    (tmp_path / "bad.yaml").write_text("name: x\n")
    with pytest.raises(PipelineError, match="no 'lora' section"):
        jobs.write_train_config(tmp_path / "bad.yaml", tmp_path / "o.yaml")
    argv = jobs.train_argv(out, "r4", max_steps=20, results=tmp_path)
    assert argv[1:] == ["-m", "pipeline", "train", "--config", str(out), "--run", "r4",
                        "--max-steps", "20", "--results", str(tmp_path)]


def test_import_and_evaluate_argv():
    argv = jobs.import_argv("npu", "p.npy", "t.jsonl", eval_log="squad.log")
    assert argv[3:] == ["import", "--name", "npu", "--predictions", "p.npy", "--tests", "t.jsonl",
                        "--eval-log", "squad.log"]
    assert jobs.evaluate_argv("results/a", "results/b")[-2:] == ["--baseline", "results/b"]


def test_stages_run_in_order_and_a_failed_stage_names_itself(tmp_path):
    run = tmp_path / "run"
    marker = tmp_path / "prepared.txt"
    first = [("prepare data", [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('rows')"])]
    main = [sys.executable, "-c", f"print('read', open({str(marker)!r}).read())"]
    job = jobs.start(run, main, first=first, label="train")
    assert job["stages"] == ["prepare data", "train"] and job["argv"] == main
    done = wait_finished(run)
    assert done["status"] == "done" and done["stage"] == "train"
    assert "read rows" in jobs.tail(run)

    failing = [("prepare data", [sys.executable, "-c", "import sys; print('error: no tokenizer'); sys.exit(3)"])]
    jobs.start(run, main, first=failing, label="train")
    done = wait_finished(run)
    assert done["status"] == "failed" and done["stage"] == "prepare data"
    assert done["error"] == "prepare data: error: no tokenizer"
    assert "read rows" not in jobs.tail(run)  # the train stage never ran


def test_dismiss_hides_a_finished_job_only(tmp_path):
    run = tmp_path / "run"
    jobs.start(run, [sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not jobs.dismiss(run)  # a running job stays listed
    finally:
        jobs.stop(run)
    done = wait_finished(run)
    assert not done.get("dismissed")
    assert jobs.dismiss(run) and jobs.read_job(run)["dismissed"] is True
    jobs.start(run, [sys.executable, "-c", "pass"])  # a new job is listed again
    assert not wait_finished(run).get("dismissed")
