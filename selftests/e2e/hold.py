"""A plugin for interrupt tests: every check call waits, so the run is caught mid-way with its
probe pods in place. Loaded only by the e2e tier (``-p selftests.e2e.hold``)."""

from __future__ import annotations

import time

import pytest

HOLD_SECONDS = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Sleep (a signal interrupts it)."""
    time.sleep(HOLD_SECONDS)
