"""Asking again, alone, what failed during the burst of measurements.

A validate pass measures every path of the cluster at once. A measurement that failed in
that burst may have met a loaded node, a busy resolver or a slow moment of the API's exec
stream rather than a broken path: all runs of a series are made side by side, so one
moment can take them all. Each measurement that lost everything is asked once more, after
the burst and a short pause, with only the other failures beside it:

- a single measurement (a lookup, a GET, a DF ping) takes the second answer, and keeps the
  first one's attempts as evidence (it counts as retried);
- a series that passes every run when asked again takes those runs, each keeping the
  burst's attempts as evidence; otherwise both sets of runs count (k of 2n: flaky, or
  failed when none passed).

A real fault fails again; a slow moment does not. Partial loss in the burst (flaky) is not
asked again: it already says the path answers, and asking until it passes would hide an
intermittent fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from netdoctor.cluster.exec import Measured, asked_again
from netdoctor.probes.paths import Series

K = TypeVar("K")
V = TypeVar("V")
PAUSE = 1.0
"""Seconds between the end of the burst and the measurements asked again."""


def lost(m: Measured[Any]) -> bool:
    """A single measurement that answered with a failure (not merely went unobserved)."""
    return bool(m.result.conclusive and not m.result.ok)


def lost_all(s: Series[Any]) -> bool:
    """A series none of whose runs passed and at least one answered with a failure."""
    return s.sent > 0 and s.passed == 0 and any(lost(m) for m in s.runs)


def rejoined(first: Series[Any], second: Series[Any]) -> Series[Any]:
    """A series that lost everything in the burst, joined with the same series asked
    again: the second runs when all of them passed (each keeping the first runs' attempts
    as evidence), else every run of both."""
    if second.sent and second.passed == second.sent:
        burst = first.attempts
        return Series(tuple(Measured(m.result, burst + m.attempts, m.command)
                            for m in second.runs))
    return Series(first.runs + second.runs)


class Asked(Protocol):
    """One table of measurements that can ask its failures again."""

    def failed(self) -> list[Any]:
        """Keys that lost everything."""

    async def again(self, keys: list[Any]) -> None:
        """Measure ``keys`` again and merge the answers into the table."""


@dataclass
class Again(Generic[K, V]):
    """A table of measurements, which of its entries lost everything, how to measure some
    keys again and how a second answer joins the first."""

    table: dict[K, V]
    measure: Callable[[list[K]], Awaitable[Mapping[K, V]]]
    lost: Callable[[V], bool]
    join: Callable[[V, V], V]
    only: Collection[K] | None = None
    """Ask only these keys again (None: any)."""

    def failed(self) -> list[K]:
        """Keys whose entry lost everything."""
        return [k for k, v in self.table.items()
                if self.lost(v) and (self.only is None or k in self.only)]

    async def again(self, keys: list[K]) -> None:
        """Each second answer joined with the first."""
        second = await self.measure(keys)
        for k in keys:
            if k in second:
                self.table[k] = self.join(self.table[k], second[k])


def OnceAgain(
    table: dict[K, Measured[Any]],
    measure: Callable[[list[K]], Awaitable[Mapping[K, Measured[Any]]]],
    only: Collection[K] | None = None,
) -> Again[K, Measured[Any]]:
    """Single measurements: the second answer replaces the first, which stays as evidence."""
    return Again(table, measure, lost, asked_again, only)


def SeriesAgain(
    table: dict[K, Series[Any]],
    measure: Callable[[list[K]], Awaitable[Mapping[K, Series[Any]]]],
    only: Collection[K] | None = None,
) -> Again[K, Series[Any]]:
    """Series: joined with their second series (see :func:`rejoined`)."""
    return Again(table, measure, lost_all, rejoined, only)


async def ask_again(tables: Sequence[Asked], pause: float = PAUSE) -> int:
    """Ask every failure of ``tables`` again, all together, after ``pause`` seconds;
    the number of measurements asked again."""
    todo = [(t, keys) for t in tables if (keys := t.failed())]
    if not todo:
        return 0
    await asyncio.sleep(pause)
    await asyncio.gather(*(t.again(keys) for t, keys in todo))
    return sum(len(keys) for _, keys in todo)
