"""PodDisruptionBudgets and the eviction subresource, as the real API server answers them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from netdoctor.lab.api.auth import Access
from netdoctor.lab.api.disruption import VIOLATION, sync_budgets
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.server import make_app
from netdoctor.lab.api.store import Store
from selftests.lab.apilab import FakeRuntime, namespace

AUTH = {"Authorization": "Bearer t"}
PODS = resource("", "pods")
PDBS = resource("policy", "poddisruptionbudgets")
BASE = "/api/v1/namespaces/default/pods"


def _pod(name: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def _eviction(name: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"}}


async def _exercise() -> dict[str, Any]:
    store = Store()
    store.create(resource("", "namespaces"), namespace("default"))
    for name in ("web-1", "web-2"):
        store.create(PODS, _pod(name), "default")
    store.create(PODS, {**_pod("other"), "metadata": {"name": "other"}}, "default")
    store.create(PDBS, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}, "default")
    sync_budgets(store)
    out: dict[str, Any] = {"status": store.get(PDBS, "default", "web")["status"]}
    app = make_app(store, FakeRuntime(), {"t": Access.admin()})
    async with TestClient(TestServer(app)) as c:
        blocked = await c.post(f"{BASE}/web-1/eviction", json=_eviction("web-1"), headers=AUTH)
        out["blocked"] = (blocked.status, await blocked.json())
        out["kept"] = store.find(PODS, "default", "web-1") is not None
        free = await c.post(f"{BASE}/other/eviction", json=_eviction("other"), headers=AUTH)
        out["free"] = free.status
        out["other_gone"] = (store.find(PODS, "default", "other") is None
                             or bool(store.get(PODS, "default", "other")["metadata"].get(
                                 "deletionTimestamp")))
        store.mutate(PDBS, "default", "web",
                     lambda o: o["spec"].update(minAvailable="50%"))
        sync_budgets(store)
        out["relaxed"] = store.get(PDBS, "default", "web")["status"]["disruptionsAllowed"]
        ok = await c.post(f"{BASE}/web-1/eviction", json=_eviction("web-1"), headers=AUTH)
        out["allowed"] = ok.status
        out["after"] = store.get(PDBS, "default", "web")["status"]
        missing = await c.post(f"{BASE}/nope/eviction", json=_eviction("nope"), headers=AUTH)
        out["missing"] = missing.status
        listed = await c.get("/apis/policy/v1/namespaces/default/poddisruptionbudgets",
                             headers=AUTH)
        out["listed"] = [i["metadata"]["name"] for i in (await listed.json())["items"]]
    return out


def test_budget_blocks_then_allows_an_eviction() -> None:
    out = asyncio.run(asyncio.wait_for(_exercise(), 20))
    assert out["status"]["currentHealthy"] == 2
    assert out["status"]["desiredHealthy"] == 2
    assert out["status"]["disruptionsAllowed"] == 0
    code, body = out["blocked"]
    assert code == 429
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == VIOLATION
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert out["kept"]
    assert out["free"] == 201
    assert out["other_gone"]
    assert out["relaxed"] == 1
    assert out["allowed"] == 201
    assert out["after"]["disruptionsAllowed"] == 0
    assert "web-1" in out["after"]["disruptedPods"]
    assert out["missing"] == 404
    assert out["listed"] == ["web"]
