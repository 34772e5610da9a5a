"""The lab API server's own faults, met by the suite's client: reads retried with back-off
and ``Retry-After``, writes sent once, one line per problem, a bounded give-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from netdoctor.cluster.client import Cluster, DeadlineExceeded, Target, connect
from netdoctor.lab.api.apifaults import SLOW_SECONDS
from selftests.lab.apilab import ApiLab

T = TypeVar("T")


@pytest.fixture
def faulty(lab: ApiLab) -> Iterator[ApiLab]:
    """The shared API server, its fault cleared afterwards whatever happened."""
    yield lab
    lab.call(lab.faults.clear)


def inject(lab: ApiLab, name: str, seconds: float | None = None) -> None:
    lab.call(lambda: lab.faults.set(name, seconds))


def run(lab: ApiLab, call: Callable[[Cluster], Awaitable[T]], fault: str | None = None,
        seconds: float | None = None, **settings: float) -> tuple[Cluster, T]:
    """Connect (healthy), apply ``settings`` and ``fault``, then ``call`` on one loop."""
    async def go() -> tuple[Cluster, T]:
        cluster = await connect(Target(lab.kubeconfig(), None))
        for key, value in settings.items():
            setattr(cluster, key, value)
        if fault:
            inject(lab, fault, seconds)
        return cluster, await call(cluster)
    return asyncio.run(go())


def lists(n: int) -> Callable[[Cluster], Awaitable[list[int]]]:
    async def go(cluster: Cluster) -> list[int]:
        return [len(await cluster.list("pods", namespace="default")) for _ in range(n)]
    return go


@pytest.mark.parametrize("fault", ["api-throttle", "api-flaky"])
def test_reads_survive_a_misbehaving_api(faulty: ApiLab, fault: str) -> None:
    healthy = run(faulty, lists(1))[1][0]
    cluster, seen = run(faulty, lists(8), fault)
    assert seen == [healthy] * 8  # complete lists, never empty
    assert cluster.problems, "the problems met were not recorded"
    assert all(line.startswith("API problem: list pods in default: ")
               for line in cluster.problems), cluster.problems
    assert len(cluster.problems) == len(set(cluster.problems))  # one line per problem


def test_retry_after_is_honoured(faulty: ApiLab) -> None:
    started = time.monotonic()
    cluster, _ = run(faulty, lists(6), "api-throttle")
    throttled = faulty.call(lambda: faulty.faults.count) - 6  # requests beyond one per list
    assert throttled > 0
    assert any("HTTP 429 (throttled)" in line for line in cluster.problems), cluster.problems
    # each 429 says Retry-After: 1, and the client waited that long before asking again
    assert time.monotonic() - started >= 1.0 * (throttled // 2)


def test_held_requests_are_answered_when_the_api_is_back(faulty: ApiLab) -> None:
    started = time.monotonic()
    cluster, seen = run(faulty, lists(1), "api-down", 2.5, timeout=1.0)
    assert seen
    assert 2.0 <= time.monotonic() - started < 15
    assert cluster.problems == [
        "API problem: list pods in default: no answer within 1s; retrying for up to 60s"]


def test_reads_give_up_within_their_budget(faulty: ApiLab) -> None:
    problems: list[str] = []

    async def give_up(cluster: Cluster) -> None:
        cluster.notify = problems.append
        await lists(1)(cluster)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run(faulty, give_up, "api-down", timeout=0.5, read_budget=3.0)
    assert time.monotonic() - started < 3.0 + 0.5 + 4.0  # budget, one try, one back-off
    assert problems[-1].startswith("API problem: list pods in default: gave up after")


def test_writes_are_sent_once(faulty: ApiLab) -> None:
    problems: list[str] = []
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "once"}}

    async def post(cluster: Cluster) -> None:
        cluster.notify = problems.append
        await cluster.request("POST", "configmaps", namespace="default", body=body)

    with pytest.raises(DeadlineExceeded):
        run(faulty, post, "api-down", timeout=0.5, read_budget=30.0)
    assert faulty.call(lambda: faulty.faults.count) == 1  # not repeated blindly
    assert problems == []


def test_slow_api_answers_late(faulty: ApiLab) -> None:
    started = time.monotonic()
    run(faulty, lists(1), "api-slow")
    assert time.monotonic() - started >= SLOW_SECONDS


def test_down_for_seconds_ends_by_itself(faulty: ApiLab) -> None:
    inject(faulty, "api-down", 0.5)
    assert faulty.call(faulty.faults.active) == "api-down"
    time.sleep(0.7)
    assert faulty.call(faulty.faults.active) is None


def test_unknown_api_fault_is_refused(faulty: ApiLab, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown API fault"):
        faulty.call(lambda: faulty.faults.set("api-gone", None))


def test_cleanup_lists_what_it_could_not_remove(faulty: ApiLab) -> None:
    from netdoctor.cluster import probes as pods
    from netdoctor.lab.api.resources import resource
    from selftests.lab.apilab import namespace

    run_id = "c1ea00"
    ns = namespace(f"netdoctor-{run_id}")
    ns["metadata"]["labels"] = pods.labels(run_id)
    spec = pods.probe_pod_spec(node="worker-1", namespace=f"netdoctor-{run_id}",
                               image="busybox:1.36", run_id=run_id)
    faulty.call(lambda: faulty.store.create(resource("", "namespaces"), ns))
    faulty.call(lambda: faulty.store.create(resource("", "pods"), spec))
    probes = pods.ProbeSet(f"netdoctor-{run_id}", run_id,
                           created=[("namespace", f"netdoctor-{run_id}"),
                                    ("pod", "probe-worker-1")])

    async def remove(cluster: Cluster) -> list[str]:
        return await pods.remove(cluster, probes, wait=1.0, budget=1.0)

    try:
        _, problems = run(faulty, remove, "api-down", timeout=0.5, read_budget=1.0)
        assert problems
        assert [(x.kind, x.namespace, x.name) for x in probes.unremoved] == [
            ("pod", f"netdoctor-{run_id}", "probe-worker-1"),
            ("namespace", "", f"netdoctor-{run_id}")]
        assert probes.unremoved[0].to_json()["command"] == (
            f"kubectl delete pod -n netdoctor-{run_id} probe-worker-1 --grace-period=0 "
            "--wait=false")
        assert probes.unremoved[1].command() == (
            f"kubectl delete namespace netdoctor-{run_id} --wait=false")
    finally:
        faulty.call(faulty.faults.clear)
        for plural, key in (("pods", f"netdoctor-{run_id}"), ("namespaces", "")):
            name = "probe-worker-1" if plural == "pods" else f"netdoctor-{run_id}"
            if faulty.call(lambda p=plural, k=key, n=name: faulty.store.find(
                    resource("", p), k, n)) is not None:
                faulty.call(lambda p=plural, k=key, n=name: faulty.store.delete(
                    resource("", p), k, n))
