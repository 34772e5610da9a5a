"""Asking again what failed in the burst: a slow moment passes, a real fault fails again,
partial loss stays flaky and is not asked again."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from netdoctor.cluster.exec import Measured
from netdoctor.model import Attempt
from netdoctor.probes.again import OnceAgain, SeriesAgain, ask_again, lost_all, rejoined
from netdoctor.probes.parsers import PingResult
from netdoctor.probes.paths import Series

OK = PingResult(True, 1, 1, 0.0)
LOST = PingResult(True, 1, 0, 100.0)
UNKNOWN = PingResult(False)


def ping(result: PingResult, tag: str) -> Measured[PingResult]:
    return Measured(result, (Attempt(("ping", tag), 0 if result.ok else 1),), f"ping {tag}")


def series(*results: PingResult, tag: str = "burst") -> Series[PingResult]:
    return Series(tuple(ping(r, tag) for r in results))


def test_only_a_series_that_lost_every_run_is_asked_again() -> None:
    assert lost_all(series(LOST, LOST, LOST))
    assert not lost_all(series(LOST, OK, LOST))  # flaky already: it answers
    assert not lost_all(series(UNKNOWN, UNKNOWN))  # never observed: not a loss
    assert not lost_all(Series(()))


def test_a_series_passing_when_asked_again_passes_and_keeps_the_burst_as_evidence() -> None:
    joined = rejoined(series(LOST, LOST, LOST), series(OK, OK, OK, tag="again"))
    assert (joined.passed, joined.sent) == (3, 3)
    assert all(m.retried for m in joined.runs)
    assert {a.argv[1] for a in joined.attempts} == {"burst", "again"}


def test_a_series_failing_again_counts_both_tries() -> None:
    assert rejoined(series(LOST, LOST), series(LOST, LOST)).ratio == "0/4"
    assert rejoined(series(LOST, LOST), series(OK, LOST)).ratio == "1/4"


def test_ask_again_measures_only_the_failures_together() -> None:
    once: dict[str, Measured[PingResult]] = {"a": ping(LOST, "a"), "b": ping(OK, "b")}
    many: dict[str, Series[PingResult]] = {"x": series(LOST, LOST), "y": series(OK, LOST),
                                           "z": series(LOST, LOST)}
    asked: list[list[str]] = []

    async def once_again(keys: list[str]) -> Mapping[str, Measured[PingResult]]:
        asked.append(keys)
        return {k: ping(OK, k) for k in keys}

    async def many_again(keys: list[str]) -> Mapping[str, Series[PingResult]]:
        asked.append(keys)
        return {"x": series(OK, OK), "z": series(LOST, LOST)}

    count = asyncio.run(ask_again([OnceAgain(once, once_again), SeriesAgain(many, many_again)],
                                  pause=0))
    assert count == 3
    assert sorted(map(sorted, asked)) == [["a"], ["x", "z"]]
    assert once["a"].result.ok
    assert once["a"].retried
    assert once["b"].attempts[0].argv[1] == "b"
    assert [many[k].ratio for k in "xyz"] == ["2/2", "1/2", "0/4"]


def test_nothing_failed_nothing_asked_no_pause() -> None:
    async def never(keys: list[str]) -> Mapping[str, Measured[PingResult]]:
        raise AssertionError("asked again with nothing failed")

    assert asyncio.run(ask_again([OnceAgain({"a": ping(OK, "a")}, never)], pause=3600)) == 0


def test_only_limits_what_is_asked_again() -> None:
    table = {"old": series(LOST), "new": series(LOST)}
    seen: list[list[str]] = []

    async def again(keys: list[str]) -> Mapping[str, Series[PingResult]]:
        seen.append(keys)
        return {k: series(OK) for k in keys}

    asyncio.run(ask_again([SeriesAgain(table, again, only={"new"})], pause=0))
    assert seen == [["new"]]
    assert [table[k].ratio for k in ("old", "new")] == ["0/1", "1/1"]
