"""How one catalogue case runs and what it must show.

A case hands one bad input to one entry point and asserts: exit status 2, exactly one line
on stderr, "error: " and the bad file's path in it, no traceback, bounded time and memory,
and every file of the workspace (run folders, inputs) unchanged.

In-process cases call the CLI's main() (an import per case would cost seconds); cases whose
point is a real process (endless input under a memory limit, concurrent writers) run one.
The time bound (60 s) is a hang detector, far above the milliseconds a case takes.

With RELIABILITY_TABLE=<file> set, each case appends (case, what the user saw) to that
file; docs/reliability.md's table is made from it.
"""
import json
import os
import resource
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from pipeline.__main__ import main

from tests.reliability.conftest import REPO, snapshot

TIME_LIMIT_S = 60
MEMORY_GROWTH_LIMIT = 512 << 20   # in-process: peak RSS may grow by at most this much
PROCESS_MEMORY_LIMIT = 4 << 30    # a real process runs under this address-space limit
PROCESS_RSS_LIMIT = 1 << 30       # ... and must peak below this


def record(case: str, message: str) -> None:
    target = os.environ.get("RELIABILITY_TABLE")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"case": case, "message": message}, ensure_ascii=False) + "\n")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


@contextmanager
def pipe_watchdog(path: Path):
    """If code under test blocks opening the named pipe `path`, open it for writing after
    10 s (and close it) so the case fails instead of hanging the suite."""
    done = threading.Event()

    def unblock():
        if not done.wait(10) and path.exists():
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            os.close(fd)
    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


def check_error(case: str, code: int, out: str, err: str, names: Path | str) -> str:
    assert "Traceback" not in out + err, err
    assert code == 2, (code, out, err)
    # progress bars (tqdm, on stderr) are not messages
    lines = [line for line in err.strip().splitlines() if "%|" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(names) in lines[0], (str(names), lines[0])
    record(case, lines[0])
    return lines[0]


def run_in_process(case: str, argv: list[str], names, workspace: Path, capsys) -> str:
    """main(argv) must fail cleanly naming `names`, leaving the workspace as it was."""
    capsys.readouterr()
    before = snapshot(workspace)
    peak, began = _peak_rss(), time.monotonic()
    bad = Path(names)
    with pipe_watchdog(bad) if bad.is_fifo() else _nothing():
        code = main([str(a) for a in argv])
    elapsed = time.monotonic() - began
    out, err = capsys.readouterr()
    line = check_error(case, code, out, err, names)
    assert elapsed < TIME_LIMIT_S
    assert _peak_rss() - peak < MEMORY_GROWTH_LIMIT
    assert snapshot(workspace) == before
    assert not (workspace / "PWNED").exists()
    return line


@contextmanager
def _nothing():
    yield


# Linux counts a forked child's peak RSS from its parent's at the fork (the copied address
# space), so a process forked from this test process (MindSpore loaded: ~1.7 GB) would report
# that much whatever it did. A small launcher forks the measured process instead, and
# reports that grandchild's own peak on stderr's last line.
_LAUNCHER = """
import os, resource, sys
limit = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(sys.executable, [sys.executable, "-m", "pipeline", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\nLAUNCHER-RSS %d %d\\n" % (usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)))
"""


def run_process(argv: list[str], workspace: Path, timeout: float = TIME_LIMIT_S):
    """`python -m pipeline argv` in its own process under a memory limit.
    Returns (returncode, stdout, stderr, peak RSS bytes, seconds)."""
    out_path, err_path = workspace / ".proc.out", workspace / ".proc.err"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    began = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(PROCESS_MEMORY_LIMIT),
                                 *map(str, argv)], cwd=workspace, env=env, stdout=out, stderr=err,
                                start_new_session=True)
    killer = threading.Timer(timeout, lambda: os.killpg(proc.pid, 9))
    killer.start()
    try:
        proc.wait()
    finally:
        killer.cancel()
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in (out_path, err_path)]
    for p in (out_path, err_path):
        p.unlink()
    err, _, tail = texts[1].rstrip("\n").rpartition("\nLAUNCHER-RSS ")
    if not tail.startswith(tuple("0123456789")):
        raise AssertionError(f"the launcher did not report (exit {proc.returncode}): {texts[1]}")
    rss, code = map(int, tail.split())
    return code, texts[0], err.rstrip("\n") + "\n" if err.strip() else "", rss, time.monotonic() - began
