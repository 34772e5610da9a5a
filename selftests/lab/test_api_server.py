"""Server behaviour no client test reaches: 410 on watch, 404s, the public endpoints."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from netdoctor.lab.api.auth import Access
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.server import make_app
from netdoctor.lab.api.store import Store
from selftests.lab.apilab import FakeRuntime, namespace

AUTH = {"Authorization": "Bearer t"}


async def _exercise() -> dict[str, Any]:
    store = Store(history=2)  # tiny history, so old resourceVersions expire
    store.create(resource("", "namespaces"), namespace("default"))
    for i in range(5):
        store.create(resource("", "configmaps"), {"metadata": {"name": f"c{i}"}})
    out: dict[str, Any] = {}
    async with TestClient(TestServer(make_app(store, FakeRuntime(), {"t": Access.admin()}))) as c:
        old = await c.get("/api/v1/namespaces/default/configmaps",
                          params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "1"},
                          headers=AUTH)
        out["expired"] = [json.loads(line) for line in (await old.text()).splitlines()]
        missing = await c.get("/api/v1/namespaces/default/widgets", headers=AUTH)
        out["unknown"] = (missing.status, await missing.json())
        out["version"] = (await c.get("/version")).status
        out["healthz"] = (await c.get("/healthz")).status
        out["no_token"] = (await c.get("/api/v1/pods")).status
        out["dry_run"] = (await c.post("/api/v1/namespaces/default/configmaps?dryRun=All",
                                       json={"metadata": {"name": "dry"}}, headers=AUTH)).status
    out["dry_run_stored"] = store.find(resource("", "configmaps"), "default", "dry")
    return out


def test_server_edges() -> None:
    out = asyncio.run(asyncio.wait_for(_exercise(), 20))
    assert out["expired"] == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 1", "reason": "Expired", "code": 410}}]
    assert out["unknown"][0] == 404
    assert out["unknown"][1]["message"] == "the server could not find the requested resource"
    assert (out["version"], out["healthz"], out["no_token"]) == (200, 200, 401)
    assert out["dry_run"] == 201
    assert out["dry_run_stored"] is None
