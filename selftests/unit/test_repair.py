"""The remediation policy and the ordered run, with fake hooks and a fake cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from netdoctor.repair.model import Action, Plan, RepairContext
from netdoctor.repair.policy import Decision, Policy, decide
from netdoctor.repair.runner import RemediationLog, run


@pytest.mark.parametrize(("verdict", "policy", "tty", "answer", "mode"), [
    ("confirmed", Policy(non_interactive=True), False, None, "applied"),
    ("confirmed", Policy(), False, None, "refused"),
    ("partial", Policy(non_interactive=True), False, None, "refused"),
    ("partial", Policy(non_interactive=True, force=True), False, None, "applied"),
    ("partial", Policy(), True, True, "applied"),
    ("partial", Policy(), True, False, "refused"),
    ("none", Policy(non_interactive=True), False, None, "skipped"),
    ("none", Policy(non_interactive=True, force=True), False, None, "applied"),
    ("partial", Policy(dry_run=True), False, None, "dry-run"),
], ids=lambda v: str(v))
def test_policy(verdict: str, policy: Policy, tty: bool, answer: bool | None,
                mode: str) -> None:
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return bool(answer)
    assert decide(verdict, policy, tty=tty, ask=ask).mode == mode
    assert bool(asked) == (answer is not None)


@dataclass
class FakeCluster:
    signals: frozenset[str] = frozenset({"pod_connectivity_failed"})
    causes: tuple[tuple[str, str | None], ...] = (("ip-forward-off", "worker-1"),)
    allow_control_plane: bool = False
    state: dict[str, str] = field(default_factory=lambda: {"worker-1": "0"})

    def control_plane_nodes(self) -> frozenset[str]:
        return frozenset({"control-plane"})

    def node_exec(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        self.state[node] = "1"
        return 0, "", ""

    def rollout_restart(self, kind: str, namespace: str, name: str, deadline: float) -> str:
        return "restarted"

    def apply_manifest(self, path: str, deadline: float) -> str:
        return "applied"


@dataclass
class Hook:
    name: str
    stage: str
    addresses: frozenset[str]
    level: str = "node"
    disruptive: bool = False
    deadline: float = 10.0
    fail: bool = False
    applied: list[str] = field(default_factory=list)

    def plan(self, ctx: RepairContext) -> list[Plan]:
        assert isinstance(ctx, FakeCluster)
        return [Plan(self.name, n, (Action(f"fix {n}", f"sysctl -w x=1 on {n}"),),
                     self.disruptive) for n, v in ctx.state.items() if v == "0"]

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        if self.fail:
            raise RuntimeError("boom")
        assert plan.node is not None
        ctx.node_exec(plan.node, "x", 5)
        self.applied.append(plan.node)
        return "done"

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert isinstance(ctx, FakeCluster)
        return None if ctx.state.get(str(plan.node)) == "1" else "still 0"


def test_run_orders_applies_and_is_idempotent(tmp_path: object) -> None:
    ctx = FakeCluster()
    late = Hook("coredns", "coredns", frozenset({"pod_connectivity_failed"}))
    early = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    log = RemediationLog(None)
    out = run([late, early], ctx, Decision("applied", "test"), max_disruptive=1, log=log)
    assert [(s.name, s.status) for s in out.steps] == [("ip-forward", "applied")]
    assert early.applied == ["worker-1"]
    again = run([late, early], ctx, Decision("applied", "test"), max_disruptive=1, log=log)
    assert again.steps == []
    assert any("applied ip-forward node=worker-1" in line for line in log.lines)


def test_failure_stops_later_stages() -> None:
    ctx = FakeCluster(state={"worker-1": "0", "worker-2": "0"})
    broken = Hook("ip-forward", "system", frozenset({"ip-forward-off"}), fail=True)
    later = Hook("cni", "cni", frozenset({"pod_connectivity_failed"}))
    out = run([later, broken], ctx, Decision("applied", "t"), max_disruptive=5,
              log=RemediationLog(None))
    statuses = [(s.name, s.node, s.status) for s in out.steps]
    assert statuses[0] == ("ip-forward", "worker-1", "failed")
    assert all(status == "skipped" for _, _, status in statuses[1:])
    assert "ip-forward on worker-1 failed" in out.steps[-1].detail
    assert later.applied == []


def test_dry_run_and_cap_change_nothing() -> None:
    ctx = FakeCluster(state={"worker-1": "0", "worker-2": "0"})
    hook = Hook("ip-forward", "system", frozenset({"ip-forward-off"}), disruptive=True)
    dry = run([hook], ctx, Decision("dry-run", "t"), max_disruptive=5, log=RemediationLog(None))
    assert {s.status for s in dry.steps} == {"planned"}
    assert ctx.state == {"worker-1": "0", "worker-2": "0"}
    capped = run([hook], ctx, Decision("applied", "t"), max_disruptive=1,
                 log=RemediationLog(None))
    assert [s.status for s in capped.steps] == ["applied", "skipped"]
    assert "cap of 1" in capped.steps[1].detail


def test_refused_run_plans_nothing() -> None:
    ctx = FakeCluster()
    hook = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    out = run([hook], ctx, Decision("refused", "partial"), max_disruptive=1,
              log=RemediationLog(None))
    assert out.steps == []
    assert out.mode == "refused"
    assert ctx.state == {"worker-1": "0"}
