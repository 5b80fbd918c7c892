"""Opening files from strangers without running their code: label pickles, `.npy` and `.npz`.

A plain `pickle.load` or `np.load(allow_pickle=True)` executes whatever callable the file names,
and preprocessed skeleton datasets are routinely downloaded from other people. Here pickles go
through an unpickler that only rebuilds plain data (containers, strings, numbers, numpy arrays and
scalars) and arrays are always read with `allow_pickle=False`; anything else is a `DataError`
that names the file and what was refused.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray, numeric

from halp_bench.errors import DataError

PLAIN_TYPES = "tuples, lists, str, int, float, numpy arrays and scalars"


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """How pickle protocol <= 2 stores bytes (`_codecs.encode(text, 'latin1')`); any other codec is
    refused without being looked up (a lookup imports modules)."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


# The only globals a pickle may name: how numpy rebuilds arrays, dtypes and scalars under both
# module spellings (numpy 1 writes `numpy.core`, numpy 2 `numpy._core`), and latin-1 bytes.
_ALLOWED: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_encode}
for _module in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_module}.multiarray", "_reconstruct")] = multiarray._reconstruct
    _ALLOWED[(f"{_module}.multiarray", "scalar")] = multiarray.scalar
    _ALLOWED[(f"{_module}.numeric", "_frombuffer")] = numeric._frombuffer


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a callable or class outside the allow-list."""

    def __init__(self, module: str, name: str):
        self.qualified = f"{module}.{name}"
        super().__init__(self.qualified)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobal("<persistent id>", str(pid)[:60])


def load_plain_pickle(path: str | Path) -> Any:
    """Unpickle a file that should hold plain data only; a reference to anything else is refused
    before it is called, so opening a malicious file runs no code."""
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle).load()
    except RefusedGlobal as exc:
        raise DataError(
            path, f"refused to unpickle '{exc.qualified}': a label pickle may only hold {PLAIN_TYPES} (loading anything else could run code)"
        ) from None
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror}") from None
    except Exception as exc:  # a corrupt pickle fails in many ways (EOF, bad opcode, bad args)
        raise DataError(path, f"expected a pickle of plain data, cannot unpickle it ({type(exc).__name__}: {exc})") from None


def _load_error(path: str | Path, key: str | None, exc: Exception) -> DataError:
    """Say why numpy (with `allow_pickle=False`) would not load it; object data is named as refused."""
    where = f"key '{key}' " if key else ""
    text = str(exc)
    if "Object arrays" in text or "Python objects" in text:
        reason = "holds Python objects (dtype=object), which are refused: loading them could run code"
    elif "pickled" in text and _looks_pickled(path):
        reason = "is not a numpy array file but a pickle, which is refused: loading it could run code"
    elif "pickled" in text:  # numpy calls anything that is neither zip nor .npy a pickle
        reason = "is not a numpy file: neither an .npz (zip) archive nor an .npy array (is it text, or another format renamed?)"
    else:
        reason = f"cannot be read as a numpy array ({text})"
    return DataError(path, where + reason)


def _looks_pickled(path: str | Path) -> bool:
    """Whether a file starts as a pickle does (protocol 2 and later: 0x80 then the protocol number)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def load_npy(path: str | Path, mmap_mode: str | None = None) -> np.ndarray:
    """`np.load` of one `.npy` with `allow_pickle=False`; an object array or a bad file is a DataError."""
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError, EOFError) as exc:
        raise _load_error(path, None, exc) from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError(path, "expected a single .npy array, found an .npz archive")
    return array


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz`, read with `allow_pickle=False` (so into memory, as .npz members are)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _load_error(path, None, exc) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(path, "expected a .npz archive of named arrays, found a single .npy array")
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise _load_error(path, key, exc) from None
    return arrays
