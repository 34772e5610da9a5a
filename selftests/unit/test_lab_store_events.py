"""Who the lab's store wakes for a change: a subscriber names the resources it follows."""

from __future__ import annotations

import asyncio

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Event, Store

PODS = resource("", "pods")
NODES = resource("", "nodes")
SERVICES = resource("", "services")


def _drain(q: asyncio.Queue[Event]) -> list[tuple[str, str]]:
    out = []
    while not q.empty():
        etype, res, obj = q.get_nowait()
        out.append((etype, f"{res.plural}/{obj['metadata']['name']}"))
    return out


def test_a_subscriber_gets_only_the_resources_it_follows() -> None:
    async def go() -> None:
        store = Store()
        store.create(resource("", "namespaces"), {"metadata": {"name": "default"}})
        everything, nodes, services = (store.subscribe(), store.subscribe(NODES),
                                       store.subscribe(SERVICES, NODES))
        store.create(NODES, {"metadata": {"name": "n1"}})
        store.create(PODS, {"metadata": {"name": "p1"}, "spec": {"containers": []}})
        store.create(SERVICES, {"metadata": {"name": "s1"}, "spec": {}})
        store.unsubscribe(nodes)
        store.create(NODES, {"metadata": {"name": "n2"}})
        kinds = [what for _, what in _drain(everything)]
        assert {"nodes/n1", "pods/p1", "services/s1", "nodes/n2"} <= set(kinds)
        assert _drain(nodes) == [("ADDED", "nodes/n1")]
        assert _drain(services) == [("ADDED", "nodes/n1"), ("ADDED", "services/s1"),
                                    ("ADDED", "nodes/n2")]

    asyncio.run(go())
