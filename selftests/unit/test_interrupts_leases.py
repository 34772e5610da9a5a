"""Interrupts (deferred signals, a stop between repair steps, the interrupted repair's record)
and Leases (liveness, which objects count as left by dead runs, per-run names)."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from netdoctor.cluster.leases import DURATION, lease_body, live, live_runs
from netdoctor.cluster.leftovers import find_leftovers
from netdoctor.cluster.probes import probe_pod_spec
from netdoctor.plugin.interrupts import Deferred
from netdoctor.repair.model import Undo
from netdoctor.repair.pending import PendingRepair
from netdoctor.repair.policy import Decision, Policy, decide
from netdoctor.repair.runner import Budget, RemediationLog, apply, make_plan
from selftests.unit.test_repair import FakeCluster, Hook

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _signal_and_work(sig: int, seconds: float) -> None:
    """Receive ``sig``, then go on working (the handler runs at a bytecode boundary)."""
    os.kill(os.getpid(), sig)
    time.sleep(seconds)


def test_deferred_records_the_first_signal_and_raises_on_the_second() -> None:
    with Deferred(grace=30.0) as deferred:
        _signal_and_work(signal.SIGTERM, 0.05)
        assert deferred.requested == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            _signal_and_work(signal.SIGINT, 0.5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferred_interrupts_when_the_grace_runs_out() -> None:
    started = time.monotonic()
    with Deferred(grace=0.2), pytest.raises(KeyboardInterrupt):
        _signal_and_work(signal.SIGINT, 5.0)  # a step that outlives the grace
    assert time.monotonic() - started < 3.0


def test_a_stop_between_steps_leaves_the_rest_listed() -> None:
    ctx = FakeCluster(state={"worker-1": "0", "worker-2": "0"},
                      causes=(("ip-forward-off", None), ("cni-config-shadowed", None)))
    first = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    later = Hook("cni", "cni", frozenset({"cni-config-shadowed"}))
    log = RemediationLog(None)
    hooks: list[Any] = [first, later]
    plans, _ = make_plan(hooks, ctx, log)  # type: ignore[arg-type]
    asked: list[str] = []

    def stop() -> str:  # the signal comes while the first step runs
        asked.append("")
        return "SIGINT" if first.applied else ""

    out = apply(hooks, ctx, Decision("applied", "t"), plans,  # type: ignore[arg-type]
                budget=Budget(4, 12), log=log, stop=stop)
    assert out.mode == "interrupted"
    assert first.applied == ["worker-1"]
    assert later.applied == []
    assert out.left == ["ip-forward worker-2", "cni"]
    assert [s.status for s in out.steps] == ["applied", "skipped", "skipped"]
    assert any("interrupted by SIGINT" in line for line in log.lines)


def test_a_step_cut_short_is_marked_interrupted_with_its_undo() -> None:
    class Cut(Hook):
        def apply(self, ctx: Any, plan: Any) -> str:
            ctx.undos.append(Undo("", None, "api-patch", "configmaps ns/x", "{}", "restore"))
            raise KeyboardInterrupt("SIGTERM")

    ctx = FakeCluster()
    hook = Cut("cut", "system", frozenset({"ip-forward-off"}))
    plans, _ = make_plan([hook], ctx, RemediationLog(None))  # type: ignore[list-item]
    kept: list[int] = []
    out = apply([hook], ctx, Decision("applied", "t"), plans,  # type: ignore[list-item]
                budget=Budget(4, 12), log=RemediationLog(None),
                on_undo=lambda undos: kept.append(len(undos)))
    assert out.mode == "interrupted"
    assert "SIGTERM" in out.reason
    assert [(s.name, s.status) for s in out.steps] == [("cut", "interrupted")]
    assert [u.step for u in out.undos] == ["cut"]
    assert kept == [1]


def test_the_interrupted_repair_is_finished_without_force(tmp_path: Path) -> None:
    pending = PendingRepair(tmp_path / "p.json", "https://a:6443")
    other = PendingRepair(tmp_path / "p.json", "https://b:6443")
    assert decide("partial", Policy()).mode == "refused"
    pending.record("abc123", ["cni w2"], None, [("netfilter-unmanageable", "w1")], now=0.0)
    found = pending.find(now=60.0)
    assert found is not None
    assert other.find(now=60.0) is None  # per cluster
    assert pending.find(now=2 * 24 * 3600.0) is None  # it expires
    decision = decide("partial", Policy(), resume=str(found["run_id"]))
    assert decision.mode == "applied"
    assert "abc123" in decision.reason
    assert decide("none", Policy(), resume="abc123").mode == "applied"
    assert decide("inconclusive", Policy(), resume="abc123").mode == "skipped"
    assert pending.causes(now=60.0) == (("netfilter-unmanageable", "w1"),)
    pending.clear()
    assert pending.find(now=60.0) is None


def test_lease_liveness_and_shape() -> None:
    body = lease_body("netdoctor-run-abc123", "abc123", NOW)
    spec = body["spec"]
    assert body["apiVersion"] == "coordination.k8s.io/v1"
    assert set(spec) == {"holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime",
                         "leaseTransitions"}
    assert spec["renewTime"] == "2026-01-01T12:00:00.000000Z"
    assert live(body, NOW + timedelta(seconds=DURATION - 1))
    assert not live(body, NOW + timedelta(seconds=DURATION))
    assert not live({"spec": {**spec, "holderIdentity": ""}}, NOW)
    assert live_runs([body], NOW) == {"abc123"}


class Listing:
    """A cluster that answers list calls from fixed objects."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects

    async def list(self, kind: str, namespace: str | None = None,
                   selector: str | None = None) -> list[dict[str, Any]]:
        return self.objects.get(kind, [])


