"""Detached background jobs for the dashboard: one per run folder at a time.

    start(run_dir, argv)  spawns a supervisor in a new session (so it survives the
                          page and the Streamlit server) and returns job.json's dict;
                          first=[(label, argv), ...] runs stages before argv (the
                          train form prepares missing data this way).
    read_job(run_dir)     job.json, with a vanished process reported as failed.
    is_alive(run_dir)     the job is still running.
    tail(run_dir)         the last lines of job.log.
    stop(run_dir)         SIGTERM to the job's process group.
    dismiss(run_dir)      hide a finished job from the job history (job.json kept).

The supervisor (``python -m pipeline.jobs --run-dir R -- argv...``) runs the
command with stdout+stderr into <run>/job.log and PIPELINE_PROGRESS_FILE set to
<run>/progress.json, then writes the final status into <run>/job.json:
{pid, status running|done|failed, command, started, ended, returncode, error,
stages, stage, dismissed}. A failed job keeps its log; `error` is the CLI's
"error: ..." line, or the last line of output, prefixed by the stage that failed
when the job has several. A file lock (job.log.lock) makes check-then-start atomic, so a
double click can never start the same job twice.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from contextlib import contextmanager
from pathlib import Path

import psutil

from pipeline.errors import PipelineError
from pipeline.runs import REPO_ROOT, now_iso, read_json, write_json_atomic

JOB_FILE, LOG_FILE, LOCK_FILE, PROGRESS_FILE = "job.json", "job.log", "job.log.lock", "progress.json"


# --- the commands the dashboard starts (one place to change if the CLI changes) ---

def pipeline_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *[str(a) for a in args]]


def evaluate_argv(run: Path, baseline: Path | None = None) -> list[str]:
    argv = pipeline_argv("evaluate", "--run", run)
    return argv + ["--baseline", str(baseline)] if baseline else argv


def infer_argv(run: Path, task: str) -> list[str]:
    return pipeline_argv("infer", "--run", run, "--task", task)


def eval_checkpoints_argv(run: Path, tests: Path, limit: int | None = 200) -> list[str]:
    argv = pipeline_argv("eval-checkpoints", "--run", run, "--tests", tests)
    return argv + ["--limit", str(int(limit))] if limit else argv


def choose_checkpoint_argv(run: Path | str, tests: Path, heldout: Path, last_step: int,
                           limit: int = 200, count: int | None = None) -> list[str]:
    """The choice stage (the main job's, and the dashboard's button) for one run whose last
    adapter is `last_step`: its last `count` candidates (pipeline.checkpoint_choice)."""
    from pipeline.checkpoint_choice import CANDIDATE_EVERY, CANDIDATES, first_candidate
    return eval_checkpoints_argv(run, tests, limit) + [
        "--every", str(CANDIDATE_EVERY),
        "--from-step", str(first_candidate(last_step, count or CANDIDATES)),
        "--squad", str(heldout), "--choose"]


def write_train_config(preset: Path, out: Path, rank: int | None = None, alpha: float | None = None,
                       targets: list[str] | None = None) -> Path:
    """Copy a preset YAML to `out` with the LoRA overrides applied (None keeps the preset's).

    `train` takes its LoRA shape from the config, so overrides travel as a config
    file kept in the new run's folder (a record of what was asked for).
    Raises PipelineError if the preset is unreadable or has no `lora` section.
    """
    import yaml
    try:
        config = yaml.safe_load(Path(preset).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"cannot read preset ({exc})", preset) from exc
    if not isinstance(config, dict) or not isinstance(config.get("lora"), dict):
        raise PipelineError("preset has no 'lora' section", preset)
    for key, value in (("rank", rank), ("alpha", alpha), ("targets", targets)):
        if value is not None:
            config["lora"][key] = list(value) if key == "targets" else value
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# {preset} with dashboard overrides\n" + yaml.safe_dump(config, sort_keys=False),
                   encoding="utf-8")
    return out


def train_argv(config: str | Path, run_name: str, max_steps: int | None = None,
               results: Path | None = None) -> list[str]:
    argv = pipeline_argv("train", "--config", config, "--run", run_name)
    if max_steps is not None:
        argv += ["--max-steps", str(int(max_steps))]
    if results is not None:
        argv += ["--results", str(results)]
    return argv


def import_argv(run_name: str, predictions: Path | None = None, tests: Path | None = None,
                train_log: Path | None = None, eval_log: Path | None = None,
                squad_predictions: Path | None = None, squad: Path | None = None,
                baseline: str | None = None, partial: bool = False) -> list[str]:
    """`python -m pipeline import` with the files given (None ones left out)."""
    argv = pipeline_argv("import", "--name", run_name)
    for flag, value in (("--predictions", predictions), ("--tests", tests),
                        ("--squad-predictions", squad_predictions), ("--squad", squad),
                        ("--train-log", train_log), ("--eval-log", eval_log),
                        ("--baseline", baseline)):
        if value:
            argv += [flag, str(value)]
    return argv + ["--partial"] if partial else argv


# --- job state ---

def _process_started(pid: int) -> float | None:
    """The process's start time (epoch seconds), None if there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _pid_alive(pid: int | None, started: float | None = None) -> bool:
    """True for a live, non-zombie process that is the one recorded: a PID the system has
    reused for another process since (its start time differs from `started`) is not ours."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False   # it has finished its work
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def read_job(run_dir) -> dict | None:
    """job.json of the run, or None if no job ever ran there.

    A job still marked running whose process is gone (killed, machine restarted)
    is reported as failed, so the page never waits on it forever.
    """
    path = Path(run_dir) / JOB_FILE
    if not path.exists():
        return None
    try:
        job = read_json(path)
    except PipelineError:
        return None  # mid-write by another process; the next poll reads it
    if job.get("status") == "running" and not _pid_alive(job.get("pid"), job.get("pid_started")):
        job = {**job, "status": "failed",
               "error": job.get("error") or "the job process ended without reporting (killed?)"}
    return job


def is_alive(run_dir) -> bool:
    job = read_job(run_dir)
    return bool(job and job.get("status") == "running")


def tail(run_dir, lines: int = 40) -> str:
    """The last `lines` lines of job.log ('' if there is none)."""
    path = Path(run_dir) / LOG_FILE
    if not path.exists():
        return ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return "".join(deque(fh, maxlen=lines))


def read_progress(run_dir) -> dict | None:
    path = Path(run_dir) / PROGRESS_FILE
    try:
        return read_json(path) if path.exists() else None
    except PipelineError:
        return None


@contextmanager
def _locked(run_dir: Path):
    with open(run_dir / LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _reap(proc: subprocess.Popen) -> None:
    # The supervisor is our child: wait on it in a thread so it never lingers as a zombie.
    threading.Thread(target=proc.wait, daemon=True).start()


def start(run_dir, argv: list[str], env: dict | None = None,
          first: list[tuple[str, list[str]]] | None = None, label: str = "run") -> dict:
    """Start `argv` as a detached job of `run_dir` (created if missing).

    first: (label, argv) stages run before `argv` (itself the stage `label`), in order;
    the job stops at the first that fails. Returns the job dict written to job.json (status "running").
    Raises PipelineError if a job of this run folder is still running.
    """
    plan = [(label, [str(a) for a in stage]) for label, stage in (first or [])]
    plan.append((label, [str(a) for a in argv]))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _locked(run_dir):
        current = read_job(run_dir)
        if current and current.get("status") == "running":
            raise PipelineError(f"a job is already running (pid {current.get('pid')}): "
                                f"{current.get('command')}", run_dir)
        for name in (LOG_FILE, PROGRESS_FILE):
            (run_dir / name).unlink(missing_ok=True)
        child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                     "PIPELINE_PROGRESS_FILE": str(run_dir / PROGRESS_FILE)}
        pythonpath = child_env.get("PYTHONPATH", "")
        child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), pythonpath) if p)
        supervisor = [sys.executable, "-m", "pipeline.jobs", "--run-dir", str(run_dir),
                      "--plan", json.dumps(plan, ensure_ascii=False)]
        proc = subprocess.Popen(supervisor, cwd=REPO_ROOT, env=child_env, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _reap(proc)
        # Written under the lock: the supervisor records its outcome only after this.
        job = {"pid": proc.pid, "pid_started": _process_started(proc.pid), "status": "running", "command": shlex.join(map(str, argv)),
               "argv": [str(a) for a in argv], "started": now_iso(), "ended": None,
               "returncode": None, "error": None, "stages": [label for label, _ in plan],
               "stage": plan[0][0]}
        write_json_atomic(run_dir / JOB_FILE, job)
    return job


def stop(run_dir) -> bool:
    """Send SIGTERM to a running job's process group; False if nothing was running."""
    job = read_job(run_dir)
    if not job or job.get("status") != "running":
        return False
    try:
        os.killpg(job["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def _error_line(log_text: str) -> str | None:
    """The CLI's one-line 'error: ...' if printed, else the last non-empty line."""
    lines = [ln.strip() for ln in log_text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line
    return lines[-1] if lines else None


def dismiss(run_dir) -> bool:
    """Hide a finished job from the job history; False (nothing changed) while it runs."""
    run_dir = Path(run_dir)
    with _locked(run_dir):
        job = read_job(run_dir)
        if not job or job.get("status") == "running":
            return False
        write_json_atomic(run_dir / JOB_FILE, {**job, "dismissed": True})
    return True


def _set_stage(run_dir: Path, label: str) -> None:
    with _locked(run_dir):
        path = run_dir / JOB_FILE
        if path.exists():
            write_json_atomic(path, {**read_json(path), "stage": label})


def _run_stage(run_dir: Path, argv: list[str]) -> tuple[int, str | None]:
    """Run one command with its output appended to job.log: (returncode, error or None)."""
    with open(run_dir / LOG_FILE, "ab") as log:
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
        except OSError as exc:
            return 127, f"cannot start {argv[0]}: {exc.strerror}"
        # Forward SIGTERM (stop()) to the command so it can clean up.
        signal.signal(signal.SIGTERM, lambda *_: child.terminate())
        return child.wait(), None


def supervise(run_dir: Path, plan: list[tuple[str, list[str]]]) -> int:
    """Run each (label, argv) of the plan in turn, output into job.log, stopping at the
    first failure; then record the outcome in job.json."""
    returncode, error = 0, None
    for label, argv in plan:
        if len(plan) > 1:
            _set_stage(run_dir, label)
        returncode, error = _run_stage(run_dir, argv)
        if returncode != 0:
            error = error or _error_line(tail(run_dir, 60)) or f"exited with code {returncode}"
            if len(plan) > 1:
                error = f"{label}: {error}"
            break
    with _locked(run_dir):
        path = run_dir / JOB_FILE
        job = read_json(path) if path.exists() else {"command": shlex.join(plan[-1][1])}
        job.update(pid=os.getpid(), pid_started=_process_started(os.getpid()), status="done" if returncode == 0 else "failed",
                   ended=now_iso(), returncode=returncode, error=error if returncode else None)
        write_json_atomic(path, job)
    return returncode


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.jobs",
                                     description="Job supervisor (started by pipeline.jobs.start).")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--plan", help='JSON list of [label, argv] stages, run in order')
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    plan = [(label, list(stage)) for label, stage in json.loads(args.plan)] if args.plan else \
        [("run", command)] if command else None
    if not plan:
        parser.error("no command given: --plan JSON or -- argv")
    return supervise(args.run_dir, plan)


if __name__ == "__main__":
    sys.exit(_main())
