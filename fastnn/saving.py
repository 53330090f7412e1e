"""Pickle-free model files: JSON architecture + weights in one ``.npz`` archive.

A file holds (NumPy ``.npz``, a zip of ``.npy`` arrays, read with
``allow_pickle=False``):

* ``fastnn_model``: UTF-8 JSON as a ``uint8`` array -- ``{"format": "fastnn.Sequential",
  "format_version": 1, "fastnn_version", "config": {dtype, seed, input_dim, layers},
  "compile": {"loss", "metrics", "optimizer": {"name", "config", "iterations"}} or null}``;
* ``W_<l>``, ``b_<l>``: each layer's weights (``b`` is zeros for ``use_bias=False``);
* ``opt_<p>_<s>``: optimizer state array ``s`` of parameter ``p`` (order ``W0, b0, ...``),
  so a loaded model continues training exactly where the saved one stopped.

The file is written to a temporary file in the target directory, flushed to disk
and then renamed over ``path`` (:func:`os.replace`, atomic on POSIX and Windows),
so a crash leaves either the old file or the new one, never half of one.
Loading checks everything (format tag and version, JSON schema, array names,
shapes, dtypes, finiteness) before building the model; any problem raises
``ValueError`` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT = "fastnn.Sequential"
FORMAT_VERSION = 1
_META = "fastnn_model"


def save_model(model, path) -> None:
    """Write ``model`` (built) to ``path``; see the module doc for the format."""
    from . import __version__
    from .model import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"save_model saves a fastnn.Sequential, got {type(model).__name__}")
    if not model.built:
        raise ValueError(
            "the model is not built yet (it has no weights to save): call build(input_dim), "
            "fit or predict first"
        )
    path = os.fspath(path)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastnn_version": __version__,
        "config": model.get_config(),
        "compile": None,
    }
    arrays = {}
    for l, layer in enumerate(model.layers):
        arrays[f"W_{l}"] = layer.W
        arrays[f"b_{l}"] = layer.b
    opt = model.optimizer
    if opt is not None:
        meta["compile"] = {
            "loss": model.loss,
            "metrics": list(model.metrics),
            "optimizer": {
                "name": opt.name,
                "config": opt.get_config(),
                "iterations": int(opt.iterations) if opt.state is not None else 0,
            },
        }
        if opt.state is not None:
            for p, S in enumerate(opt.state):
                for s, A in enumerate(S):
                    arrays[f"opt_{p}_{s}"] = A
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fastnn-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class _Bad(ValueError):
    pass


def _read_archive(path: str) -> dict[str, np.ndarray]:
    """Every array of the archive, or a ValueError saying why it is not readable."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _Bad("it is not a NumPy .npz archive") from None
        raise _Bad(f"it is not a readable .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _Bad(f"it is not a readable .npz archive ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _Bad("it holds a single .npy array, not a fastnn model archive")
    arrays = {}
    with data:
        for key in data.files:
            try:
                arrays[key] = data[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise _Bad(
                        f"array {key!r} holds Python objects, which are never loaded "
                        "(allow_pickle=False)"
                    ) from None
                raise _Bad(f"array {key!r} is corrupt ({exc})") from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise _Bad(f"array {key!r} is truncated or corrupt ({exc})") from None
    return arrays


def _expect(cond, message):
    if not cond:
        raise _Bad(message)


def load_model(path, backend=None):
    """Load a model written by :func:`save_model` / ``Sequential.save``.

    ``backend``: the loaded model's ``backend`` (None: the current backend at each
    call); files do not tie a model to a backend.  Raises ``ValueError`` for a
    file that is truncated, corrupt, not a fastnn model, from a newer format, or
    that holds object arrays.
    """
    from . import optimizers
    from .model import Dense, Sequential

    path = os.fspath(path)
    try:
        arrays = _read_archive(path)
        _expect(_META in arrays, f"it has no {_META!r} entry (not a fastnn model file)")
        raw = arrays.pop(_META)
        _expect(raw.dtype == np.uint8 and raw.ndim == 1, f"its {_META!r} entry is malformed")
        try:
            meta = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Bad(f"its architecture JSON is corrupt ({exc})") from None
        _expect(isinstance(meta, dict) and meta.get("format") == FORMAT, "not a fastnn model")
        version = meta.get("format_version")
        _expect(isinstance(version, int), "its format version is missing")
        _expect(
            version <= FORMAT_VERSION,
            f"it uses format version {version}, newer than this fastnn reads "
            f"({FORMAT_VERSION}); upgrade fastnn",
        )
        config = meta.get("config")
        _expect(isinstance(config, dict), "its architecture is missing")
        layer_configs = config.get("layers")
        _expect(isinstance(layer_configs, list) and layer_configs, "it lists no layers")
        try:
            model = Sequential(
                backend=backend,
                dtype=config["dtype"],
                seed=config["seed"],
                name=config.get("name", "sequential"),
            )
            for cfg in layer_configs:
                model.add(Dense(**cfg))
        except (KeyError, TypeError, ValueError) as exc:
            raise _Bad(f"its architecture is invalid ({exc})") from None
        dtype = model.dtype
        input_dim = config.get("input_dim")
        _expect(isinstance(input_dim, int) and input_dim >= 1, "its input_dim is invalid")
        n_in = input_dim
        params = []
        for l, layer in enumerate(model.layers):
            for name, shape in ((f"W_{l}", (n_in, layer.units)), (f"b_{l}", (layer.units,))):
                A = arrays.pop(name, None)
                _expect(A is not None, f"array {name!r} is missing")
                _expect(
                    A.dtype == dtype and A.shape == shape,
                    f"array {name!r} has shape {A.shape} and dtype {A.dtype}, expected "
                    f"{shape} and {dtype}",
                )
                _expect(np.isfinite(A).all(), f"array {name!r} holds NaN or infinity")
                params.append(A)
            n_in = layer.units
        model.build(input_dim)
        for P, A in zip(model._params(), params):
            np.copyto(P, A)
        compiled = meta.get("compile")
        if compiled is not None:
            try:
                opt_meta = compiled["optimizer"]
                opt = optimizers.from_config(opt_meta["name"], opt_meta["config"])
                model.compile(opt, compiled["loss"], compiled["metrics"] or None)
                iterations = int(opt_meta["iterations"])
            except (KeyError, TypeError, ValueError) as exc:
                raise _Bad(f"its training configuration is invalid ({exc})") from None
            for p, S in enumerate(opt.state):
                for s, A in enumerate(S):
                    name = f"opt_{p}_{s}"
                    saved = arrays.pop(name, None)
                    if saved is None:
                        _expect(iterations == 0, f"optimizer state {name!r} is missing")
                        continue
                    _expect(
                        saved.dtype == dtype and saved.shape == A.shape,
                        f"optimizer state {name!r} has the wrong shape or dtype",
                    )
                    np.copyto(A, saved)
            opt.iterations = iterations
        _expect(not arrays, f"it holds unexpected arrays: {sorted(arrays)}")
    except _Bad as exc:
        raise ValueError(f"cannot load {path!r} as a fastnn model: {exc}") from None
    return model
