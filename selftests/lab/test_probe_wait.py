"""Waiting for probe pods lists only the kind of pod waited for: the run's pod probes and
node probes are waited for side by side, and each poll of one need not carry the other's
hundred pods."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from netdoctor.cluster import probes as pods
from netdoctor.cluster.client import Target, connect
from netdoctor.lab.api.resources import resource
from selftests.lab.apilab import ADMIN_TOKEN, ApiLab, namespace

PODS, NAMESPACES = resource("", "pods"), resource("", "namespaces")
NS, RUN = "nd-wait", "c3c3c3"
NODES = ("worker-1", "worker-2")


def _spec(node: str, node_level: bool) -> dict[str, Any]:
    return pods.probe_pod_spec(node=node, namespace=NS, image="busybox:1.36", run_id=RUN,
                               node_level=node_level)


def _ready(obj: dict[str, Any]) -> None:
    obj["status"] = {"phase": "Running", "podIP": "10.244.1.5",
                     "conditions": [{"type": "Ready", "status": "True"}]}


@pytest.fixture
def run_pods(lab: ApiLab) -> Iterator[ApiLab]:
    """Both kinds of probe of one run on two nodes, all Ready."""
    lab.call(lambda: lab.store.create(NAMESPACES, namespace(NS)))
    for node in NODES:
        for node_level in (False, True):
            name = str(_spec(node, node_level)["metadata"]["name"])
            lab.call(lambda n=node, lv=node_level: lab.store.create(PODS, _spec(n, lv)))
            lab.call(lambda n=name: lab.store.mutate(PODS, NS, n, _ready,
                                                     subresource="status"))
    yield lab
    for obj in lab.call(lambda: lab.store.list(PODS, NS)):
        lab.call(lambda o=obj: lab.store.remove(PODS, NS, o["metadata"]["name"]))
    lab.call(lambda: lab.store.remove(NAMESPACES, "", NS))


def test_each_wait_lists_only_its_own_kind_of_probe(run_pods: ApiLab) -> None:
    listed: list[list[str]] = []

    async def go(node_level: bool) -> pods.ProbeSet:
        cluster = await connect(Target(run_pods.kubeconfig(ADMIN_TOKEN), None))
        plain_list = cluster.list

        async def recording(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            found = await plain_list(*args, **kwargs)
            listed.append(sorted(o["metadata"]["name"] for o in found))
            return found

        cluster.list = recording  # type: ignore[method-assign]
        probes = pods.ProbeSet(NS, RUN)
        await pods.wait_ready(cluster, probes, [_spec(n, node_level) for n in NODES], 5.0)
        return probes

    for node_level, prefix in ((False, "probe-"), (True, "nodeprobe-")):
        listed.clear()
        probes = asyncio.run(go(node_level))
        assert sorted(probes.ready) == list(NODES)
        assert listed, "wait_ready listed nothing"
        assert all(name.startswith(prefix) for names in listed for name in names), listed
        assert all(len(names) == len(NODES) for names in listed), listed
