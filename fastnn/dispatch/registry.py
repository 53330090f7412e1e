"""Backend registry and selection: which backend computes, and loading it.

The current backend is resolved, most specific first, from:

1. ``with fastnn.use_backend(name):`` -- scoped, nestable, per thread and per
   asyncio task (a :class:`contextvars.ContextVar`);
2. ``fastnn.set_backend(name)`` -- the process-wide default;
3. the ``FASTNN_BACKEND`` environment variable, read once at import;
4. ``"auto"``.

(A model's ``backend=`` argument is passed to :func:`get_ops` directly and
wins over all of these without changing them.)

This module knows backends only as :class:`~fastnn.kernels.contract.Ops`
objects; the validating wrapper (:mod:`.checked`) and ``auto`` (:mod:`.autotune`)
are put on top by :func:`fastnn.dispatch.get_ops`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading

from fastnn.kernels.contract import Ops

ENV_VAR = "FASTNN_BACKEND"

#: Registry: backend name -> (module, class).  Modules are imported on first use.
BACKENDS: dict[str, tuple[str, str]] = {
    "python": ("fastnn.kernels.python", "PythonOps"),
    "numpy": ("fastnn.kernels.numpy", "NumpyOps"),
    "numba": ("fastnn.kernels.numba", "NumbaOps"),
}

#: Every name the dispatcher accepts.
CHOICES: tuple[str, ...] = (*BACKENDS, "auto")

_INSTALL_HINT = {
    "numba": "install it with `pip install numba scipy` (or `pip install fastnn`)",
}

_lock = threading.Lock()
_backend_objects: dict[str, Ops] = {}
_import_errors: dict[str, BaseException] = {}
_load_hooks: dict[str, list] = {}

_envvalue = os.environ.get(ENV_VAR)
_default: str = "auto"
_default_error: str | None = None
if _envvalue is not None and _envvalue.strip():
    if _envvalue.strip().lower() in CHOICES:
        _default = _envvalue.strip().lower()
    else:
        # Reported at first use, not at import: importing fastnn never fails on it.
        _default_error = (
            f"environment variable {ENV_VAR}={_envvalue!r} is not a valid backend; "
            f"valid choices are: {', '.join(CHOICES)}"
        )

_scoped: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastnn_backend", default=None)


def load_backend(name: str) -> Ops | None:
    """The backend object for ``name``, or None if it cannot be imported here."""
    if name in _backend_objects:
        return _backend_objects[name]
    if name in _import_errors:
        return None
    with _lock:
        if name in _backend_objects:
            return _backend_objects[name]
        module_name, class_name = BACKENDS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            _import_errors[name] = exc
            return None
        obj = getattr(module, class_name)()
        _backend_objects[name] = obj
    for hook in _load_hooks.get(name, ()):
        hook()
    return obj


def available_backends() -> list[str]:
    """Names of the backends that work in this environment (``"auto"`` not included)."""
    return [name for name in BACKENDS if load_backend(name) is not None]


def check_choice(name) -> str:
    """``name`` normalized (stripped, lower case) if it names a usable backend or ``auto``."""
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in CHOICES:
        raise ValueError(
            f"unknown backend {name!r}; available backends: "
            f"{', '.join([*available_backends(), 'auto'])}"
        )
    if key != "auto" and load_backend(key) is None:
        hint = _INSTALL_HINT.get(key, "")
        raise ValueError(
            f"backend {key!r} is not available here ({_import_errors[key]}); "
            f"{hint + '; ' if hint else ''}available backends: "
            f"{', '.join([*available_backends(), 'auto'])}"
        )
    return key


def parse_backend(backend) -> str | None:
    """A model's ``backend=`` argument: None, or a backend choice normalized (stripped,
    lower case).  Unknown names raise here; availability is checked when it is used."""
    if backend is None:
        return None
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string or None, got {type(backend).__name__}")
    key = backend.strip().lower()
    if key not in CHOICES:
        raise ValueError(
            f"unknown backend {backend!r}; valid choices are: {', '.join(repr(c) for c in CHOICES)}"
        )
    return key


def get_backend() -> str:
    """Name of the current backend (may be ``"auto"``)."""
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _default_error is not None:
        raise ValueError(_default_error)
    return _default


def set_backend(name: str) -> None:
    """Set the process-wide default backend.  A bad name leaves it unchanged."""
    global _default, _default_error
    key = check_choice(name)
    _default, _default_error = key, None


@contextlib.contextmanager
def scoped_backend(key: str):
    """Make ``key`` (already checked) the current backend inside the block (this thread/task)."""
    token = _scoped.set(key)
    try:
        yield key
    finally:
        _scoped.reset(token)


def resolve_auto_backend() -> str:
    """The backend ``"auto"`` falls back to when no measurement says otherwise."""
    return "numba" if load_backend("numba") is not None else "numpy"


def on_backend_loaded(name: str, hook) -> None:
    """Call ``hook()`` when backend ``name`` is loaded (now, if it already is).

    Lets a higher layer (thread settings in :mod:`.runtime`) react to a backend's
    import without the backend, or this registry, importing that layer.
    """
    _load_hooks.setdefault(name, []).append(hook)
    if name in _backend_objects:
        hook()
