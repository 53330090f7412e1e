"""Pickle-free model files: JSON architecture + weights in one ``.npz`` archive.

A model file (``Sequential.save``, read by ``fastnn.load_model``) holds (NumPy
``.npz``, a zip of ``.npy`` arrays, read with ``allow_pickle=False``):

* ``fastnn_model``: UTF-8 JSON as a ``uint8`` array -- ``{"format": "fastnn.Sequential",
  "format_version": 2, "fastnn_version", "config": Sequential.get_config(),
  "compile": {"loss", "metrics", "optimizer": {"name", "config", "iterations"}} or null}``
  (format version 1 files, whose layer list holds ``Dense`` arguments, still load);
* ``W_<l>``, ``b_<l>``: Dense layer ``l``'s weights (``b`` is zeros for ``use_bias=False``);
* ``opt_<p>_<s>``: optimizer state array ``s`` of parameter ``p`` (order ``W0, b0, ...``),
  so a loaded model continues training exactly where the saved one stopped.

A weights file (``save_weights``/``load_weights``) holds ``W_<l>``, ``b_<l>`` and a
``fastnn_weights`` JSON entry naming the layers.

**Paths.**  fastnn writes NumPy archives, not Keras files: a path without a suffix
gets ``.npz`` appended (as :func:`numpy.savez` does), and a Keras suffix (``.keras``,
``.h5``, ``.hdf5``) is refused with a message rather than silently writing an
``.npz`` under that name.  Other suffixes are written as given.

**Atomic writes.**  The file is written to a temporary file in the target directory,
flushed to disk and renamed over the path (:func:`os.replace`, atomic on POSIX and
Windows), so a crash leaves either the old file or the new one, never half of one.
The new file gets the permissions the umask gives any new file.  Loading checks
everything (format tag and version, JSON schema, array names, shapes, dtypes,
finiteness) before building the model; any problem raises ``ValueError`` naming the
file and what is wrong.

This module knows the file format only; ``fastnn.model`` builds models from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT = "fastnn.Sequential"
FORMAT_VERSION = 2
WEIGHTS_FORMAT = "fastnn.weights"
META = "fastnn_model"
WEIGHTS_META = "fastnn_weights"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


class FileError(ValueError):
    """What is wrong with a file being loaded (wrapped with its path by :func:`loading`)."""


def expect(cond, message) -> None:
    if not cond:
        raise FileError(message)


@contextlib.contextmanager
def loading(path: str, what: str = "a fastnn model"):
    """Turn a :class:`FileError` inside into ``ValueError("cannot load <path> as ...")``."""
    try:
        yield
    except FileError as exc:
        raise ValueError(f"cannot load {path!r} as {what}: {exc}") from None


def resolve_path(path, what: str = "model") -> str:
    """The path written for ``path``: ``.npz`` appended without a suffix; Keras suffixes refused."""
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    base = os.path.basename(path)
    lower = base.lower()
    if lower.endswith(KERAS_SUFFIXES):
        example = "model.weights.npz" if what == "weights" else "model.npz"
        raise ValueError(
            f"cannot save the {what} to {path!r}: fastnn writes pickle-free NumPy .npz "
            f"archives, not Keras {os.path.splitext(lower)[1]} files; use a path ending in "
            f".npz (e.g. {example!r})"
        )
    if not os.path.splitext(base)[1]:
        path += ".npz"
    return path


def existing_path(path) -> str:
    """``path`` to read: as given, or with ``.npz`` appended when only that exists."""
    path = os.fspath(path)
    if not os.path.exists(path) and not os.path.splitext(path)[1] and os.path.exists(path + ".npz"):
        return path + ".npz"
    return path


def _new_file_mode() -> int:
    # os.umask can only be read by setting it; restore at once.
    mask = os.umask(0o22)
    os.umask(mask)
    return 0o666 & ~mask


def write_archive(path: str, arrays: dict) -> None:
    """Write ``arrays`` as an ``.npz`` at ``path`` atomically (see the module doc)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot save to {path!r}: the directory {directory!r} does not exist"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fastnn-", suffix=".tmp")
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot save to {path!r}: {exc.strerror}") from None
    try:
        # mkstemp creates the file 0600; give it the mode of any new file instead.
        os.chmod(tmp, _new_file_mode())
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def encode_json(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def read_archive(path: str) -> dict[str, np.ndarray]:
    """Every array of the archive, or a FileError saying why it is not readable."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise FileError("it is not a NumPy .npz archive") from None
        raise FileError(f"it is not a readable .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FileError(f"it is not a readable .npz archive ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise FileError("it holds a single .npy array, not a fastnn archive")
    arrays = {}
    with data:
        for key in data.files:
            arrays[key] = _read_member(data, key)
    return arrays


def _read_member(data, key):
    try:
        return data[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise FileError(
                f"array {key!r} holds Python objects, which are never loaded (allow_pickle=False)"
            ) from None
        raise FileError(f"array {key!r} is corrupt ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise FileError(f"array {key!r} is truncated or corrupt ({exc})") from None


def decode_meta(arrays: dict, key: str, fmt: str, version: int, what="fastnn model") -> dict:
    """Pop and parse the JSON entry ``key``; check its format tag and version."""
    expect(key in arrays, f"it has no {key!r} entry (not a {what} file)")
    raw = arrays.pop(key)
    expect(raw.dtype == np.uint8 and raw.ndim == 1, f"its {key!r} entry is malformed")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileError(f"its architecture JSON is corrupt ({exc})") from None
    expect(isinstance(meta, dict) and meta.get("format") == fmt, f"not a {what}")
    found = meta.get("format_version")
    expect(isinstance(found, int), "its format version is missing")
    expect(
        found <= version,
        f"it uses format version {found}, newer than this fastnn reads ({version}); upgrade fastnn",
    )
    return meta


def take_array(arrays: dict, name: str, shape, dtype, what: str = "array") -> np.ndarray:
    """Pop ``arrays[name]`` after checking its shape, dtype and finiteness."""
    A = arrays.pop(name, None)
    expect(A is not None, f"{what} {name!r} is missing")
    expect(
        A.dtype == dtype and A.shape == tuple(shape),
        f"{what} {name!r} has shape {A.shape} and dtype {A.dtype}, expected "
        f"{tuple(shape)} and {dtype}",
    )
    expect(np.isfinite(A).all(), f"{what} {name!r} holds NaN or infinity")
    return A


def layer_arrays(dense) -> dict[str, np.ndarray]:
    """``W_<l>``, ``b_<l>`` of built Dense layers."""
    arrays = {}
    for l, layer in enumerate(dense):
        arrays[f"W_{l}"] = layer.W
        arrays[f"b_{l}"] = layer.b
    return arrays
