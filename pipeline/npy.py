"""Contest prediction files (.npy) read without ever running code from them.

The contest's inference script saved MindFormers' ``Trainer.predict`` output with
``np.save``: a 1-D object array whose elements are ``{'text_generation_text': [str, ...]}``.
Loading that with ``np.load(allow_pickle=True)`` would unpickle arbitrary objects, i.e. run
whatever code the file names. Here the .npy header is parsed by hand and the pickle payload
goes through an unpickler that only admits the handful of numpy globals an object array of
dicts/lists/str needs; any other global is refused before it is resolved.

Plain ``<U`` (or ``|S`` UTF-8) string arrays are read with numpy's own non-pickle reader.
Besides the 1-D layout, MindFormers' SQuAD evaluation saves an (N, 1) string array; every
one-column or one-row layout is read in row order, anything else is refused by shape.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat

from pipeline import fileio
from pipeline.errors import PipelineError

TEXT_KEY = "text_generation_text"

try:  # numpy >= 2 moved the implementation; pickles name either module
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.multiarray import scalar as _np_scalar


def _string_scalar(dtype, *args):
    """numpy.core.multiarray.scalar, admitted only for str/bytes dtypes (no object payloads)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "US":
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r} is not allowed")
    return _np_scalar(dtype, *args)


