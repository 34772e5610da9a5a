"""Count the API server's requests by Kubernetes verb and resource (``lab status --json``
shows them as ``requests``), so benchmarks can read what a run cost the API.

Example:
    >>> verb_and_resource("GET", "/api/v1/namespaces/x/pods", {})
    ('list', 'pods')
    >>> verb_and_resource("GET", "/api/v1/namespaces/x/pods/p/exec", {"command": "ls"})
    ('get', 'pods/exec')
    >>> verb_and_resource("GET", "/apis/apps/v1/daemonsets", {"watch": "1"})
    ('watch', 'daemonsets')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

REQUESTS = web.AppKey("requests", Counter)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def verb_and_resource(method: str, path: str, query: Mapping[str, str]) -> tuple[str, str]:
    """The verb (``list``, ``get``, ``watch``, ``create``, ...) and resource of a request."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        parts = parts[2:]
    elif parts[:1] == ["apis"]:
        parts = parts[3:]
    else:
        return method.lower(), "/".join(parts[:1]) or "/"
    if len(parts) > 2 and parts[0] == "namespaces":
        parts = parts[2:]
    if not parts:
        return "get", "discovery"
    resource = parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")
    named = len(parts) > 1
    if method == "GET":
        verb = "watch" if query.get("watch") in ("1", "true") else "get" if named else "list"
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return verb, resource


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request, whatever its answer."""
    verb, resource = verb_and_resource(request.method, request.path, request.query)
    request.app[REQUESTS][f"{verb} {resource}"] += 1
    return await handler(request)
