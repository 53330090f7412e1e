"""Training progress output for ``Sequential.fit`` (Keras' format).

* ``verbose=1`` on a terminal: ``Epoch 1/10`` then a bar redrawn in place with
  ``\\r`` as chunks of batches finish, ending as
  ``235/235 ━━━━━━━━━━━━━━━━━━━━ 1s 2ms/step - loss: 0.6931 - accuracy: 0.5000``.
* ``verbose=1`` when the stream is not a terminal (a log file, CI), and ``verbose=2``:
  exactly one line per epoch, ``Epoch 1/10 - 235/235 - 1s 2ms/step - loss: ...``,
  so logs never fill with redrawn bars.
* ``verbose=0``: nothing.

Values print with 4 decimals, or in scientific notation below 1e-3; time per
step in s, ms or us.
"""

from __future__ import annotations

import sys
import time

BAR_WIDTH = 20


def format_value(value: float) -> str:
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.4e}"
    return f"{value:.4f}"


def format_logs(logs: dict) -> str:
    return "".join(f" - {k}: {format_value(v)}" for k, v in logs.items())


def format_time(seconds: float, steps: int) -> str:
    per_step = seconds / max(steps, 1)
    if per_step >= 1:
        rate = f"{per_step:.0f}s/step"
    elif per_step >= 1e-3:
        rate = f"{per_step * 1e3:.0f}ms/step"
    else:
        rate = f"{per_step * 1e6:.0f}us/step"
    return f"{seconds:.0f}s {rate}"


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress of one ``fit`` call: ``epochs`` epochs of ``steps`` batches each."""

    def __init__(self, verbose: int, epochs: int, steps: int, stream=None):
        self.verbose = verbose
        self.epochs = epochs
        self.steps = steps
        self.stream = sys.stdout if stream is None else stream
        self.live = verbose == 1 and _is_tty(self.stream)
        encoding = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        self.glyphs = ("━", "─") if encoding == "utf8" else ("=", ".")
        self._start = 0.0
        self._epoch = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def epoch_begin(self, epoch: int) -> None:
        self._epoch = epoch
        self._start = time.perf_counter()
        if self.live:
            self._write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def _bar(self, done: int) -> str:
        filled = BAR_WIDTH * done // max(self.steps, 1)
        full, empty = self.glyphs
        return full * filled + empty * (BAR_WIDTH - filled)

    def update(self, done: int, logs: dict) -> None:
        """``done`` batches of this epoch finished; ``logs`` the running means."""
        if self.live:
            elapsed = time.perf_counter() - self._start
            width = len(str(self.steps))
            self._write(
                f"\r{done:>{width}}/{self.steps} {self._bar(done)} "
                f"{format_time(elapsed, done)}{format_logs(logs)}\x1b[K"
            )

    def epoch_end(self, logs: dict) -> None:
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self._start
        timing = format_time(elapsed, self.steps)
        if self.live:
            self._write(
                f"\r{self.steps}/{self.steps} {self._bar(self.steps)} {timing}"
                f"{format_logs(logs)}\x1b[K\n"
            )
        else:
            self._write(
                f"Epoch {self._epoch + 1}/{self.epochs} - {self.steps}/{self.steps} - "
                f"{timing}{format_logs(logs)}\n"
            )

    def interrupted(self) -> None:
        if self.live:
            self._write("\n")
