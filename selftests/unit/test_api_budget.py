"""The API budget: one token bucket for every request, a deadline per list page, and a list
that cannot be completed is an error, never a shorter answer."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from netdoctor.cluster.client import Cluster, DeadlineExceeded, Target
from netdoctor.cluster.profile import Workload
from netdoctor.cluster.ratelimit import TokenBucket, limit, resource_of
from netdoctor.lab.api.requestcount import verb_and_resource
from netdoctor.probes.components import log_tails, pod_state, read_component


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_paces_at_qps() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=5.0, burst=3, clock=clock)
    waits = [bucket.wait_for() for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, pytest.approx(0.2), pytest.approx(0.4)]
    clock.now = 10.0  # idle long enough: the burst is back, never more than burst
    assert [bucket.wait_for() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.2)]


def test_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="qps must be > 0"):
        TokenBucket(qps=0, burst=1)
    with pytest.raises(ValueError, match="burst >= 1"):
        TokenBucket(qps=1, burst=0)


def test_acquire_waits_and_counts() -> None:
    bucket = TokenBucket(qps=20.0, burst=1)

    async def go() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(4):
            await bucket.acquire("GET pods")
        return loop.time() - start

    took = asyncio.run(go())
    assert took >= 3 / 20.0 * 0.9  # three requests beyond the burst, 50 ms apart
    assert bucket.sent["GET pods"] == 4
    assert bucket.waited > 0


class FakeKr8s:
    """What :func:`limit` needs of a kr8s API: ``_create_session`` and ``_session``."""

    def __init__(self, handler: Any) -> None:
        self._session: httpx.AsyncClient | None = None
        self._handler = handler

    async def _create_session(self) -> None:
        self._session = httpx.AsyncClient(transport=httpx.MockTransport(self._handler),
                                          base_url="https://api")


def test_every_request_of_the_client_waits_for_the_bucket() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={})

    api = FakeKr8s(handler)
    bucket = TokenBucket(qps=1000.0, burst=1000)
    limit(api, bucket)
    limit(api, bucket)  # idempotent: one hook, one count per request

    async def go() -> None:
        await api._create_session()  # kr8s re-creates it after re-authenticating
        assert api._session is not None
        await api._session.get("/api/v1/namespaces/x/pods")
        await api._create_session()
        await api._session.post("/api/v1/namespaces/x/pods")
        await api._session.get("/apis/apps/v1/daemonsets")

    asyncio.run(go())
    assert len(seen) == 3
    assert dict(bucket.sent) == {"GET pods": 1, "POST pods": 1, "GET daemonsets": 1}


class PagedApi:
    """A kr8s-like API whose list answers in pages, each after ``delays[i]`` seconds."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays
        self.calls = 0

    @contextlib.asynccontextmanager
    async def async_get_kind(self, kind: str, **kwargs: Any) -> AsyncIterator[Any]:
        page = int(kwargs["params"].get("continue", "0"))
        self.calls += 1
        await asyncio.sleep(self.delays[page])
        more = page + 1 < len(self.delays)
        body = {"items": [{"metadata": {"name": f"p{page}"}}],
                "metadata": {"continue": str(page + 1) if more else ""}}

        class Kind:
            kind, version = "Pod", "v1"

        class Resp:
            def json(self) -> dict[str, Any]:
                return body

        yield Kind, Resp()


def test_each_page_has_its_own_deadline() -> None:
    api = PagedApi([0.15, 0.15, 0.15, 0.15])  # 0.6 s in all, each page well within 0.3 s
    cluster = Cluster(api, Target(None, None), timeout=0.3, read_budget=0.5)
    items = asyncio.run(cluster.list("pods"))
    assert [i["metadata"]["name"] for i in items] == ["p0", "p1", "p2", "p3"]
    assert items[0]["kind"] == "Pod"


def test_a_list_that_cannot_finish_is_an_error_not_fewer_items() -> None:
    api = PagedApi([0.0, 5.0])  # the second page never answers in time
    cluster = Cluster(api, Target(None, None), timeout=0.2, read_budget=0.5)
    with pytest.raises(DeadlineExceeded, match=r"list pods \(page 2\)"):
        asyncio.run(cluster.list("pods"))
    assert api.calls == 2  # the first page was read, the second was asked and not skipped


@pytest.mark.parametrize(("method", "path", "query", "want"), [
    ("GET", "/api/v1/namespaces/x/pods", {}, ("list", "pods")),
    ("GET", "/api/v1/pods", {"watch": "true"}, ("watch", "pods")),
    ("GET", "/api/v1/namespaces/x/pods/p", {}, ("get", "pods")),
    ("GET", "/api/v1/namespaces/x/pods/p/log", {}, ("get", "pods/log")),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {},
     ("create", "selfsubjectaccessreviews")),
    ("DELETE", "/api/v1/namespaces/x", {}, ("delete", "namespaces")),
    ("DELETE", "/api/v1/namespaces/x/pods", {}, ("deletecollection", "pods")),
    ("PATCH", "/apis/apps/v1/namespaces/k/daemonsets/d", {}, ("patch", "daemonsets")),
    ("GET", "/version", {}, ("get", "version")),
])
def test_lab_counts_by_verb_and_resource(method: str, path: str, query: dict[str, str],
                                         want: tuple[str, str]) -> None:
    assert verb_and_resource(method, path, query) == want
    assert resource_of(path) == want[1] or path == "/version"


class LogCluster:
    """Pods of one component, their logs, and the log reads asked of it."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.asked: list[tuple[str, str]] = []

    async def list(self, kind: str, **_: Any) -> list[dict[str, Any]]:
        return self.pods if kind == "pods" else []

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        previous = kw["params"]["previous"]
        self.asked.append((path, previous))
        if previous == "true" and not path.startswith("pods/restarted"):
            raise RuntimeError("previous terminated container not found")  # the API's 400
        return httpx.Response(200, text=f"{path} previous={previous} i/o timeout\n")


def _pod(name: str, restarts: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "kube-system", "name": name, "labels": {"k": "dns"}},
            "spec": {"nodeName": "n1"},
            "status": {"containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def test_previous_logs_are_read_only_for_containers_that_restarted() -> None:
    # A container that never restarted has no previous log: asking costs one request per
    # pod (two hundred on a 100-node cluster's kube-proxies) for a 400.
    pods = [_pod("fresh", 0), _pod("restarted", 3)]
    cluster = LogCluster(pods)
    workload = Workload("Deployment", "kube-system", "coredns", "k=dns", ())
    state = asyncio.run(read_component(cluster, workload,  # type: ignore[arg-type]
                                       logs=re.compile("i/o timeout")))
    assert sorted(cluster.asked) == [("pods/fresh/log", "false"),
                                     ("pods/restarted/log", "false"),
                                     ("pods/restarted/log", "true")]
    # Oldest first: the previous container's lines, then the current one's.
    assert state.log_lines["restarted"] == ("pods/restarted/log previous=true i/o timeout",
                                            "pods/restarted/log previous=false i/o timeout")
    # validate's log reads share the reader.
    cluster.asked.clear()
    texts = [asyncio.run(log_tails(cluster, pod_state(p))) for p in pods]  # type: ignore[arg-type]
    assert cluster.asked == [("pods/fresh/log", "false"), ("pods/restarted/log", "true"),
                             ("pods/restarted/log", "false")]
    assert [len(t) for t in texts] == [1, 2]
