"""Our own CPU kernel for decoding: a float32 matmul against weights packed in column blocks.

``packed_matmul_library()`` compiles ``packed_matmul.cc`` once per machine (g++ -O3
-march=native -fopenmp, about a second) into the model cache and returns the library, or
None where it cannot: then the decoder uses MindSpore's own MatMul, with the same tokens up to
float rounding, only slower. ``PIPELINE_DECODE_KERNEL=mindspore`` chooses MindSpore's MatMul
on purpose (the benches compare the two). Why the kernel exists: packed_matmul.cc's header.

Imports MindSpore only in ``packed_matmul_op()``.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

BLOCK = 32          # columns per packed block; packed_matmul.cc's BLOCK
SOURCE = Path(__file__).with_name("packed_matmul.cc")
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17"]
ENV = "PIPELINE_DECODE_KERNEL"      # "mindspore": never use this kernel

_built: dict[str, Path | None] = {}
last_error: str | None = None       # why a *_library() returned None, for logs


def _cpu_signature() -> str:
    """What -march=native compiles for: the CPU model and its flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    keep = [line for line in text.splitlines() if line.startswith(("model name", "flags"))][:2]
    return "\n".join(keep)


def kernel_wanted() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("mindspore", "off", "0")


def packed_matmul_library() -> Path | None:
    """The compiled kernel (built on first use, then reused), or None with ``last_error`` set
    when it is switched off or cannot be built (no g++, a compile error, not x86/arm Linux)."""
    global last_error
    if not kernel_wanted():
        last_error = f"{ENV} chooses MindSpore's MatMul"
        return None
    return compiled_library(SOURCE, FLAGS)


def compiled_library(source_path: Path, flags: list[str]) -> Path | None:
    """`source_path` compiled with g++ `flags` into the model cache, once per source, flags
    and CPU (the .so is reused after that); None with ``last_error`` set where it cannot be."""
    global last_error
    compiler = shutil.which("g++")
    if compiler is None:
        last_error = "no g++ on PATH"
        return None
    source = source_path.read_bytes()
    key = hashlib.sha256(source + " ".join(flags).encode() + _cpu_signature().encode()).hexdigest()[:16]
    if key in _built:
        return _built[key]
    try:
        _built[key] = _compile(compiler, source_path, flags, key)
    except (OSError, subprocess.SubprocessError) as exc:   # a read-only cache, a killed g++
        last_error = f"could not build {source_path.name}: {exc}"
        _built[key] = None
    return _built[key]


def _compile(compiler: str, source: Path, flags: list[str], key: str) -> Path | None:
    global last_error
    from pipeline.model.tokenizer import cache_dir
    target = cache_dir() / "kernels" / f"{source.stem}-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    proc = subprocess.run([compiler, *flags, "-o", tmp, str(source)], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        os.unlink(tmp)
        last_error = f"g++ failed on {source}: {proc.stderr.strip()[-500:]}"
        return None
    os.replace(tmp, target)   # atomic: a concurrent process sees no file or the whole file
    return target


def pack(weight: np.ndarray) -> np.ndarray:
    """[K, N] float32 -> [N / BLOCK, K, BLOCK], contiguous; N must divide by BLOCK."""
    k, n = weight.shape
    if n % BLOCK:
        raise ValueError(f"{n} columns do not divide into blocks of {BLOCK}")
    return np.ascontiguousarray(weight.reshape(k, n // BLOCK, BLOCK).transpose(1, 0, 2), np.float32)


def packed_rows(packed: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows `ids` of the [K, N] matrix's transpose, read from its packed form: the embedding
    lookup of a tied table that is stored only packed (for the output head)."""
    ids = np.asarray(ids).reshape(-1)
    return np.ascontiguousarray(packed[ids // BLOCK, :, ids % BLOCK])


class PackedOps:
    """The kernel's MindSpore ops (fresh instances for one cell), weights W packed:
    mm(x, W) = x @ W; norm_mm(x, eps, W) = rmsnorm(x) @ W; mm_add(x, W, r) = r + x @ W;
    norm_gate(x, eps, W13) = silu(rmsnorm(x) @ W1) * (rmsnorm(x) @ W3) for W13 = [W1 | W3].
    x [M, K] float32, eps a [1] float32 Tensor; rmsnorm has no weight (fold it into W)."""

    def __init__(self, library: Path):
        from mindspore import ops

        def op(name, width):
            return ops.Custom(f"{library}:{name}", out_shape=width,
                              out_dtype=lambda x, *rest: x, func_type="aot")
        self.mm = op("PackedMatMul", lambda x, w: (x[0], w[0] * w[2]))
        self.norm_mm = op("NormMatMul", lambda x, eps, w: (x[0], w[0] * w[2]))
        self.mm_add = op("MatMulAdd", lambda x, w, r: (x[0], w[0] * w[2]))
        self.norm_gate = op("NormGateUp", lambda x, eps, w: (x[0], w[0] * w[2] // 2))
