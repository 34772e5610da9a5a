"""Ctrl-C and SIGTERM: a run stops within seconds, says so, and leaves nothing behind.

An interrupted run ends with verdict ``interrupted`` and exit status :data:`EXIT_INTERRUPTED`
whatever it had measured, writes its reports (``summary.json``, ``analysis.md``,
``remediation.log`` with mode ``interrupted`` and the steps done and left) and removes every
object it made. Where abandoning work half done would leave the cluster worse than finishing
it (a repair step), the signal is *deferred*: :class:`Deferred` records it, the step in flight
finishes (bounded by its own deadline, at most :data:`GRACE` seconds more) and the run stops
before the next one; a second signal, or the grace running out, interrupts at once.

Example:
    >>> with Deferred(grace=5.0) as deferred:
    ...     deferred.requested
    ''
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

EXIT_INTERRUPTED = 8
"""Exit status of an interrupted run (pytest uses 0-5, 6 is a refused remediation, 7 an
inconclusive verdict)."""
GRACE = 10.0
"""Seconds a deferred signal waits for the step in flight before it interrupts anyway."""
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``SIGINT`` for 2."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Deferred:
    """Within ``with``: SIGINT and SIGTERM are recorded in :attr:`requested` instead of
    raising; a second signal, or :attr:`grace` seconds after the first, raise
    ``KeyboardInterrupt``. Outside the main thread it changes nothing (signals are only
    delivered there)."""

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self.requested = ""
        self._previous: dict[int, Any] = {}
        self._timer: threading.Timer | None = None
        self._expired = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested or self._expired:
            raise KeyboardInterrupt(self.requested or signal_name(signum))
        self.requested = signal_name(signum)
        self._timer = threading.Timer(self.grace, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        # From the timer thread: the handler runs again in the main thread and raises there.
        if self._previous:
            self._expired = True
            os.kill(os.getpid(), signal.SIGINT)

    def __enter__(self) -> Deferred:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
