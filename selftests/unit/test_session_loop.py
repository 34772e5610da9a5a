"""The session's event loop hands results back without formatting them."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest

from netdoctor.cluster.session import ClusterSession, SessionOptions


class Costly:
    """A result whose repr is counted (a whole measurement pass is expensive to format)."""

    reprs = 0

    def __repr__(self) -> str:
        Costly.reprs += 1
        return "Costly()"


def _session() -> ClusterSession:
    return ClusterSession(SessionOptions(None, None, "abc123", "netdoctor-abc123", True,
                                         "busybox:1.36", 10.0))


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="asyncio installs its SIGINT handler from the main thread only")
def test_results_are_not_formatted_when_the_sigint_handler_is_restored() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    session = _session()
    result = Costly()

    async def measure() -> Costly:
        await asyncio.sleep(0)
        return result

    Costly.reprs = 0
    try:
        assert session.run(measure()) is result
        assert session.run(measure()) is result
    finally:
        session.close()
    assert Costly.reprs == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_errors_reach_the_caller() -> None:
    session = _session()

    async def fail() -> None:
        raise LookupError("no such node")

    try:
        with pytest.raises(LookupError, match="no such node"):
            session.run(fail())
    finally:
        session.close()
