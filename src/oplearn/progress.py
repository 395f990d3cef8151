"""Progress of long work, in a terminal and in a log.

In a terminal :func:`progress` is a tqdm bar. When the output is not a terminal (a log
file, CI, a notebook's captured output) a bar's carriage returns would be lost or pile up,
so it prints one plain line at most every ``interval`` seconds instead (and at the end),
each with the count, the elapsed time and an estimate of the time left::

    train: 12/30 epoch (40%), 1m23s elapsed, ~2m05s left, train_loss=0.0213

Both offer the part of tqdm's interface that oplearn uses: iteration, ``update``,
``set_postfix``, ``close`` and use as a context manager.

Progress inside one unit of work
--------------------------------
Some units are long on their own (one chunk of time-dependent samples integrates thousands
of time steps). Inner loops call :func:`fraction_done` with the share of the current unit
they have finished; whoever counts the units says what a share means with :func:`reporting`
(e.g. move a bar from sample ``a`` towards sample ``b``), and :func:`part` maps the shares of
a sub-task into a slice of its caller's. Without a reporter :func:`fraction_done` does nothing,
so solvers call it unconditionally.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TextIO

from tqdm.auto import tqdm

#: Seconds between two log lines when the output is not a terminal (``OPLEARN_PROGRESS_INTERVAL`` overrides).
LOG_INTERVAL = 30.0


def format_seconds(seconds: float) -> str:
    """``83.2 -> "1m23s"``, ``4000 -> "1h06m"``, ``7.5 -> "7.5s"``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class LogProgress:
    """Progress as timed plain lines (see the module docstring).

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over; its length is the total unless ``total`` is given.
    total : int, optional
        The count at completion (unknown: no percentage and no estimate).
    desc, unit : str
        The label and the unit of a count.
    initial : int
        The count already done (a resumed job); the estimate uses only the rate since the start.
    interval : float
        Seconds between two lines.
    file : text stream
        Where the lines go (standard error by default).
    """

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        interval: float = LOG_INTERVAL,
        file: TextIO | None = None,
    ) -> None:
        self.iterable = iterable
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.initial = initial
        self.interval = interval
        self.file = file
        self.postfix: dict[str, Any] = {}
        self.start = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return self.total or 0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._print(now)

    def set_postfix(self, values: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = {**(values or {}), **kwargs}

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.n > self.initial or self.total == self.initial:
                self._print(time.monotonic())

    def line(self, now: float | None = None) -> str:
        """The current status line."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.start
        count = f"{self.n:.1f}" if self.n != int(self.n) else str(int(self.n))
        parts = [f"{count}/{self.total} {self.unit}" if self.total else f"{count} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{format_seconds(elapsed)} elapsed")
        done = self.n - self.initial
        if self.total and 0 < done and self.n < self.total:
            parts.append(f"~{format_seconds(elapsed / done * (self.total - self.n))} left")
        parts += [f"{k}={v}" for k, v in self.postfix.items()]
        return f"{self.desc}: " * bool(self.desc) + ", ".join(parts)

    def _print(self, now: float) -> None:
        stream = self.file or sys.stderr
        try:
            print(self.line(now), file=stream, flush=True)
        except (BrokenPipeError, ValueError):  # the reader went away; progress is not worth failing for
            pass


def _interval() -> float:
    try:
        return float(os.environ.get("OPLEARN_PROGRESS_INTERVAL", LOG_INTERVAL))
    except ValueError:
        return LOG_INTERVAL


def progress(
    iterable: Iterable | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    enabled: bool = True,
    file: TextIO | None = None,
    **kwargs: Any,
) -> tqdm | LogProgress:
    """A progress bar in a terminal, timed log lines otherwise, nothing when not ``enabled``.

    ``iterable``, ``total``, ``desc``, ``unit`` and ``initial`` as in tqdm; further keyword
    arguments go to tqdm only. Returns an object with tqdm's ``update``, ``set_postfix``,
    ``close``, iteration and context-manager use.
    """
    stream = file or sys.stderr
    if not enabled:
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=True, **kwargs)
    isatty = getattr(stream, "isatty", lambda: False)
    if isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=stream, **kwargs)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, interval=_interval(), file=file)


_REPORTER: ContextVar[Callable[[float], None] | None] = ContextVar("oplearn_progress_reporter", default=None)


def fraction_done(fraction: float) -> None:
    """Report that ``fraction`` (0 to 1) of the current unit of work is done (see the module docstring)."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter(min(max(float(fraction), 0.0), 1.0))


@contextlib.contextmanager
def reporting(callback: Callable[[float], None]) -> Iterator[None]:
    """Within the block, :func:`fraction_done` calls ``callback(fraction)``."""
    token = _REPORTER.set(callback)
    try:
        yield
    finally:
        _REPORTER.reset(token)


@contextlib.contextmanager
def part(lo: float, hi: float) -> Iterator[None]:
    """Within the block, the shares reported by :func:`fraction_done` are the slice ``[lo, hi]``
    of the enclosing unit of work."""
    outer = _REPORTER.get()
    if outer is None:
        yield
        return
    with reporting(lambda fraction: outer(lo + (hi - lo) * fraction)):
        yield


def advance_to(bar: tqdm | LogProgress, position: float) -> None:
    """Move a :func:`progress` bar (tqdm or :class:`LogProgress`) forward to ``position``."""
    if position > bar.n:
        bar.update(position - bar.n)
