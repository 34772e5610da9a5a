"""A plugin for API-outage tests: at a chosen point of the run, the lab's API server stops
answering for a while (``lab fault inject api-down --seconds N``), exactly as a paused or
restarting API server would. Loaded only by the e2e tier and benchmarks
(``-p selftests.e2e.apipause``), configured by environment variables:

* ``ND_TEST_API_PAUSE=POINT:SECONDS`` where POINT is one of :data:`POINTS`;
* ``ND_TEST_LAB_DIR``: the lab's state directory.

(Not ``NETDOCTOR_*``: the e2e runner clears those so that no setting leaks into a run.)
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from selftests.e2e.labrun import lab_cli

PAUSE_VAR = "ND_TEST_API_PAUSE"
LAB_VAR = "ND_TEST_LAB_DIR"
POINTS: dict[str, tuple[str, str]] = {
    # point: (module, function) after whose return the API goes away
    "connected": ("netdoctor.cluster.session", "connect"),
    "probes-created": ("netdoctor.cluster.probes", "create_probes"),
    "probes-ready": ("netdoctor.cluster.probes", "wait_ready"),
}
"""Where the pause starts: right after connecting (before the cluster is read), right after
the probe pods are created (before they are Ready), right after they are Ready (the
measurements are about to run)."""


def pause_api(seconds: float) -> None:
    """Make the lab's API server answer nothing for ``seconds``."""
    done = lab_cli("fault", "inject", "api-down", "--seconds", f"{seconds:g}", "--state-dir",
                   os.environ[LAB_VAR], timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"could not pause the lab's API: {done.stderr.strip()}")


def _after(fn: Callable[..., Any], seconds: float, fired: list[float]) -> Callable[..., Any]:
    if getattr(fn, "__code__", None) and fn.__code__.co_flags & 0x80:  # a coroutine function
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            if not fired:
                fired.append(time.monotonic())
                pause_api(seconds)
            return result
        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if not fired:
            fired.append(time.monotonic())
            pause_api(seconds)
        return result
    return run


def pytest_configure(config: pytest.Config) -> None:
    """Wrap the function of the chosen point (once per run)."""
    spec = os.environ.get(PAUSE_VAR, "")
    if not spec:
        return
    point, _, seconds = spec.partition(":")
    module_name, name = POINTS[point]
    module = __import__(module_name, fromlist=[name])
    setattr(module, name, _after(getattr(module, name), float(seconds), []))
