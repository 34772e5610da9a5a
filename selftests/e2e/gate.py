"""A plugin for concurrency tests: the first check waits until the file named by
``SELFTEST_GATE`` exists (at most :data:`GATE_SECONDS`), so a run is caught live, its
probes in place, for as long as the test needs; then it runs to its end as usual. Loaded
only by the e2e tier (``-p selftests.e2e.gate``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

GATE_SECONDS = 90.0
_PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Wait for the gate once per run (bounded)."""
    if item.config.stash.get(_PASSED, False):
        return
    item.config.stash[_PASSED] = True
    gate = Path(os.environ.get("SELFTEST_GATE", "/nonexistent"))
    end = time.monotonic() + GATE_SECONDS
    while not gate.exists() and time.monotonic() < end:
        time.sleep(0.1)
