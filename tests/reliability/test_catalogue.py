"""The bad-input catalogue: one case per (bad input x entry point), through the real CLI.

Each case: exit status 2, one line "error: <the file>: <what is wrong / what to do>", no
traceback, bounded time and memory, every file of the workspace unchanged (catalogue.py).
docs/reliability.md lists the cases with what the user sees.
"""
import errno
import json
import os
import shutil
import tempfile

import numpy as np
import pytest

from pipeline import fileio
from tests.reliability import bad_inputs
from tests.reliability.catalogue import check_error, record, run_in_process, run_process
from tests.reliability.conftest import RUN, snapshot

# entry point -> argv with the bad file in place of one input (ws: the workspace folder)
TEXT_ENTRIES = {
    "score-math": lambda bad, ws: ["score-math", ws / "good/pred.npy", bad],
    "classify": lambda bad, ws: ["classify", bad],
    "import": lambda bad, ws: ["import", "--predictions", ws / "good/pred.npy", "--tests", bad,
                               "--name", "new-run"],
    "data-import": lambda bad, ws: ["data", "import", bad, "--out", ws / "out/rows.jsonl"],
    "score-squad": lambda bad, ws: ["score-squad", ws / "good/squad_pred.npy", "--squad", bad],
}
# data import keeps the good rows of a file with some broken lines (and reports them)
NOT_ERRORS = {("not-json-line", "data-import")}
NPY_ENTRIES = {
    "score-math": lambda bad, ws: ["score-math", bad, ws / "good/tests.jsonl"],
    "score-squad": lambda bad, ws: ["score-squad", bad, "--squad", ws / "good/squad.jsonl"],
    "import": lambda bad, ws: ["import", "--predictions", bad, "--tests", ws / "good/tests.jsonl",
                               "--name", "new-run"],
}
# a log is read leniently (undecodable bytes replaced); only an unreadable file is an error
LOG_KINDS = ("huge-sparse", "named-pipe", "directory", "missing")
LOG_ENTRIES = {
    "parse-log": lambda bad, ws: ["parse-log", bad],
    "import-train-log": lambda bad, ws: ["import", "--predictions", ws / "good/pred.npy", "--tests",
                                         ws / "good/tests.jsonl", "--train-log", bad, "--name", "new-run"],
}


@pytest.mark.parametrize("entry", TEXT_ENTRIES)
@pytest.mark.parametrize("kind", bad_inputs.TEXT)
def test_bad_text_file(workspace, capsys, kind, entry):
    if (kind, entry) in NOT_ERRORS:
        pytest.skip("not an error: data import reports and skips broken lines")
    bad = bad_inputs.TEXT[kind](workspace / "bad")
    run_in_process(f"{kind} | {entry}", TEXT_ENTRIES[entry](bad, workspace), bad, workspace, capsys)


@pytest.mark.parametrize("entry", NPY_ENTRIES)
@pytest.mark.parametrize("kind", bad_inputs.NPY)
def test_bad_prediction_file(workspace, capsys, kind, entry):
    bad = bad_inputs.NPY[kind](workspace / "bad")
    run_in_process(f"{kind} (.npy) | {entry}", NPY_ENTRIES[entry](bad, workspace), bad,
                   workspace, capsys)


@pytest.mark.parametrize("entry", LOG_ENTRIES)
@pytest.mark.parametrize("kind", LOG_KINDS)
def test_bad_log_file(workspace, capsys, kind, entry):
    bad = bad_inputs.TEXT[kind](workspace / "bad")
    run_in_process(f"{kind} (log) | {entry}", LOG_ENTRIES[entry](bad, workspace), bad,
                   workspace, capsys)


# ---------------------------------------------------------------- endless input, real process
DEV_ZERO_ENTRIES = {
    "score-math tests": lambda ws: ["score-math", ws / "good/pred.npy", "/dev/zero"],
    "score-math predictions": lambda ws: ["score-math", "/dev/zero", ws / "good/tests.jsonl"],
    "classify": lambda ws: ["classify", "/dev/zero"],
    "import tests": lambda ws: ["import", "--predictions", ws / "good/pred.npy", "--tests",
                                "/dev/zero", "--name", "new-run"],
    "import predictions": lambda ws: ["import", "--predictions", "/dev/zero", "--tests",
                                      ws / "good/tests.jsonl", "--name", "new-run"],
    "data-import": lambda ws: ["data", "import", "/dev/zero"],
    "score-squad": lambda ws: ["score-squad", "/dev/zero", "--squad", ws / "good/squad.jsonl"],
    "parse-log": lambda ws: ["parse-log", "/dev/zero"],
}


