"""The lab store's owner index and namespace counts: dependents found, cascaded and
finished as the API server's garbage collector and namespace controller would."""

from __future__ import annotations

from typing import Any

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store

NAMESPACES = resource("", "namespaces")
PODS = resource("", "pods")
DEPLOYMENTS = resource("apps", "deployments")
REPLICASETS = resource("apps", "replicasets")


def _ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True}


def _store() -> Store:
    store = Store()
    for ns in ("a", "b"):
        store.create(NAMESPACES, {"metadata": {"name": ns}})
    return store


def _pod(name: str, ns: str, *owners: dict[str, Any], node: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "ownerReferences": [
        _ref(o) for o in owners]}, "spec": {"containers": [], "nodeName": node}}


def _names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_children_are_found_by_owner_resource_and_namespace() -> None:
    store = _store()
    rs = store.create(REPLICASETS, {"metadata": {"name": "web", "namespace": "a"}, "spec": {}})
    other = store.create(REPLICASETS, {"metadata": {"name": "db", "namespace": "a"},
                                       "spec": {}})
    for name in ("web-2", "web-1"):
        store.create(PODS, _pod(name, "a", rs))
    store.create(PODS, _pod("db-1", "a", other))
    store.create(PODS, _pod("loose", "a"))
    uid = rs["metadata"]["uid"]
    assert _names(store.children(PODS, "a", uid)) == ["web-1", "web-2"]  # by name
    assert store.children(PODS, "b", uid) == []
    assert store.children(REPLICASETS, "a", uid) == []
    # An update that drops the owner (orphaning) takes the pod out; one that adds it, in.
    store.mutate(PODS, "a", "web-2", lambda p: p["metadata"].update(ownerReferences=[]))
    store.mutate(PODS, "a", "loose", lambda p: p["metadata"].update(ownerReferences=[_ref(rs)]))
    assert _names(store.children(PODS, "a", uid)) == ["loose", "web-1"]
    store.remove(PODS, "a", "web-1")
    assert _names(store.children(PODS, "a", uid)) == ["loose"]


def test_deleting_an_owner_cascades_through_its_dependents() -> None:
    store = _store()
    dep = store.create(DEPLOYMENTS, {"metadata": {"name": "web", "namespace": "a"},
                                     "spec": {}})
    rs = store.create(REPLICASETS, {"metadata": {"name": "web-x", "namespace": "a",
                                                 "ownerReferences": [_ref(dep)]}, "spec": {}})
    store.create(PODS, _pod("web-x-1", "a", rs))
    store.create(PODS, _pod("keep", "a"))
    store.delete(DEPLOYMENTS, "a", "web")
    assert store.find(REPLICASETS, "a", "web-x") is None
    assert store.find(PODS, "a", "web-x-1") is None  # unbound: removed at once
    assert store.find(PODS, "a", "keep") is not None


def test_orphan_propagation_leaves_dependents() -> None:
    store = _store()
    rs = store.create(REPLICASETS, {"metadata": {"name": "web", "namespace": "a"}, "spec": {}})
    store.create(PODS, _pod("web-1", "a", rs))
    store.delete(REPLICASETS, "a", "web", propagation="Orphan")
    assert store.find(PODS, "a", "web-1") is not None


def test_a_deleted_namespace_goes_with_its_last_object() -> None:
    store = _store()
    store.create(PODS, _pod("bound", "a", node="worker-1"))  # graceful: the kubelet removes it
    store.create(PODS, _pod("other-ns", "b", node="worker-1"))
    store.delete(NAMESPACES, "", "a")
    assert store.find(NAMESPACES, "", "a") is not None  # still holds a terminating pod
    store.remove(PODS, "a", "bound")  # the kubelet's final removal
    assert store.find(NAMESPACES, "", "a") is None
    assert store.find(NAMESPACES, "", "b") is not None
    assert store.find(PODS, "b", "other-ns") is not None
