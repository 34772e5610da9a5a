"""The remediation policy and consent, the ordered run (cause binding, the change budget,
cooldown), undo records and the plan files, with fake hooks and a fake cluster."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netdoctor.repair.model import Action, Plan, RemediationHook, RepairContext, Undo
from netdoctor.repair.planfile import write_plan
from netdoctor.repair.policy import Decision, Policy, consent, decide
from netdoctor.repair.runner import (
    Budget,
    Outcome,
    RemediationLog,
    apply,
    make_plan,
    planned_steps,
)
from netdoctor.repair.undo import Cooldown, find_undo, read_undo, undo_one, write_undo


@pytest.mark.parametrize(("verdict", "policy", "mode"), [
    ("confirmed", Policy(), "applied"),
    ("partial", Policy(non_interactive=True), "refused"),
    ("partial", Policy(force=True), "applied"),
    ("none", Policy(), "skipped"),
    ("none", Policy(force=True), "applied"),
    ("partial", Policy(dry_run=True), "dry-run"),
], ids=lambda v: str(v))
def test_verdict_gate(verdict: str, policy: Policy, mode: str) -> None:
    assert decide(verdict, policy).mode == mode


@pytest.mark.parametrize(("policy", "tty", "answer", "mode"), [
    (Policy(yes=True), False, None, "applied"),
    (Policy(non_interactive=True), False, None, "refused"),
    (Policy(non_interactive=True), True, None, "refused"),
    (Policy(non_interactive=True, yes=True), False, None, "applied"),
    (Policy(), False, None, "refused"),
    (Policy(), True, True, "applied"),
    (Policy(), True, False, "refused"),
], ids=lambda v: str(v))
def test_consent(policy: Policy, tty: bool, answer: bool | None, mode: str) -> None:
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return bool(answer)
    decided = consent(Decision("applied", "verdict confirmed"), policy, tty=tty, ask=ask)
    assert decided.mode == mode
    assert bool(asked) == (answer is not None)
    if mode == "refused" and answer is None:
        assert "pass --yes to apply it" in decided.reason


def test_consent_keeps_dry_run() -> None:
    dry = Decision("dry-run", "--dry-run")
    assert consent(dry, Policy(yes=True), tty=False) == dry


@dataclass
class FakeCluster:
    causes: tuple[tuple[str, str | None], ...] = (("ip-forward-off", "worker-1"),)
    signals: frozenset[str] = frozenset({"pod_connectivity_failed"})
    allow_control_plane: bool = False
    state: dict[str, str] = field(default_factory=lambda: {"worker-1": "0"})
    undos: list[Undo] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)

    def control_plane_nodes(self) -> frozenset[str]:
        return frozenset({"control-plane"})

    def node_exec(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        self.state[node] = "1"
        return 0, "", ""

    def event(self, kind: str, namespace: str | None, name: str, message: str) -> None:
        self.events.append((kind, name))


@dataclass
class Hook:
    name: str
    stage: str
    causes: frozenset[str]
    level: str = "node"
    disruptive: bool = False
    deadline: float = 10.0
    fail: bool = False
    changes: int = 1
    applied: list[str] = field(default_factory=list)

    def plan(self, ctx: RepairContext) -> list[Plan]:
        assert isinstance(ctx, FakeCluster)
        return [Plan(self.name, n, tuple(
            Action(f"fix {n} ({i})", f"echo 1 > /proc/sys/x{i}", touches=f"sysctl x{i}",
                   undo=f"echo 0 > /proc/sys/x{i}") for i in range(self.changes)))
            for n, v in sorted(ctx.state.items()) if v == "0"]

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


def run(hooks: list[Any], ctx: FakeCluster, mode: str = "applied", *, total: int = 12,
        per_node: int = 4, cooling: dict[str, str] | None = None,
        log: RemediationLog | None = None) -> Outcome:
    log = log or RemediationLog(None)
    chosen: list[RemediationHook] = hooks
    plans, problems = make_plan(chosen, ctx, log)  # type: ignore[arg-type]
    if mode != "applied":
        return Outcome(mode, "t", problems + planned_steps(plans), plans)
    return apply(chosen, ctx, Decision("applied", "t"), plans,  # type: ignore[arg-type]
                 budget=Budget(per_node, total), log=log, cooling=cooling)


def test_run_orders_applies_records_undo_and_is_idempotent() -> None:
    ctx = FakeCluster()
    late = Hook("coredns", "coredns", frozenset({"upstream-dns-unreachable"}))
    early = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    log = RemediationLog(None)
    out = run([late, early], ctx, log=log)
    assert [(s.name, s.status) for s in out.steps] == [("ip-forward", "applied")]
    assert early.applied == ["worker-1"]
    assert late.applied == []
    assert [(u.node, u.command) for u in out.undos] == [("worker-1", "echo 0 > /proc/sys/x0")]
    assert ctx.events == [("nodes", "worker-1")]
    assert run([late, early], ctx).steps == []
    assert any("applied ip-forward node=worker-1" in line for line in log.lines)


def test_a_hook_acts_only_on_the_node_of_its_cause() -> None:
    ctx = FakeCluster(state={"worker-1": "0", "worker-2": "0"},
                      causes=(("ip-forward-off", "worker-2"),))
    hook = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    out = run([hook], ctx)
    assert hook.applied == ["worker-2"]
    assert [s.node for s in out.steps] == ["worker-2"]
    signal_only = FakeCluster(causes=())
    assert run([hook], signal_only).steps == []
    assert signal_only.state == {"worker-1": "0"}


def test_a_cause_without_a_hook_is_a_manual_step() -> None:
    ctx = FakeCluster(causes=(("vxlan-incomplete", "worker-1"),))
    plans, _ = make_plan([], ctx, RemediationLog(None))  # type: ignore[arg-type]
    [plan] = plans
    assert plan.manual.startswith("on worker-1: ip -d link show flannel.1")
    assert plan.cause == "vxlan-incomplete@worker-1"


def test_failure_stops_later_stages() -> None:
    ctx = FakeCluster(state={"worker-1": "0", "worker-2": "0"},
                      causes=(("ip-forward-off", None), ("cni-config-shadowed", None)))
    broken = Hook("ip-forward", "system", frozenset({"ip-forward-off"}), fail=True)
    later = Hook("cni", "cni", frozenset({"cni-config-shadowed"}))
    out = run([later, broken], ctx)
    statuses = [(s.name, s.node, s.status) for s in out.steps]
    assert statuses[0] == ("ip-forward", "worker-1", "failed")
    assert all(status == "skipped" for _, _, status in statuses[1:])
    assert "ip-forward on worker-1 failed" in out.steps[-1].detail
    assert later.applied == []
    assert out.left == ["ip-forward worker-2", "cni"]


def test_budget_counts_node_changes_per_node_and_in_all() -> None:
    ctx = FakeCluster(state={"worker-1": "0", "worker-2": "0"},
                      causes=(("ip-forward-off", None),))
    hook = Hook("ip-forward", "system", frozenset({"ip-forward-off"}), changes=3)
    out = run([hook], ctx, per_node=2)
    assert out.mode == "over-budget"
    assert hook.applied == []
    assert ctx.state == {"worker-1": "0", "worker-2": "0"}
    assert "needs 3 change(s) on worker-1, 0 of 2 per node" in out.steps[0].detail
    out = run([hook], ctx, total=5)
    assert hook.applied == ["worker-1"]
    assert [s.status for s in out.steps] == ["applied", "skipped"]
    assert "3 of --max-changes 5 already made" in out.steps[1].detail


def test_control_plane_is_left_alone() -> None:
    ctx = FakeCluster(state={"control-plane": "0"}, causes=(("ip-forward-off", None),))
    hook = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    out = run([hook], ctx)
    assert hook.applied == []
    assert out.steps[0].status == "skipped"
    assert "--allow-control-plane" in out.steps[0].detail
    ctx.allow_control_plane = True
    run([hook], ctx)
    assert hook.applied == ["control-plane"]


def test_dry_run_changes_nothing() -> None:
    ctx = FakeCluster(state={"worker-1": "0", "worker-2": "0"},
                      causes=(("ip-forward-off", None),))
    hook = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    dry = run([hook], ctx, "dry-run")
    assert {s.status for s in dry.steps} == {"planned"}
    assert ctx.state == {"worker-1": "0", "worker-2": "0"}


def test_cooldown_keeps_a_failed_hook_out(tmp_path: Path) -> None:
    cool = Cooldown(tmp_path / "c.json", "https://a:6443", seconds=100)
    cool.record(["ip-forward"], [], now=1000.0)
    assert "cooling down for 50s more" in cool.cooling(now=1050.0)["ip-forward"]
    assert cool.cooling(now=1101.0) == {}
    assert Cooldown(tmp_path / "c.json", "https://b:6443").cooling(now=1050.0) == {}
    ctx = FakeCluster()
    hook = Hook("ip-forward", "system", frozenset({"ip-forward-off"}))
    out = run([hook], ctx, cooling=cool.cooling(now=1050.0))
    assert hook.applied == []
    assert "--retry-failed" in out.steps[0].detail
    cool.record([], ["ip-forward"], now=1060.0)
    assert cool.cooling(now=1061.0) == {}


@dataclass
class Target:
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def node_exec(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        self.calls.append(("exec", node, script))
        return 0, "", ""

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any],
              deadline: float) -> None:
        self.calls.append(("patch", kind, namespace, name, json.dumps(patch)))

    def delete(self, kind: str, namespace: str | None, name: str, deadline: float) -> None:
        self.calls.append(("delete", kind, str(namespace), name))

    def event(self, kind: str, namespace: str | None, name: str, message: str) -> None:
        self.calls.append(("event", kind, name))


def test_undo_records_round_trip_and_revert(tmp_path: Path) -> None:
    undos = [Undo("stray-cni-config", "worker-2", "node", "worker-2", "mv /b/x /host/e/", "mv"),
             Undo("coredns", None, "api-patch", "configmaps kube-system/coredns",
                  json.dumps({"data": {"Corefile": "old"}}), "restore"),
             Undo("flannel", None, "api-delete", "daemonsets.apps kube-flannel/kube-flannel-ds",
                  "", "delete"),
             Undo("pods", None, "none", "pods a/b", "", "an eviction is not undone")]
    path = write_undo(tmp_path / "20260101-r1", "r1", undos)
    assert find_undo(tmp_path, "r1") == path
    assert find_undo(tmp_path, "r2") is None
    assert read_undo(path) == undos
    target = Target()
    done = [undo_one(target, u) for u in reversed(read_undo(path))]
    assert done[0] == "not undoable: an eviction is not undone"
    assert [c[0] for c in target.calls] == ["delete", "patch", "event", "exec", "event"]
    assert target.calls[0] == ("delete", "daemonsets.apps", "kube-flannel", "kube-flannel-ds")
    assert target.calls[3] == ("exec", "worker-2", "set -e\nmv /b/x /host/e/")


def test_plan_files(tmp_path: Path) -> None:
    plans = [Plan("kernel-sysctls", "w1", (Action("ip_forward 0 -> 1", "echo 1 > f",
                                                  touches="sysctl net.ipv4.ip_forward",
                                                  undo="echo 0 > f"),), cause="c@w1"),
             Plan("manual", "w2", (), manual="ip link show", cause="vxlan-incomplete@w2")]
    js, md = write_plan(tmp_path, plans, {"kernel-sysctls": "system"}, "run r1")
    data = json.loads(js.read_text())
    assert [(s["order"], s["stage"], s["hook"], s["node"], s["cause"], s["changes"])
            for s in data["steps"]] == [(1, "system", "kernel-sysctls", "w1", "c@w1", 1),
                                        (2, "-", "manual", "w2", "vxlan-incomplete@w2", 0)]
    assert data["steps"][0]["actions"][0]["undo"] == "echo 0 > f"
    text = md.read_text()
    assert "echo 1 > f" in text
    assert "Manual step, run:" in text
    assert "ip link show" in text


def test_control_plane_by_label_or_by_serving_the_api() -> None:
    from netdoctor.repair.live import LiveContext, LiveOptions

    ctx = LiveContext(LiveOptions(None, None, "r1", "i:1", False, 1.0), frozenset(), (),
                      RemediationLog(None))
    ctx._node_objs = [
        {"metadata": {"name": "cp", "labels": {"node-role.kubernetes.io/control-plane": ""}}},
        {"metadata": {"name": "old", "labels": {"node-role.kubernetes.io/master": ""}}},
        {"metadata": {"name": "unlabelled-api"}, "status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.5"}]}},
        {"metadata": {"name": "worker"}, "status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.6"}]}}]
    ctx._api_ips = {"10.0.0.5"}
    assert ctx.control_plane_nodes() == {"cp", "old", "unlabelled-api"}
    ctx.close()
