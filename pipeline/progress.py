"""Progress for long work: a tqdm bar on the console, mirrored to a JSON file.

When the environment variable PIPELINE_PROGRESS_FILE names a file (the
dashboard's background jobs set it to <run>/progress.json), every update also
rewrites that file with {stage, done, total, elapsed_s, eta_s, rate, updated}
so a page can show a live progress bar without parsing the console.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tqdm.auto import tqdm

_MIN_WRITE_INTERVAL_S = 0.5


class Progress:
    """Use like tqdm: ``with Progress(total, "infer math") as bar: bar.update(n)``."""

    def __init__(self, total: int | None, stage: str, unit: str = "it", initial: int = 0,
                 disable: bool | None = None):
        self.stage = stage
        self.total = total
        self.done = initial
        self._start = time.monotonic()
        self._last_write = 0.0
        self._file = os.environ.get("PIPELINE_PROGRESS_FILE")
        self._bar = tqdm(total=total, desc=stage, unit=unit, initial=initial,
                         dynamic_ncols=True, disable=disable)
        self._write(force=True)

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        self._bar.update(n)
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        self._write(extra=postfix)

    def _write(self, force: bool = False, extra: dict | None = None, status: str = "running") -> None:
        if not self._file:
            return
        now = time.monotonic()
        if not force and now - self._last_write < _MIN_WRITE_INTERVAL_S:
            return
        self._last_write = now
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) if self.total else None
        eta = remaining / rate if (remaining is not None and rate > 0) else None
        payload = {"stage": self.stage, "done": self.done, "total": self.total,
                   "elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta, 1),
                   "rate": round(rate, 3), "status": status, "updated": time.time()}
        if extra:
            payload["extra"] = {k: (v if isinstance(v, (int, float, str)) else str(v))
                                for k, v in extra.items()}
        from pipeline.errors import PipelineError
        from pipeline.fileio import atomic_write
        try:
            atomic_write(Path(self._file), json.dumps(payload))
        except PipelineError:
            pass  # progress is best effort; never kill the work for it

    def close(self) -> None:
        self._write(force=True, status="finished")
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
