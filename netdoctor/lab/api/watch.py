"""Watch streams: newline-delimited ``{"type": ..., "object": ...}`` JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from netdoctor.lab.api.resources import Resource
from netdoctor.lab.api.selectors import field_matcher, label_matcher
from netdoctor.lab.api.store import ApiError, Event, Store

Obj = dict[str, Any]

DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 1800.0


@dataclass(frozen=True)
class WatchRequest:
    """What a watch asks for."""

    res: Resource
    namespace: str | None
    label_selector: str | None
    field_selector: str | None
    resource_version: str | None
    timeout: float

    @classmethod
    def from_query(cls, res: Resource, namespace: str | None, query: Any) -> WatchRequest:
        """Read the watch parameters from a request's query.

        Raises:
            ApiError: 400 for a malformed resourceVersion or timeout.
        """
        try:
            timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
            rv = query.get("resourceVersion") or None
            if rv is not None:
                int(rv)
        except ValueError as err:
            raise ApiError(400, "BadRequest", f"invalid watch parameter: {err}") from err
        return cls(res, namespace, query.get("labelSelector"), query.get("fieldSelector"), rv,
                   min(max(timeout, 0.0), MAX_TIMEOUT))


def _expired(rv: str) -> Obj:
    return ApiError(410, "Expired", f"too old resource version: {rv}").status()


def _initial(store: Store, req: WatchRequest) -> list[Event] | None:
    """Events before the live stream: history after the rv, or the current state as ADDED."""
    if req.resource_version not in (None, "0"):
        return store.history_since(int(req.resource_version or 0))
    return [("ADDED", req.res, o) for o in store.list(req.res, req.namespace)]


async def stream(request: web.Request, store: Store, req: WatchRequest,
                 render: Callable[[Obj], Obj]) -> web.StreamResponse:
    """Serve a watch until its timeout or until the client goes away.

    Objects that stop matching the selectors produce a DELETED event (as the API
    server does), those that start matching an ADDED event. Without a
    ``resourceVersion`` (or with ``0``) the stream starts with the current objects.
    """
    labels, fields = label_matcher(req.label_selector), field_matcher(req.field_selector)
    queue = store.subscribe(req.res)  # before reading history: nothing falls in between
    try:
        backlog = _initial(store, req)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if backlog is None:
            await _send(resp, "ERROR", _expired(req.resource_version or ""))
            return resp
        # With a snapshot the client knows exactly what it saw; when resuming from a
        # resourceVersion it knows more than this stream, so event types pass through.
        snapshot = req.resource_version in (None, "0")
        shown: set[tuple[str, str]] = set()

        async def emit(event: Event) -> None:
            etype, res, obj = event
            meta = obj["metadata"]
            if res is not req.res or req.namespace not in (None, meta.get("namespace")):
                return
            key = (meta.get("namespace", ""), meta["name"])
            matches = labels(meta.get("labels") or {}) and fields(obj)
            if etype != "DELETED" and not matches:
                if key in shown:
                    shown.discard(key)
                    await _send(resp, "DELETED", render(obj))
                return
            if etype == "DELETED":
                shown.discard(key)
            elif key not in shown:
                shown.add(key)
                etype = "ADDED" if snapshot else etype
            await _send(resp, etype, render(obj))

        for event in backlog:
            await emit(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + req.timeout
        while (left := deadline - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(queue.get(), left)
            except TimeoutError:
                break
            await emit(event)
        return resp
    finally:
        store.unsubscribe(queue)


async def _send(resp: web.StreamResponse, etype: str, obj: Obj) -> None:
    await resp.write(json.dumps({"type": etype, "object": obj}).encode() + b"\n")