def _obj(name: str, run_id: str, age: float, namespace: str = "") -> dict[str, Any]:
    born = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {"name": name, "creationTimestamp": born,
            "labels": {"app.kubernetes.io/managed-by": "netdoctor",
                       "netdoctor.io/run-id": run_id}}
    return {"metadata": {**meta, "namespace": namespace} if namespace else meta}


def test_only_objects_of_dead_runs_are_leftovers() -> None:
    import asyncio

    cluster = Listing({
        "namespaces": [_obj("netdoctor-live01", "live01", 600),
                       _obj("netdoctor-dead01", "dead01", 5),       # expired Lease: dead
                       _obj("netdoctor-nolease", "nolea1", 600),    # no Lease, old: dead
                       _obj("netdoctor-young1", "young1", 5),       # no Lease, young: starting
                       _obj("netdoctor-mine01", "mine01", 600)],
        "pods": [_obj("probe-w1", "live01", 600, "shared"), _obj("probe-w2", "dead01", 5, "x")],
        "leases": [lease_body("netdoctor-run-live01", "live01", NOW - timedelta(seconds=5)),
                   lease_body("netdoctor-run-dead01", "dead01", NOW - timedelta(hours=1))],
    })
    found = asyncio.run(find_leftovers(cluster, "mine01", now=NOW))  # type: ignore[arg-type]
    assert sorted(f.describe() for f in found) == [
        "lease default/netdoctor-run-dead01 (run dead01)",
        "namespace netdoctor-dead01 (run dead01)",
        "namespace netdoctor-nolease (run nolea1)",
        "pod x/probe-w2 (run dead01)"]


@pytest.mark.parametrize(("namespace", "name"), [
    ("netdoctor-abc123", "probe-w1"),
    ("netdoctor-abc123-repair", "probe-w1"),
    ("shared", "probe-abc123-w1"),
], ids=["own", "repair", "shared"])
def test_pods_in_a_shared_namespace_carry_the_run_id(namespace: str, name: str) -> None:
    spec = probe_pod_spec(node="w1", namespace=namespace, image="i:1", run_id="abc123")
    assert spec["metadata"]["name"] == name