@pytest.mark.parametrize("entry", DEV_ZERO_ENTRIES)
def test_dev_zero_is_refused_in_a_real_process(workspace, entry):
    """/dev/zero never ends: a reader that tried would grow until killed. The process runs
    under a 4 GiB address-space limit and must finish quickly, small."""
    before = snapshot(workspace)
    code, out, err, rss, seconds = run_process(DEV_ZERO_ENTRIES[entry](workspace), workspace)
    line = check_error(f"/dev/zero | {entry}", code, out, err, "/dev/zero")
    assert "not a regular file" in line
    assert rss < (1 << 30) and seconds < 60
    assert snapshot(workspace) == before


# ---------------------------------------------------------------- evaluate on a damaged run
def _tests_gbk(run):
    with open(run / "tests_math.jsonl", "ab") as fh:
        fh.write(bad_inputs.GBK_ROW + b"\n")
    return run / "tests_math.jsonl"


def _tests_dev_zero(run):
    (run / "tests_math.jsonl").unlink()
    os.symlink("/dev/zero", run / "tests_math.jsonl")
    return run / "tests_math.jsonl"


def _predictions(kind):
    def plant(run):
        made = bad_inputs.NPY[kind](run)
        os.replace(made, run / "predictions_math.npy")
        return run / "predictions_math.npy"
    return plant