def _latin1_encode(text, encoding="latin1"):
    """_codecs.encode as protocol-2 pickles use it for bytes: str -> bytes, nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed as encode(str, 'latin1')")
    return text.encode("latin1")


# (module, name) -> the object the payload gets. Everything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _string_scalar,
    ("numpy._core.multiarray", "scalar"): _string_scalar,
    ("_codecs", "encode"): _latin1_encode,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        self.qualname = f"{module}.{name}"
        super().__init__(f"forbidden global {self.qualname}")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(module, name) from None


def _read_header(fh, path: Path):
    """-> (shape, fortran_order, dtype) from a .npy header; PipelineError if it is not one."""
    try:
        version = npformat.read_magic(fh)
    except ValueError as exc:
        raise PipelineError(f"not an .npy file ({exc})", path) from exc
    try:
        if version == (1, 0):
            return npformat.read_array_header_1_0(fh)
        if version == (2, 0):
            return npformat.read_array_header_2_0(fh)
        if version == (3, 0) and hasattr(npformat, "_read_array_header"):
            return npformat._read_array_header(fh, version)
    except (ValueError, SyntaxError) as exc:
        raise PipelineError(f"corrupt .npy header ({exc})", path) from exc
    raise PipelineError(f"unsupported .npy format version {version[0]}.{version[1]}", path)


def _load_object_array(fh, path: Path, shape) -> np.ndarray:
    try:
        array = _RestrictedUnpickler(fh).load()
    except _ForbiddenGlobal as exc:
        raise PipelineError(
            f"refusing to load: the pickle references {exc.qualname} "
            f"(a contest prediction file holds only dicts, lists and strings)", path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as exc:
        raise PipelineError(f"corrupt pickle payload ({type(exc).__name__}: {exc}); the file is "
                            "cut short or damaged: copy it again from where it was made", path) from None
    if not isinstance(array, np.ndarray):
        raise PipelineError(f"pickle payload is a {type(array).__name__}, not an array", path)
    if array.shape != tuple(shape):
        raise PipelineError(f"payload shape {array.shape} differs from header shape {shape}", path)
    return array


def _element_texts(element, index: int, path: Path) -> list[str]:
    """The strings one prediction element holds, in order; PipelineError naming the index."""
    if isinstance(element, str):
        return [str(element)]
    if not isinstance(element, dict):
        raise PipelineError(
            f"element {index}: expected a dict with '{TEXT_KEY}', got {type(element).__name__}", path)
    if TEXT_KEY not in element:
        keys = ", ".join(repr(k) for k in list(element)[:5]) or "none"
        raise PipelineError(f"element {index}: no '{TEXT_KEY}' key (keys: {keys})", path)
    value = element[TEXT_KEY]
    if isinstance(value, str):
        return [str(value)]
    if not isinstance(value, list):
        raise PipelineError(
            f"element {index}: '{TEXT_KEY}' is a {type(value).__name__}, expected a list of str", path)
    for j, text in enumerate(value):
        if not isinstance(text, str):
            raise PipelineError(
                f"element {index}: '{TEXT_KEY}'[{j}] is a {type(text).__name__}, expected str", path)
    return [str(t) for t in value]


def _check_shape(shape, path: Path) -> None:
    """One prediction per row: 1-D, or 2-D with one column (N, 1) or one row (1, N)."""
    shape = tuple(shape)
    one_per_row = len(shape) == 1 or (len(shape) == 2 and 1 in shape)
    if not one_per_row:
        raise PipelineError(
            f"expected a 1-D array of predictions, or one column (N, 1) or one row (1, N); "
            f"got shape {shape}", path)
    if 0 in shape:
        raise PipelineError("the prediction array is empty", path)


def _check_payload_fits(shape, dtype: np.dtype, fh, path: Path) -> None:
    """Refuse a header whose shape the file cannot hold (it would allocate that much)."""
    count = int(np.prod(shape, dtype=object))
    available = os.fstat(fh.fileno()).st_size - fh.tell()
    needed = count * (1 if dtype.hasobject else dtype.itemsize)
    if needed > available:
        raise PipelineError(
            f"the header claims shape {tuple(shape)} of {dtype.str} ({needed:,} bytes) but the "
            f"file holds {max(available, 0):,} bytes after it: truncated or corrupt", path)


def load_predictions(path) -> list[str]:
    """Read a contest prediction .npy file into a flat list of strings.

    Input, each layout the contest's tools wrote: a 1-D array, or a 2-D one with one column
    (N, 1) (MindFormers' SQuAD evaluation) or one row (1, N), of ``<U``/``|S`` strings or of
    objects; an object element is ``{'text_generation_text': [str, ...]}`` (its list is
    flattened in order) or a bare str. Elements are taken in row order.
    Output: the texts (prompt + continuation, as written).
    Raises PipelineError naming the file for: a missing, non-regular or oversized file, a
    non-.npy file, a header whose shape the file cannot hold, a pickle that references any
    global outside the numpy array machinery (never executed), an element of the wrong shape
    (naming its index), any other shape (0-D, 3-D, N x K with K > 1) or an empty array, a
    non-string dtype.
    """
    path = Path(path)
    with fileio.open_regular(path, ".npy file") as fh:
        shape, fortran_order, dtype = _read_header(fh, path)
        _check_shape(shape, path)
        _check_payload_fits(shape, dtype, fh, path)
        if dtype.hasobject:
            if dtype != np.dtype(object):
                raise PipelineError(f"unsupported structured dtype {dtype}", path)
            array = _load_object_array(fh, path, shape)
        elif dtype.kind in "US":
            fh.seek(0)
            try:
                array = npformat.read_array(fh, allow_pickle=False)
            except (ValueError, OSError, MemoryError) as exc:
                raise PipelineError(f"corrupt string array ({exc})", path) from None
        else:
            raise PipelineError(f"dtype {dtype} holds no text; expected objects or strings "
                                f"(shape {tuple(shape)})", path)

    array = array.reshape(-1, order="C")  # row order, whatever the file's memory order
    if array.dtype.kind == "S":
        texts = []
        for index, raw in enumerate(array):
            try:
                texts.append(bytes(raw).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise PipelineError(f"element {index}: byte string is not UTF-8 ({exc.reason} "
                                    f"at byte {exc.start}); save the texts as UTF-8", path) from None
        return texts
    if array.dtype.kind == "U":
        return [str(s) for s in array]
    texts: list[str] = []
    for index, element in enumerate(array):
        texts.extend(_element_texts(element, index, path))
    return texts


def save_predictions(path, texts: list[str]) -> None:
    """Write texts in the contest format: a 1-D object array of ``{'text_generation_text': [t]}``.

    Written to a unique temp file then renamed (pipeline.fileio.atomic_write), so a crash
    never leaves a half file. Raises PipelineError for an empty list, a non-str entry, or
    an OS error while writing (read-only folder, full disk).
    """
    path = Path(path)
    texts = list(texts)
    if not texts:
        raise PipelineError("refusing to write an empty prediction file", path)
    array = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise PipelineError(f"prediction {i} is a {type(text).__name__}, expected str", path)
        array[i] = {TEXT_KEY: [text]}
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    fileio.atomic_write(path, buffer.getvalue())
