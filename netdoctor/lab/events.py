"""Kubernetes Events, recorded and aggregated the way components report them."""

from __future__ import annotations

import contextlib
import uuid

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import ApiError, Obj, Store, now

EVENTS = resource("", "events")


def record(
    store: Store,
    obj: Obj,
    reason: str,
    message: str,
    *,
    type_: str = "Normal",
    component: str = "kubelet",
    host: str | None = None,
    field_path: str | None = None,
) -> None:
    """Record an Event about ``obj``; a repeat of the same reason and message bumps its count."""
    meta = obj["metadata"]
    ns = meta.get("namespace") or "default"
    for ev in store.items(EVENTS, ns):
        inv = ev.get("involvedObject", {})
        if (
            inv.get("uid") == meta.get("uid")
            and ev.get("reason") == reason
            and ev.get("message") == message
        ):

            def bump(e: Obj) -> None:
                e["count"] = e.get("count", 1) + 1
                e["lastTimestamp"] = now()

            store.mutate(EVENTS, ns, ev["metadata"]["name"], bump)
            return
    involved: Obj = {
        "kind": obj.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "uid": meta.get("uid"),
        "apiVersion": obj.get("apiVersion"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if field_path:
        involved["fieldPath"] = field_path
    stamp = now()
    source: Obj = {"component": component}
    if host:
        source["host"] = host
    # An ApiError means the namespace is going away; its events go with it.
    with contextlib.suppress(ApiError):
        store.create(
            EVENTS,
            {
                "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": ns},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type_,
                "source": source,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "reportingComponent": component,
                "reportingInstance": host or "",
            },
        )
