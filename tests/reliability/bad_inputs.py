"""The bad inputs of the reliability catalogue, each built by a function of a folder.

Every builder returns the path to hand to an entry point. Text kinds stand for a tests /
data / SQuAD / log file; npy kinds for a prediction file. Huge files are sparse (no disk
used); /dev/zero and a named pipe stand for endless input.
"""
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np

GOOD_ROW = {"problem": "计算 1 + 2", "solution": "3"}
GBK_ROW = '{"problem": "计算 7 + 8", "solution": "15"}'.encode("gbk")


def _lines(folder: Path, name: str, *lines: bytes) -> Path:
    path = folder / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _good_line() -> bytes:
    return json.dumps(GOOD_ROW, ensure_ascii=False).encode("utf-8")


def _sparse(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def _fifo(folder: Path, name: str) -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def _dir(folder: Path, name: str) -> Path:
    path = folder / name
    path.mkdir()
    return path


# ---------------------------------------------------------------- text files (tests, data, logs)
TEXT = {
    "gbk-line": lambda d: _lines(d, "gbk.jsonl", _good_line(), GBK_ROW),
    "not-json-line": lambda d: _lines(d, "broken.jsonl", _good_line(), b'{"problem": "x", '),
    "empty-file": lambda d: _lines(d, "empty.jsonl", b""),
    "binary-garbage": lambda d: _lines(d, "garbage.jsonl", bytes(range(128, 256)) * 8),
    "deep-nesting": lambda d: _lines(d, "deep.jsonl", b"[" * 200_000 + b"]" * 200_000),
    "non-object-row": lambda d: _lines(d, "list.jsonl", b"[1, 2, 3]"),
    "missing-field": lambda d: _lines(d, "noproblem.jsonl", b'{"solution": "3"}'),
    "long-line": lambda d: _lines(d, "long.jsonl", b'{"problem": "' + b"9" * (17 << 20) + b'"}'),
    "huge-sparse": lambda d: _sparse(d, "huge.jsonl", 3 << 30),
    "named-pipe": lambda d: _fifo(d, "pipe.jsonl"),
    "directory": lambda d: _dir(d, "folder.jsonl"),
    "missing": lambda d: d / "absent.jsonl",
}


# ---------------------------------------------------------------- prediction .npy files
def _npy(folder: Path, name: str, array, allow_pickle=False) -> Path:
    path = folder / name
    np.save(path, array, allow_pickle=allow_pickle)
    return path


def _claimed_rows(folder: Path, name: str, descr: str, rows: int) -> Path:
    """A valid v1.0 header claiming `rows` rows, followed by a few bytes only."""
    header = repr({"descr": descr, "fortran_order": False, "shape": (rows,)}).encode("latin1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path = folder / name
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"x" * 64)
    return path


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _malicious(folder: Path) -> Path:
    payload = pickle.dumps(_RunsShell(), protocol=2)
    header = repr({"descr": "|O", "fortran_order": False, "shape": (1,)}).encode("latin1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path = folder / "evil.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload)
    return path


def _objects(values):
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _truncated(folder: Path) -> Path:
    path = _npy(folder, "cut.npy", _objects([{"text_generation_text": ["x" * 50]}] * 40), True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


NPY = {
    "header-1e12-rows-unicode": lambda d: _claimed_rows(d, "claims.npy", "<U133", 10**12),
    "header-1e12-rows-object": lambda d: _claimed_rows(d, "claims-obj.npy", "|O", 10**12),
    "3-D": lambda d: _npy(d, "cube.npy", np.array(["a"] * 8).reshape(2, 2, 2)),
    "N-by-K": lambda d: _npy(d, "table.npy", np.array(["a"] * 6).reshape(2, 3)),
    "0-D": lambda d: _npy(d, "scalar.npy", np.array("alone")),
    "numbers": lambda d: _npy(d, "numbers.npy", np.arange(4.0)),
    "object-numbers": lambda d: _npy(d, "objnum.npy", _objects([1, 2]), True),
    "dict-without-key": lambda d: _npy(d, "nokey.npy", _objects([{"text": ["a"]}]), True),
    "structured-dtype": lambda d: _npy(d, "struct.npy", np.zeros(2, dtype=[("a", "<U3"), ("b", "O")]), True),
    "non-utf8-bytes": lambda d: _npy(d, "gbk.npy", np.array(["计算".encode("gbk")])),
    "empty-array": lambda d: _npy(d, "nothing.npy", np.empty(0, dtype=object), True),
    "malicious-pickle": _malicious,
    "truncated": _truncated,
    "text-named-npy": lambda d: _lines(d, "text.npy", b"not numpy"),
    "huge-sparse": lambda d: _sparse(d, "huge.npy", 3 << 30),
    "named-pipe": lambda d: _fifo(d, "pipe.npy"),
    "directory": lambda d: _dir(d, "folder.npy"),
    "missing": lambda d: d / "absent.npy",
}
