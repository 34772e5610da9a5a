"""Stage ``cni``: the node's CNI config and bridge, and the CNI's own DaemonSet."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from netdoctor.cluster.probes import pod_ready
from netdoctor.cluster.profile import find_flannel
from netdoctor.repair.live import rollout_done
from netdoctor.repair.model import Action, Level, Plan, RepairContext

from ._common import (
    HookOptions,
    evict_action,
    evicted,
    owned,
    pod_network_pods,
    read_facts,
    ref,
    run_checked,
    run_plan,
)

NET_D = "/host/etc/cni/net.d"


@dataclass
class StrayCniConfig:
    """CNI configs sorting before the cluster CNI's own file: moved to the run's backup."""

    opts: HookOptions
    name: str = "stray-cni-config"
    stage: str = "cni"
    causes: frozenset[str] = frozenset({"cni-config-shadowed"})
    level: Level = "node"
    disruptive: bool = False
    deadline: float = 20.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        plans = []
        for node in sorted(ctx.nodes()):
            files = read_facts(ctx, node).cni_files
            own = next((i for i, f in enumerate(files) if self.opts.cni in f.plugins), None)
            if not own:  # None: the CNI's file is not there, nothing to keep; 0: it wins
                continue
            dest = f"{self.opts.backup_dir}/cni-net.d-{node}"
            actions = tuple(Action(
                f"move /etc/cni/net.d/{f.name} (sorts before {files[own].name}) to {dest[5:]}/",
                f"mkdir -p {shlex.quote(dest)} && mv {shlex.quote(NET_D + '/' + f.name)} "
                f"{shlex.quote(dest + '/')}", touches=f"file /etc/cni/net.d/{f.name}",
                undo=f"mv {shlex.quote(dest + '/' + f.name)} {shlex.quote(NET_D + '/')}")
                for f in files[:own])
            plans.append(Plan(self.name, node, actions,
                              backups=tuple(f"{dest[5:]}/{f.name}" for f in files[:own])))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        return (run_plan(ctx, plan, self.deadline) + " (new pods use the CNI's config; pods "
                "already wired the wrong way are recreated in stage node-cni-state)")

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        active = read_facts(ctx, plan.node).active_cni
        if active is None or self.opts.cni not in active.plugins:
            return f"the runtime still uses {active.name if active else 'no config'}"
        return None


@dataclass
class BridgeAddress:
    """cni0 holding an address that is not the node's pod gateway: delete it (the runtime
    recreates it for the next pod) and evict the node's controller-owned pods."""

    opts: HookOptions
    name: str = "cni0-address"
    stage: str = "cni"
    causes: frozenset[str] = frozenset({"cni-bridge-conflict"})
    level: Level = "node"
    disruptive: bool = True
    deadline: float = 60.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        plans = []
        for node in sorted(ctx.nodes()):
            facts = read_facts(ctx, node)
            want, have = facts.flannel_subnet, facts.bridge_gateway("cni0")
            if not want or not have or want in have:
                continue
            pods = pod_network_pods(ctx, node)
            readd = " && ".join(f"ip addr add {a} dev cni0" for a in have)
            actions = [Action(f"delete cni0 ({', '.join(have)}, gateway should be {want}); "
                              "the runtime recreates it", "ip link delete cni0",
                              touches="interface cni0",
                              undo=f"ip link add cni0 type bridge && {readd} && "
                                   "ip link set cni0 up")]
            actions += [evict_action(p, "wired to the old bridge") for p in pods if owned(p)]
            bare = [ref(p) for p in pods if not owned(p)]
            if bare:
                actions.append(Action(f"left alone (no controller): {', '.join(bare)}", "true",
                                      changes=0))
            plans.append(Plan(self.name, node, tuple(actions), disruptive=True))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        assert plan.node is not None
        run_checked(ctx, plan.node, "ip link delete cni0", self.deadline)
        for action in plan.actions[1:]:
            target = evicted(action)
            if target is not None:
                ctx.evict_pod(*target, self.deadline / 2)
        return plan.detail

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        facts = read_facts(ctx, plan.node)
        want, have = facts.flannel_subnet, facts.bridge_gateway("cni0")
        if have and want and want not in have:
            return f"cni0 still has {', '.join(have)}"
        return None


@dataclass
class FlannelDaemonSet:
    """The Flannel DaemonSet is gone while the nodes run Flannel: apply the pinned manifest."""

    opts: HookOptions
    name: str = "flannel-daemonset"
    stage: str = "cni"
    causes: frozenset[str] = frozenset({"flannel-missing"})
    level: Level = "api"
    disruptive: bool = False
    deadline: float = 120.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        if self.opts.cni != "flannel" or find_flannel(ctx.list("daemonsets")) is not None:
            return []
        path = self.opts.flannel_manifest
        return [Plan(self.name, None, (Action(
            f"create the missing objects of the pinned manifest {path.name} and await the "
            "DaemonSet", f"kubectl create -f {path}  # only objects that do not exist",
            touches=f"the objects of {path.name}"),))]

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        return ctx.apply_manifest(str(self.opts.flannel_manifest), self.deadline)

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        deadline = time.monotonic() + 30.0
        while True:
            found = find_flannel(ctx.list("daemonsets"))
            ds = [d for d in ctx.list("daemonsets", namespace=found.namespace)
                  if d["metadata"]["name"] == found.name] if found else []
            pods = ctx.list("pods", namespace=found.namespace,
                            selector=found.selector) if found else []
            if ds and rollout_done("DaemonSet", ds[0]) and all(pod_ready(p) for p in pods):
                return None
            if time.monotonic() > deadline:
                return "the Flannel DaemonSet is not rolled out" if found else "still missing"
            time.sleep(0.5)