def _one_test_row_less(run):
    lines = (run / "tests_math.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (run / "tests_math.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    return run / "predictions_math.npy"


def _manifest_gbk(run):
    (run / "manifest.json").write_bytes('{"kind": "导入"}'.encode("gbk"))
    return run / "manifest.json"


def _manifest_not_json(run):
    (run / "manifest.json").write_text('{"kind": ', encoding="utf-8")
    return run / "manifest.json"


EVALUATE_DAMAGE = {
    "tests-gbk-line": _tests_gbk,
    "tests-symlink-to-dev-zero": _tests_dev_zero,
    "predictions-header-1e12-rows": _predictions("header-1e12-rows-unicode"),
    "predictions-malicious-pickle": _predictions("malicious-pickle"),
    "predictions-3-D": _predictions("3-D"),
    "predictions-truncated": _predictions("truncated"),
    "count-mismatch": _one_test_row_less,
    "manifest-gbk": _manifest_gbk,
    "manifest-not-json": _manifest_not_json,
}


@pytest.mark.parametrize("damage", EVALUATE_DAMAGE)
def test_evaluate_damaged_run(workspace, capsys, damage):
    names = EVALUATE_DAMAGE[damage](workspace / "results" / RUN)
    run_in_process(f"{damage} | evaluate", ["evaluate", "--run", RUN], names, workspace, capsys)


# ---------------------------------------------------------------- the disk says no
def _read_only(monkeypatch):
    """Running as root, chmod does not stop writes: creating the temp file raises the
    OSError a read-only file system raises."""
    def refuse(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def _disk_full(monkeypatch):
    """A full disk fails the write itself (ENOSPC), after the temp file was created."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fdopen(fd, mode="r", *args, **kwargs):
        fh = real_fdopen(fd, mode, *args, **kwargs)
        return Full(fh) if "w" in mode else fh
    monkeypatch.setattr(os, "fdopen", fdopen)


DISK = {"read-only-folder": _read_only, "disk-full": _disk_full}
WRITERS = {
    "evaluate": (lambda ws: ["evaluate", "--run", RUN],
                 lambda ws: ws / "results" / RUN / "samples_math.jsonl"),
    "score-math --samples": (lambda ws: ["score-math", ws / "good/pred.npy", ws / "good/tests.jsonl",
                                         "--samples", ws / "good/samples.jsonl"],
                             lambda ws: ws / "good/samples.jsonl"),
    "data-import --out": (lambda ws: ["data", "import", ws / "good/train.jsonl", "--out",
                                      ws / "good/rows.jsonl"],
                          lambda ws: ws / "good/rows.jsonl"),
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("disk", DISK)
def test_write_failure_is_one_line_and_leaves_nothing(workspace, capsys, monkeypatch, disk, writer):
    argv, target = WRITERS[writer]
    DISK[disk](monkeypatch)
    line = run_in_process(f"{disk} | {writer}", argv(workspace), target(workspace), workspace, capsys)
    assert ("disk is full" in line) if disk == "disk-full" else ("make the folder writable" in line)


def test_evaluate_with_a_directory_where_metrics_go(workspace, capsys):
    """metrics.json is a folder: one line naming it. The samples written before it are the
    same bytes as before (rescoring is deterministic), so the run still looks unchanged."""
    from pipeline.evaluate import evaluate
    run = workspace / "results" / RUN
    evaluate(run)  # current samples first: the fixture's were scored by an older version
    (run / "metrics.json").unlink()
    (run / "metrics.json").mkdir()
    run_in_process("directory at metrics.json | evaluate", ["evaluate", "--run", RUN],
                   run / "metrics.json", workspace, capsys)


# ---------------------------------------------------------------- planted temp names
@pytest.mark.parametrize("planted", ["symlink", "directory"])
def test_a_planted_temp_name_is_never_used(workspace, capsys, planted):
    """The old fixed temp name (<file>.tmp) as a symlink to a file elsewhere, or as a folder:
    evaluate writes its own unique temp files, the target of the link stays as it was."""
    run = workspace / "results" / RUN
    victim = workspace / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    for name in ("metrics.json.tmp", "samples_math.jsonl.tmp", "manifest.json.tmp"):
        if planted == "symlink":
            os.symlink(victim, run / name)
        else:
            (run / name).mkdir()
    from pipeline.__main__ import main
    assert main(["evaluate", "--run", RUN, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["run_id"] == RUN
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert (run / "metrics.json").is_file() and not (run / "metrics.json").is_symlink()
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp file left
    record(f"planted {planted} at <file>.tmp | evaluate", "(succeeds; the planted name is left alone)")


# ---------------------------------------------------------------- length mismatches
def test_length_mismatch_score_math(workspace, capsys):
    rows = (workspace / "good/tests.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    short = workspace / "bad/short.jsonl"
    short.write_text("".join(rows[:-1]), encoding="utf-8")
    line = run_in_process("count mismatch | score-math",
                          ["score-math", workspace / "good/pred.npy", short], short, workspace, capsys)
    assert "96 predictions" in line and "95 test rows" in line


def test_length_mismatch_import(workspace, capsys):
    rows = (workspace / "good/tests.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    short = workspace / "bad/short.jsonl"
    short.write_text("".join(rows[:-1]), encoding="utf-8")
    line = run_in_process("count mismatch | import",
                          ["import", "--predictions", workspace / "good/pred.npy", "--tests", short,
                           "--name", "new-run"], short, workspace, capsys)
    assert "must match one to one" in line


def test_length_mismatch_score_squad(workspace, capsys):
    texts = [str(t) for t in np.load(workspace / "good/squad_pred.npy")]
    short = workspace / "bad/short.npy"
    np.save(short, np.array(texts[:-1]))
    line = run_in_process("count mismatch | score-squad",
                          ["score-squad", short, "--squad", workspace / "good/squad.jsonl"],
                          short, workspace, capsys)
    assert "--partial" in line


# ---------------------------------------------------------------- limits are settings
def test_limits_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_MAX_LINE_MB", "1")
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"problem": "' + b"1" * (2 << 20) + b'"}\n')
    with pytest.raises(fileio.PipelineError, match="line 1 is longer than 1 MiB"):
        list(fileio.iter_text_lines(path))
    monkeypatch.setenv("PIPELINE_MAX_FILE_MB", "1")
    with pytest.raises(fileio.PipelineError, match="over the 1 MiB limit"):
        fileio.read_bytes(path)
    monkeypatch.setenv("PIPELINE_MAX_FILE_MB", "lots")
    with pytest.raises(fileio.PipelineError, match="PIPELINE_MAX_FILE_MB must be a whole number"):
        fileio.read_bytes(path)


def test_written_files_keep_the_usual_permissions(tmp_path):
    fileio.atomic_write(tmp_path / "a.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
