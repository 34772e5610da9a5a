"""One client-side limit on the run's API requests: a token bucket shared by every request.

A run on a large cluster must not flood the API server: on 100 nodes it creates hundreds of
pods and runs thousands of execs. Every request the run's client sends (GET, LIST, POST,
DELETE, the exec websocket's upgrade) first takes a token; tokens come back at ``qps`` per
second up to ``burst`` (client-go's QPS and Burst). The bucket also counts what it let through.

Example:
    >>> bucket = TokenBucket(qps=10.0, burst=2, clock=lambda: 0.0)
    >>> bucket.wait_for(), bucket.wait_for(), bucket.wait_for()
    (0.0, 0.0, 0.1)
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

DEFAULT_QPS = 50.0
DEFAULT_BURST = 100


class TokenBucket:
    """``burst`` tokens, refilled at ``qps`` per second; :meth:`acquire` waits for one."""

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1, got {qps} and {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self.sent: Counter[str] = Counter()
        """Requests let through, by ``METHOD resource``."""
        self.waited = 0.0
        """Seconds requests spent waiting for a token, in total."""

    def wait_for(self) -> float:
        """Take a token now (the balance may go negative) and return how long the caller
        must wait before using it: 0 while the burst lasts, then ``1/qps`` per request."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.qps)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def acquire(self, what: str = "") -> None:
        """Wait until a request may be sent; count it under ``what``."""
        delay = self.wait_for()
        if what:
            self.sent[what] += 1
        if delay > 0:
            self.waited += delay
            await asyncio.sleep(delay)


def resource_of(path: str) -> str:
    """The resource a request path addresses (``/api/v1/namespaces/x/pods/y/exec`` ->
    ``pods/exec``), for counting.

    Example:
        >>> resource_of("/apis/apps/v1/namespaces/kube-system/daemonsets")
        'daemonsets'
        >>> resource_of("/api/v1/namespaces/x/pods/y/exec")
        'pods/exec'
        >>> resource_of("/api/v1/namespaces")
        'namespaces'
    """
    parts = [p for p in path.split("?")[0].split("/") if p]
    if parts[:1] == ["api"]:
        parts = parts[2:]
    elif parts[:1] == ["apis"]:
        parts = parts[3:]
    else:
        return "/".join(parts[:1]) or "/"
    if len(parts) >= 2 and parts[0] == "namespaces" and len(parts) > 2:
        parts = parts[2:]
    if not parts:
        return "discovery"
    return parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")


def limit(api: Any, bucket: TokenBucket) -> None:
    """Make every request of the kr8s ``api`` wait for ``bucket`` (idempotent).

    kr8s sends everything, exec websockets included, through one ``httpx.AsyncClient`` that
    it re-creates after re-authenticating; the limit is an event hook put on each one.
    """
    if getattr(api, "_netdoctor_bucket", None) is bucket:
        return
    # kr8s offers no hook of its own: wrap the method that builds its httpx client.
    api._netdoctor_bucket = bucket
    create = api._create_session

    async def hook(request: httpx.Request) -> None:
        await bucket.acquire(f"{request.method} {resource_of(request.url.path)}")

    async def create_limited() -> None:
        await create()
        session = api._session
        if session is not None and hook not in session.event_hooks["request"]:
            session.event_hooks["request"].append(hook)

    api._create_session = create_limited
    session = getattr(api, "_session", None)
    if session is not None and not session.is_closed:
        session.event_hooks["request"].append(hook)
