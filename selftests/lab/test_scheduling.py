"""The lab scheduler's filters that placement tests rely on: required pod anti-affinity."""

from __future__ import annotations

from typing import Any

from netdoctor.lab.scheduling import anti_affinity_ok, pick_node

Obj = dict[str, Any]


def node(name: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def echo(uid: str, on: str | None = None, ns: str = "default") -> Obj:
    term = {"labelSelector": {"matchLabels": {"app": "echo"}},
            "topologyKey": "kubernetes.io/hostname"}
    spec: Obj = {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term]}}}
    if on:
        spec["nodeName"] = on
    return {"metadata": {"name": f"echo-{uid}", "namespace": ns, "uid": uid,
                         "labels": {"app": "echo"}}, "spec": spec}


NODES = [node("worker-1"), node("worker-2")]


def test_a_replica_never_joins_its_sibling_even_on_the_busier_node() -> None:
    placed = [echo("a", "worker-2")]
    load = {"worker-1": 5, "worker-2": 1}  # spreading by load alone would pick worker-2
    second = echo("b")
    chosen = pick_node(second["spec"], NODES, load, second, placed)
    assert chosen is not None
    assert chosen["metadata"]["name"] == "worker-1"


def test_no_node_left_means_unschedulable() -> None:
    placed = [echo("a", "worker-1"), echo("b", "worker-2")]
    third = echo("c")
    assert pick_node(third["spec"], NODES, {}, third, placed) is None


def test_other_namespaces_and_the_pod_itself_do_not_count() -> None:
    assert anti_affinity_ok(echo("b"), NODES[0], NODES, [echo("a", "worker-1", ns="other")])
    assert anti_affinity_ok(echo("a", "worker-1"), NODES[0], NODES, [echo("a", "worker-1")])
