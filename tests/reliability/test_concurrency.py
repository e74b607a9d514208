"""Concurrent writers of one run, in real processes: several `evaluate` of the same run at
once all succeed, a reader never sees an empty or half-written file, no temp file is left,
and evaluate waits for the per-run lock."""
import json
import os
import subprocess
import sys
import threading
import time

from pipeline import runs
from tests.reliability.catalogue import record
from tests.reliability.conftest import REPO, RUN


def _evaluate(workspace):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_RESULTS": str(workspace / "results")}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "evaluate", "--run", RUN, "--json"],
                            cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_three_evaluates_at_once_all_succeed_and_readers_see_whole_files(workspace):
    run = workspace / "results" / RUN
    rows = len((run / "tests_math.jsonl").read_text(encoding="utf-8").splitlines())
    seen, stop = [], threading.Event()

    def read_while_writing():
        while not stop.is_set():
            samples = (run / "samples_math.jsonl").read_text(encoding="utf-8").splitlines()
            metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
            seen.append((len(samples), metrics["run_id"]))
    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        for _ in range(3):  # three rounds of three at once
            procs = [_evaluate(workspace) for _ in range(3)]
            results = [(p.wait(120), *p.communicate()) for p in procs]
            for code, out, err in results:
                assert code == 0 and "Traceback" not in err, err
                assert json.loads(out)["metrics"]["math"]["total"] == rows
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {(rows, RUN)}
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".") or p.suffix == ".tmp") == []
    record("3 evaluate of one run at once (x3) | evaluate",
           "(all succeed; readers always see whole files; no temp file left)")


def test_evaluate_waits_for_the_run_lock(workspace):
    run = workspace / "results" / RUN
    before = (run / "metrics.json").read_bytes()
    with runs.run_lock(run):
        proc = _evaluate(workspace)
        time.sleep(1.5)
        waiting = proc.poll() is None
        unchanged = (run / "metrics.json").read_bytes() == before
    code = proc.wait(120)
    assert waiting and unchanged
    assert code == 0, proc.communicate()[1]
