"""Small HTTP servers bound inside a network namespace."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from netdoctor.lab.nsock import listener_in

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve_http(netns: str | None, host: str, port: int,
                     routes: dict[str, Handler]) -> web.AppRunner:
    """Serve ``routes`` (path -> GET handler) on ``host:port`` inside ``netns``.

    Raises:
        OSError: the address cannot be bound (e.g. already in use in that namespace).
    """
    sock = listener_in(netns, host, port)
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    # Access logs would interleave with the component's own log lines.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner


async def stop_http(runner: web.AppRunner | None) -> None:
    """Stop a server from :func:`serve_http`; ``None`` is allowed."""
    if runner is not None:
        with contextlib.suppress(Exception):
            await runner.cleanup()
