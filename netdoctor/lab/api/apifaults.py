"""Faults of the API server itself: slow, throttling, flaky, or not answering at all.

A middleware in front of every other: what it does to a request is what a client sees from
an overloaded, rate-limited, restarting or paused API server. The cluster behind it (kubelet,
controllers, the pod network) keeps running, as it does when a real API server is away.

* ``api-slow``: every request is answered :data:`SLOW_SECONDS` late.
* ``api-throttle``: half the requests get ``429 Too Many Requests`` with ``Retry-After``.
* ``api-flaky``: half the requests get a 503, a 500 or a dropped connection (a sixth each);
  a watch that is let through is cut after :data:`WATCH_CUT_SECONDS`.
* ``api-down``: no answer at all; requests are held (as by a paused process) and answered
  only once the fault is cleared or its ``seconds`` have passed.

Which requests are hit is drawn at random (seeded at injection, so a run can be repeated): a
fixed rotation would line up with a client's own fixed sequence of requests (discovery, then
the request) and starve it, which no real API server does.

Example:
    >>> state = ApiFaultState()
    >>> state.set("api-throttle", None); state.active()
    'api-throttle'
    >>> state.clear(); state.active() is None
    True
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from netdoctor.lab.api.crud import respond
from netdoctor.lab.api.store import ApiError

API_FAULTS: dict[str, str] = {
    "api-slow": "every API request is answered 2 s late",
    "api-throttle": "half the API requests get 429 with Retry-After: 1",
    "api-flaky": "half the API requests get 503, 500 or a dropped connection; watches are cut",
    "api-down": "the API server answers nothing (requests are held) until cleared or "
                "--seconds pass",
}
SLOW_SECONDS = 2.0
RETRY_AFTER = 1
WATCH_CUT_SECONDS = 1.0


class ApiFaultState:
    """The API fault in force (at most one), and when it ends by itself."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.until: float | None = None
        self.count = 0
        self.dice = random.Random(0)
        self._up = asyncio.Event()
        self._up.set()

    def set(self, name: str, seconds: float | None) -> None:
        """Put ``name`` in force, for ``seconds`` or until cleared."""
        if name not in API_FAULTS:
            raise ValueError(f"unknown API fault {name!r}")
        self.name, self.count, self.dice = name, 0, random.Random(0)
        self.until = time.monotonic() + seconds if seconds else None
        if name == "api-down":
            self._up.clear()
            if seconds:
                asyncio.get_running_loop().call_later(seconds, self._expire, self.until)
        else:
            self._up.set()

    def clear(self) -> None:
        """End the fault; held requests are answered now."""
        self.name, self.until = None, None
        self._up.set()

    def _expire(self, until: float | None) -> None:
        if self.until == until:  # not replaced by a later injection meanwhile
            self.clear()

    def active(self) -> str | None:
        """The fault in force now (``None`` once its time is up)."""
        if self.until is not None and time.monotonic() >= self.until:
            self.clear()
        return self.name

    async def wait_up(self) -> None:
        """Return when the API answers again."""
        await self._up.wait()


STATE = web.AppKey("api_faults", ApiFaultState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _drop(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.abort()  # the client sees the connection reset, no answer
    return web.Response(status=503)


@web.middleware
async def api_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the API fault in force to ``request``."""
    state = request.app[STATE]
    name = state.active()
    if name is None:
        return await handler(request)
    state.count += 1
    roll = state.dice.random()
    if name == "api-down":
        await state.wait_up()
    elif name == "api-slow":
        await asyncio.sleep(SLOW_SECONDS)
    elif name == "api-throttle" and roll < 0.5:
        err = ApiError(429, "TooManyRequests", "the server has received too many requests "
                       "and has asked us to try again later")
        response = respond(err.status(), 429)
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response
    elif name == "api-flaky":
        if roll < 1 / 6:
            return respond(ApiError(503, "ServiceUnavailable", "the server is currently "
                                    "unable to handle the request").status(), 503)
        if roll < 2 / 6:
            return respond(ApiError(500, "InternalError", "Internal error occurred: "
                                    "etcdserver: request timed out").status(), 500)
        if roll < 3 / 6:
            return _drop(request)
        if request.query.get("watch") in ("1", "true") and request.transport is not None:
            asyncio.get_running_loop().call_later(WATCH_CUT_SECONDS, request.transport.close)
    return await handler(request)
