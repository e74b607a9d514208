"""Bounded reads and safe writes: what every reader of a user's file and every run-folder
writer goes through, so a bad file is one clear PipelineError and never a traceback.

Reading: only regular files are opened (a device such as /dev/zero, a pipe or a socket is
refused before a byte is read; a pipe is opened non-blocking so the open cannot hang), a
file larger than ``max_file_bytes()`` is refused from its size, one line may take at most
``max_line_bytes()``, and text that is not UTF-8 is reported by line and byte.

Writing: ``atomic_write`` writes a temp file with a unique name created exclusively in the
target's folder (``O_EXCL | O_NOFOLLOW``: a planted symlink is never followed), then
``os.replace`` puts it in place, so concurrent writers never share a temp file and readers
see the old or the new file, never half of one. OS errors (read-only folder, full disk, a
directory in the way) become PipelineErrors that say what to do.

Limits can be raised for unusual data with PIPELINE_MAX_FILE_MB / PIPELINE_MAX_LINE_MB.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from pipeline.errors import PipelineError

_MIB = 1 << 20
_BOM = b"\xef\xbb\xbf"


def _limit_mb(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        raise PipelineError(f"{name} must be a whole number of MiB, got {os.environ[name]!r}") from None
    return max(1, value) * _MIB


def max_file_bytes() -> int:
    """Largest file any reader accepts (default 1 GiB; contest files are a few MB)."""
    return _limit_mb("PIPELINE_MAX_FILE_MB", 1024)


def max_line_bytes() -> int:
    """Longest line of a JSON Lines file (default 16 MiB; a SQuAD row is a few KB)."""
    return _limit_mb("PIPELINE_MAX_LINE_MB", 16)


def _size(n: int) -> str:
    return f"{n / _MIB:,.0f} MiB" if n >= _MIB else f"{n:,} bytes"


def open_regular(path, what: str = "file"):
    """Open a regular file for binary reading after checking kind and size.

    Raises PipelineError naming the file: missing, a directory, not a regular file
    (device, pipe, socket), unreadable, or larger than max_file_bytes().
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PipelineError("file not found", path) from None
    except PermissionError:
        raise PipelineError(f"cannot read the {what}: permission denied", path) from None
    except OSError as exc:
        raise PipelineError(f"cannot open the {what} ({exc.strerror})", path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise PipelineError(f"is a directory, expected a {what}", path)
        if not stat.S_ISREG(info.st_mode):
            raise PipelineError(f"is not a regular file (a device, pipe or socket); "
                                f"give a {what} on disk", path)
        if info.st_size > max_file_bytes():
            raise PipelineError(
                f"is {_size(info.st_size)}, over the {_size(max_file_bytes())} limit for a {what}; "
                "check it is the right file (PIPELINE_MAX_FILE_MB raises the limit)", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _decode(raw: bytes, path: Path, line_no: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(
            f"line {line_no}: not UTF-8 text (byte {exc.start + 1} of the line is "
            f"0x{raw[exc.start]:02x}); save the file as UTF-8, e.g. "
            "iconv -f GBK -t UTF-8 IN > OUT", path) from None


def iter_text_lines(path, what: str = "file") -> Iterator[tuple[int, str]]:
    """(line number from 1, line text with its newline) of a UTF-8 text file, BOM dropped.

    Memory stays within one line. Raises PipelineError as open_regular does, and for a line
    over max_line_bytes() or one that is not UTF-8 (naming the line and byte).
    """
    path = Path(path)
    cap, total_cap, total = max_line_bytes(), max_file_bytes(), 0
    with open_regular(path, what) as fh:
        line_no = 0
        while True:
            try:
                raw = fh.readline(cap + 1)
            except OSError as exc:
                raise PipelineError(f"cannot read the {what} ({exc.strerror})", path) from None
            if not raw:
                return
            line_no += 1
            total += len(raw)
            if len(raw) > cap:
                raise PipelineError(f"line {line_no} is longer than {_size(cap)}; one line should "
                                    "hold one JSON row (PIPELINE_MAX_LINE_MB raises the limit)", path)
            if total > total_cap:  # a file that grows while we read it
                raise PipelineError(f"grew past {_size(total_cap)} while being read", path)
            if line_no == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            yield line_no, _decode(raw, path, line_no)


def read_bytes(path, what: str = "file") -> bytes:
    """A whole regular file's bytes within max_file_bytes(); PipelineError as open_regular."""
    path = Path(path)
    cap = max_file_bytes()
    with open_regular(path, what) as fh:
        try:
            data = fh.read(cap + 1)
        except OSError as exc:
            raise PipelineError(f"cannot read the {what} ({exc.strerror})", path) from None
    if len(data) > cap:
        raise PipelineError(f"grew past {_size(cap)} while being read", path)
    return data


def read_text(path, what: str = "file", errors: str = "strict") -> str:
    """A whole UTF-8 text file (BOM dropped). With errors="strict" a bad byte is a
    PipelineError naming its line; errors="replace" keeps going (logs)."""
    path = Path(path)
    data = read_bytes(path, what)
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_no = data.count(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        _decode(data[line_start:line_end if line_end >= 0 else len(data)], path, line_no)
        raise  # pragma: no cover - _decode raised for the same bytes


def write_error(exc: OSError, path) -> PipelineError:
    """The user-facing error for an OSError while writing `path`."""
    path = Path(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return PipelineError("the disk is full (nothing was changed); free some space and run "
                             "the command again", path)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PipelineError(f"cannot write here ({exc.strerror}); make the folder writable, "
                             "or work in a copy of it somewhere you can write", path)
    if code == errno.EISDIR or isinstance(exc, IsADirectoryError):
        return PipelineError("a directory is in the way of this file; move it aside and run "
                             "again", path)
    if code == errno.ENOENT:
        return PipelineError("its folder does not exist (was the run removed meanwhile?)", path)
    return PipelineError(f"cannot write ({exc.strerror or exc})", path)


def _mode_for_new_files() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _mode_for_new_files()


def atomic_write(path, content: bytes | str | Callable) -> None:
    """Replace `path` with `content` (bytes, str as UTF-8, or a callable given the binary file).

    A unique temp file in the same folder is created exclusively, never through a symlink,
    then renamed over `path`; on any failure it is removed and `path` is left as it was.
    Raises PipelineError (write_error) for OS errors.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(tmp, _NEW_FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(exc, path) from None
        raise


@contextmanager
def folder_lock(folder) -> Iterator[None]:
    """Exclusive lock on a folder (flock on the directory itself: no lock file is created),
    held while the block runs; another process asking for it waits."""
    folder = Path(folder)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise PipelineError(f"cannot open the folder ({exc.strerror})", folder) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
