"""Shared setup of the reliability catalogue: a workspace holding a copy of the fixture runs
(results/) and good input files (good/), and a check that a case changed none of it."""
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from pipeline import runs

REPO = Path(__file__).resolve().parents[2]
FIXTURE_RUNS = REPO / "tests" / "fixtures" / "runs"
RUN = "npu-llama3-r8"


def snapshot(root: Path) -> dict:
    """path -> what it is: small files by content hash, big ones by size and mtime (a 3 GiB
    sparse file is not read), links by target, folders and pipes by kind."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                out[rel] = (("file", hashlib.sha256(path.read_bytes()).hexdigest(), info.st_mode)
                            if info.st_size < (1 << 20) else ("big", info.st_size, info.st_mtime_ns))
            else:
                out[rel] = ("kind", stat.S_IFMT(info.st_mode))
    return out


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """tmp_path/results (the fixture runs, PIPELINE_RESULTS) and tmp_path/good (good files);
    cwd is tmp_path so a pickle that ran a shell command would leave PWNED there."""
    results = tmp_path / "results"
    shutil.copytree(FIXTURE_RUNS, results)
    monkeypatch.setenv("PIPELINE_RESULTS", str(results))
    monkeypatch.setattr(runs, "RESULTS_DIR", results)
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good"
    good.mkdir()
    run = results / RUN
    shutil.copy(run / "tests_math.jsonl", good / "tests.jsonl")
    shutil.copy(run / "predictions_math.npy", good / "pred.npy")
    shutil.copy(run / "tests_squad.jsonl", good / "squad.jsonl")
    shutil.copy(run / "train.log", good / "train.log")
    squad = [json.loads(line) for line in (good / "squad.jsonl").read_text().splitlines()]
    np.save(good / "squad_pred.npy", np.array([r["prompt"] + " " + r["answers"][0] for r in squad]))
    (good / "train.jsonl").write_text(
        json.dumps({"problem": "计算 1 + 2", "solution": "3"}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    bad = tmp_path / "bad"
    bad.mkdir()
    return tmp_path
