"""The op edge: backend selection, validation and ``auto``.

The current backend is resolved, most specific first, from:

1. ``with fastnn.use_backend(name):`` -- scoped, nestable, per thread and per
   asyncio task (a :class:`contextvars.ContextVar`);
2. ``fastnn.set_backend(name)`` -- the process-wide default;
3. the ``FASTNN_BACKEND`` environment variable, read once at import;
4. ``"auto"``.

(A model's ``backend=`` argument is passed to :func:`get_ops` directly and
wins over all of these without changing them.)

:func:`get_ops` returns a :class:`~.checked.CheckedOps`: the backend wrapped by
one layer that validates arguments, then calls the backend's kernel.

Modules: :mod:`.registry` (which backends exist, loading them, the current
choice), :mod:`.checked` (argument checks), :mod:`.validation` (the checks
themselves), :mod:`.autotune` (``auto``: per-op, per-shape measured choices),
:mod:`.runtime` (thread counts, warm-up).
"""

from __future__ import annotations

import contextlib
import threading

from .checked import CheckedOps
from .registry import (
    BACKENDS,
    CHOICES,
    ENV_VAR,
    available_backends,
    check_choice,
    get_backend,
    load_backend,
    parse_backend,
    resolve_auto_backend,
    scoped_backend,
    set_backend,
)

__all__ = [
    "BACKENDS",
    "CHOICES",
    "ENV_VAR",
    "CheckedOps",
    "available_backends",
    "get_backend",
    "get_ops",
    "load_backend",
    "parse_backend",
    "resolve_auto_backend",
    "set_backend",
    "use_backend",
]

_lock = threading.Lock()
_checked: dict[str, CheckedOps] = {}


def get_ops(name: str | None = None) -> CheckedOps:
    """The validating op object for backend ``name`` (None: the current backend)."""
    # The current backend is checked too: FASTNN_BACKEND=numba without Numba must fail
    # here, clearly, not later inside an op.
    key = check_choice(get_backend() if name is None else name)
    ops = _checked.get(key)
    if ops is None:
        with _lock:
            ops = _checked.get(key)
            if ops is None:
                ops = _checked[key] = _make_ops(key)
    return ops


def _make_ops(key: str) -> CheckedOps:
    if key == "auto":
        from .autotune import AutoOps  # imported only when auto is first used

        return AutoOps(key, load_backend(resolve_auto_backend()))
    return CheckedOps(key, load_backend(key))


@contextlib.contextmanager
def use_backend(name: str):
    """Use backend ``name`` inside the ``with`` block (this thread/task only)."""
    with scoped_backend(check_choice(name)) as key:
        yield get_ops(key)
