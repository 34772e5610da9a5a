"""How long the lab's event loop was blocked: every built-in server shares it.

The lab serves the API, exec streams, every echo server and the cluster DNS from one
event loop. When a callback holds it, none of them answers, and a probe's timeout in a
pod counts that as a network failure. The watcher records each stall (its start and
length) so a failed run can be put next to the lab's own stalls (``lab status --json``,
``stalls``; the daemon log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger("netdoctor.lab.looplag")

TICK = 0.1
REPORT_OVER = 0.5
KEEP = 200


@dataclass
class LoopLag:
    """Stalls of the running loop longer than ``REPORT_OVER`` seconds (the last ``KEEP``)."""

    stalls: list[tuple[float, float]] = field(default_factory=list)
    worst: float = 0.0
    count: int = 0
    last_end: float = float("-inf")
    """Loop time (monotonic) at which the last stall ended."""

    def note(self, started: float, seconds: float) -> None:
        """Record a stall that began at wall time ``started`` and lasted ``seconds``."""
        self.count += 1
        self.worst = max(self.worst, seconds)
        self.stalls = [*self.stalls[-(KEEP - 1):], (round(started, 3), round(seconds, 3))]
        log.warning("event loop blocked for %.2fs", seconds)

    def as_json(self) -> dict[str, object]:
        """For ``lab status --json``."""
        return {"count": self.count, "worst_seconds": round(self.worst, 3),
                "recent": [{"at": a, "seconds": s} for a, s in self.stalls[-20:]]}

    async def watch(self) -> None:
        """Sleep ``TICK`` at a time; a late wake-up is a stall of the loop."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            late = loop.time() - before - TICK
            if late > REPORT_OVER:
                self.last_end = loop.time()
                self.note(time.time() - late, late)

    def stalled_since(self, started: float) -> bool:
        """Whether a stall ended after loop time ``started`` (a wait that began then was
        held up by the lab itself)."""
        return self.last_end > started

    def held_up(self, asked: float, timeout: float) -> bool:
        """Whether a wait of ``timeout`` seconds that began at ``asked`` (monotonic) was held
        up by the lab itself: a stall of the loop ended since, or the wait ended well after
        it was due."""
        return self.stalled_since(asked) or time.monotonic() - asked - timeout > REPORT_OVER


LAG = LoopLag()
"""The lab daemon's watcher (one loop per process)."""
