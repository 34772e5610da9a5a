"""The built-in Flannel agent against a real Store and a real 3-node data plane."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store
from netdoctor.lab.components import flannel as agent
from netdoctor.lab.containers import ContainerContext, LabInfo, NodeInfo, builtin_for
from netdoctor.lab.net import flannel
from selftests.lab._netlab import (
    Lab,
    Loop,
    build,
    leftovers,
    ping_until,
    prefix_for,
    require_root,
    rmtree,
    teardown,
)

PREFIX = prefix_for("f")
NODES = resource("", "nodes")
IMAGE = "docker.io/flannel/flannel:v0.25.6"


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    lp = Loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def lab(loop: Loop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_root()
    state = tmp_path_factory.mktemp("flannel")
    try:
        yield loop.run(build(PREFIX, state, nodes=3, per_node=1, with_flannel=False))
    finally:
        loop.cancel_pending()  # agents still running must not outlive their namespaces
        loop.run(teardown(PREFIX, state))
        rmtree(state)
    assert leftovers(PREFIX) == []


def node_object(node: NodeInfo, pod_cidr: str | None) -> dict[str, Any]:
    spec = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {}
    return {"metadata": {"name": node.name}, "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": node.internal_ip},
                                     {"type": "Hostname", "address": node.name}]}}


def context(lab: Lab, store: Store, node: NodeInfo, log: list[str]) -> ContainerContext:
    pod: dict[str, Any] = {
        "metadata": {"name": f"kube-flannel-ds-{node.index}", "namespace": "kube-flannel"},
        "spec": {"hostNetwork": True, "nodeName": node.name,
                 "containers": [{"name": "kube-flannel", "image": IMAGE}]}}
    info = LabInfo(PREFIX, {n.name: n for n in lab.nodes}, lab.router.netns,
                   lab.router.bridge, state_dir=lab.state_dir)
    return ContainerContext(pod, pod["spec"]["containers"][0], node, node.netns,
                            node.internal_ip, store, info, log.append)


async def wait_for(check: Any, timeout: float = 5.0) -> None:
    """Poll ``check()`` (sync) until true, letting the agents run meanwhile."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def annotated(store: Store, name: str) -> bool:
    ann = store.get(NODES, "", name)["metadata"].get("annotations") or {}
    return ann.get(agent.BACKEND_TYPE) == "vxlan"


def test_agent_programs_peers_and_cleans_up_on_cancel(lab: Lab, loop: Loop) -> None:
    store = Store()
    for n in lab.nodes:
        store.create(NODES, node_object(n, n.pod_cidr))
    logs: dict[str, list[str]] = {n.name: [] for n in lab.nodes}
    n0, n1, _ = lab.nodes
    tasks = {n.name: loop.loop.create_task(agent.FlannelAgent().run(
        context(lab, store, n, logs[n.name]))) for n in (n0, n1)}

    try:
        check_two_agents(lab, loop, store, logs, tasks)
    finally:
        for task in tasks.values():
            task.cancel()
        loop.run(asyncio.wait(tasks.values()))


def check_two_agents(lab: Lab, loop: Loop, store: Store, logs: dict[str, list[str]],
                     tasks: dict[str, asyncio.Task[int]]) -> None:
    n0, n1, _ = lab.nodes
    p0, p1, p2 = lab.pods
    loop.run(wait_for(lambda: annotated(store, n0.name) and annotated(store, n1.name)))
    ann = store.get(NODES, "", n0.name)["metadata"]["annotations"]
    mac = loop.run(flannel.vxlan_mac(n0.netns))
    assert json.loads(ann[agent.BACKEND_DATA]) == {"VNI": 1, "VtepMAC": mac}
    assert ann[agent.PUBLIC_IP] == n0.internal_ip
    assert ann[agent.SUBNET_MANAGER] == "true"
    assert loop.run(ping_until(p0.netns, p1.ip, ok=True))
    assert loop.run(ping_until(p1.netns, p0.ip, ok=True))
    assert not loop.run(ping_until(p0.netns, p2.ip, ok=True, timeout=0.5))  # no agent on n2
    assert any("Subnet added: 10.244.1.0/24" in line for line in logs[n0.name])
    assert (n0.root / flannel.SUBNET_ENV).read_text().startswith("FLANNEL_NETWORK=")

    tasks[n0.name].cancel()
    loop.run(asyncio.wait([tasks[n0.name]]))
    assert tasks[n0.name].cancelled()
    assert loop.run(flannel.vxlan_mac(n0.netns)) is None
    assert loop.run(ping_until(p1.netns, p0.ip, ok=False))
    assert not tasks[n1.name].done()


def test_agent_follows_a_node_that_joins_later(lab: Lab, loop: Loop) -> None:
    store = Store()
    for n in lab.nodes:
        store.create(NODES, node_object(n, n.pod_cidr))
    logs: list[str] = []
    _, n1, n2 = lab.nodes
    first = loop.loop.create_task(agent.FlannelAgent().run(context(lab, store, n1, logs)))
    loop.run(wait_for(lambda: annotated(store, n1.name)))
    second = loop.loop.create_task(agent.FlannelAgent().run(context(lab, store, n2, [])))
    try:
        assert loop.run(ping_until(lab.pods[1].netns, lab.pods[2].ip, ok=True))
        assert loop.run(ping_until(lab.pods[2].netns, lab.pods[1].ip, ok=True))
        # n2's Node loses its annotations (e.g. deleted and re-registered): n1 drops the peer.
        store.mutate(NODES, "", n2.name, lambda o: o["metadata"].pop("annotations"))
        loop.run(wait_for(lambda: any("Subnet removed: 10.244.2.0/24" in x for x in logs)))
        assert loop.run(ping_until(lab.pods[1].netns, lab.pods[2].ip, ok=False))
    finally:
        for task in (first, second):
            task.cancel()
        loop.run(asyncio.wait([first, second]))


def test_agent_without_pod_cidr_exits_1(lab: Lab, loop: Loop) -> None:
    store = Store()
    node = lab.nodes[2]
    store.create(NODES, node_object(node, None))
    logs: list[str] = []
    code = loop.run(agent.FlannelAgent().run(context(lab, store, node, logs)))
    assert code == 1
    assert logs[-1].startswith("E")
    assert logs[-1].endswith('Error registering network: failed to acquire lease: '
                             f'node "{node.name}" pod cidr not assigned')
    assert loop.run(flannel.vxlan_mac(node.netns)) is None


def test_image_pattern_is_registered() -> None:
    assert isinstance(builtin_for(IMAGE), agent.FlannelAgent)
    assert not isinstance(builtin_for("registry.k8s.io/kube-proxy:v1.29.0"), agent.FlannelAgent)
