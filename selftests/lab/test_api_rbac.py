"""RBAC in the lab's API: ServiceAccount tokens, roles and bindings, the real 403 wording."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from netdoctor.lab.api.auth import Access
from netdoctor.lab.api.rbac import GROUP, Attributes, bootstrap_policy, rule_matches
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.server import make_app
from netdoctor.lab.api.store import Store
from selftests.lab.apilab import FakeRuntime, namespace

ADMIN = {"Authorization": "Bearer admin"}
SA_USER = "system:serviceaccount:netdoctor:netdoctor"


def _role(kind: str, name: str, rules: list[dict[str, Any]], ns: str | None = None
          ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": meta, "rules": rules}


def _binding(kind: str, name: str, role_kind: str, role: str, ns: str | None = None
             ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "netdoctor",
                          "namespace": "netdoctor"}]}


def _store() -> Store:
    store = Store()
    for ns in ("default", "netdoctor", "x"):
        store.create(resource("", "namespaces"), namespace(ns))
    store.create(resource("", "serviceaccounts"),
                 {"metadata": {"name": "netdoctor", "namespace": "netdoctor"}})
    store.create(resource("", "configmaps"), {"metadata": {"name": "allowed",
                                                            "namespace": "default"}})
    for group, plural, obj in bootstrap_policy():
        store.create(resource(group, plural), obj)
    return store


async def _exercise() -> dict[str, Any]:
    store = _store()
    out: dict[str, Any] = {}
    app = make_app(store, FakeRuntime(), {"admin": Access.admin()})
    async with TestClient(TestServer(app)) as c:
        issued = await c.post("/api/v1/namespaces/netdoctor/serviceaccounts/netdoctor/token",
                              json={"spec": {"expirationSeconds": 3600}}, headers=ADMIN)
        out["issued"] = issued.status
        sa = {"Authorization": f"Bearer {(await issued.json())['status']['token']}"}
        out["discovery"] = (await c.get("/api/v1", headers=sa)).status
        denied = await c.post("/api/v1/namespaces/x/pods", json={}, headers=sa)
        out["denied"] = (denied.status, (await denied.json())["message"])
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        await c.post(f"{rbac}/clusterroles", headers=ADMIN, json=_role("ClusterRole", "read", [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
             "resourceNames": ["allowed"]}]))
        await c.post(f"{rbac}/clusterrolebindings", headers=ADMIN,
                     json=_binding("ClusterRoleBinding", "read", "ClusterRole", "read"))
        await c.post(f"{rbac}/namespaces/x/roles", headers=ADMIN, json=_role(
            "Role", "exec", [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["*"]}]))
        await c.post(f"{rbac}/namespaces/x/rolebindings", headers=ADMIN,
                     json=_binding("RoleBinding", "exec", "Role", "exec", "x"))
        out["nodes"] = (await c.get("/api/v1/nodes", headers=sa)).status
        out["named_ok"] = (await c.get("/api/v1/namespaces/default/configmaps/allowed",
                                       headers=sa)).status
        other = await c.get("/api/v1/namespaces/default/configmaps/other", headers=sa)
        out["named_other"] = (other.status, (await other.json())["message"])
        out["exec_x"] = (await c.post("/api/v1/namespaces/x/pods/p/exec", headers=sa)).status
        out["exec_default"] = (await c.post("/api/v1/namespaces/default/pods/p/exec",
                                            headers=sa)).status
        store.delete(resource("", "serviceaccounts"), "netdoctor", "netdoctor", grace=False)
        out["after_delete"] = (await c.get("/api/v1/nodes", headers=sa)).status
    return out


def test_service_account_under_rbac() -> None:
    out = asyncio.run(_exercise())
    assert out["issued"] == 201
    assert out["discovery"] == 200  # system:discovery is bound to system:authenticated
    assert out["denied"] == (403, f'pods is forbidden: User "{SA_USER}" cannot create resource '
                                  '"pods" in API group "" in the namespace "x"')
    assert out["nodes"] == 200
    assert out["named_ok"] == 200
    assert out["named_other"] == (
        403, f'configmaps "other" is forbidden: User "{SA_USER}" cannot get resource '
             '"configmaps" in API group "" in the namespace "default"')
    assert out["exec_x"] != 403  # a Role in x allows it there (404: no such pod)
    assert out["exec_default"] == 403  # ... and nowhere else
    assert out["after_delete"] == 401  # the token dies with its ServiceAccount


@pytest.mark.parametrize(("resources", "sub", "expected"), [
    (["pods"], None, True), (["pods"], "exec", False), (["pods/exec"], "exec", True),
    (["*"], "exec", True), (["*/exec"], "exec", True), (["pods/*"], "log", True),
    (["services"], None, False),
], ids=str)
def test_rule_resources(resources: list[str], sub: str | None, expected: bool) -> None:
    rule = {"apiGroups": [""], "resources": resources, "verbs": ["get"]}
    assert rule_matches(rule, Attributes("u", (), "get", "", "pods", sub, "ns", "p")) is expected


def test_rule_groups_verbs_and_paths() -> None:
    apps = Attributes("u", (), "patch", "apps", "deployments", None, "ns", "d")
    assert rule_matches({"apiGroups": ["apps"], "resources": ["deployments"],
                         "verbs": ["patch"]}, apps)
    assert not rule_matches({"apiGroups": [""], "resources": ["deployments"],
                             "verbs": ["patch"]}, apps)
    assert not rule_matches({"apiGroups": ["apps"], "resources": ["deployments"],
                             "verbs": ["get"]}, apps)
    path = Attributes("u", (), "get", "", "", None, None, None, path="/apis/apps/v1")
    assert rule_matches({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}, path)
    assert not rule_matches({"nonResourceURLs": ["/api"], "verbs": ["get"]}, path)
