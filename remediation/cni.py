"""Stage ``cni``: the node's CNI config and bridge, and the CNI's own DaemonSet."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from netdoctor.cluster.probes import pod_ready
from netdoctor.cluster.profile import find_flannel
from netdoctor.cluster.roles import find_cni_agents, flannel_config_left
from netdoctor.repair.live import rollout_done
from netdoctor.repair.model import Action, Level, Plan, RepairContext
from netdoctor.rootcause import facts as nodefacts
from netdoctor.rootcause import nodefindings

from ._common import (
    HookOptions,
    evict_action,
    evicted,
    node_cni,
    owned,
    pod_network_pods,
    read_facts,
    ref,
    run_checked,
    run_plan,
)


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
            facts = read_facts(ctx, node)
            cni = node_cni(facts, self.opts.cni)
            files = facts.active_files
            if not files or facts.owns(files[0], cni):
                continue  # the CNI's own config, or a meta-plugin delegating to it, wins
            own = next((i for i, f in enumerate(files)
                        if not f.meta and facts.owns(f, cni)), None)
            if own is None:  # the CNI's file is not there: nothing to keep, nothing to move
                continue
            # A meta-plugin (Multus) is never moved: every pod's network goes through it.
            metas = [f for f in files[:own] if f.meta and not facts.owns(f, cni)]
            strays = [f for f in files[:own] if not f.meta]
            if metas:
                plans.append(Plan(self.name, node, (), manual=(
                    f"{', '.join(f.name for f in metas)} on {node} is a meta-plugin that does "
                    f"not delegate to {files[own].name}: point its delegate (clusterNetwork) at "
                    f"the {cni} config, then remove "
                    f"{', '.join(f.path for f in strays) or 'nothing else'}")))
                continue
            dest = f"{self.opts.backup_dir}/cni-net.d-{node}"
            actions = tuple(Action(
                f"move {f.path} (sorts before {files[own].name}) to {dest[5:]}/",
                f"mkdir -p {shlex.quote(dest)} && mv {shlex.quote('/host' + f.path)} "
                f"{shlex.quote(dest + '/')}", touches=f"file {f.path}",
                undo=f"mv {shlex.quote(dest + '/' + f.name)} "
                     f"{shlex.quote('/host' + f.path.rsplit('/', 1)[0] + '/')}")
                for f in strays)
            plans.append(Plan(self.name, node, actions,
                              backups=tuple(f"{dest[5:]}/{f.name}" for f in strays)))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        return (run_plan(ctx, plan, self.deadline) + " (new pods use the CNI's config; pods "
                "already wired the wrong way are recreated in stage node-cni-state)")

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        facts = read_facts(ctx, plan.node)
        active = facts.active_cni
        if active is None or not facts.owns(active, node_cni(facts, self.opts.cni)):
            return f"the runtime still uses {active.name if active else 'no config'}"
        return None


def _gateway_wrong(facts: nodefacts.NodeFacts) -> bool:
    """The node judgments find cni0 not holding the pod gateway (what deleting it fixes)."""
    return any(f.setting and f.setting[0] == "cni0" for f in nodefindings.bridge(facts, None))


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
            if not _gateway_wrong(facts):
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
        if _gateway_wrong(facts):
            return f"cni0 still has {', '.join(facts.bridge_gateway('cni0'))}"
        return None


@dataclass
class FlannelDaemonSet:
    """The Flannel DaemonSet is gone while the nodes run Flannel from it: apply the pinned
    manifest. Only where Flannel was installed as a DaemonSet (its own ConfigMap,
    ``net-conf.json``, outlives it): never where Flannel is embedded in the node agent (k3s)
    or the CNI is another one; those are manual steps."""

    opts: HookOptions
    name: str = "flannel-daemonset"
    stage: str = "cni"
    causes: frozenset[str] = frozenset({"flannel-missing", "cni-agent-missing"})
    level: Level = "api"
    disruptive: bool = False
    deadline: float = 120.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        daemonsets = ctx.list("daemonsets")
        agents = find_cni_agents(daemonsets)
        if agents.agents or find_flannel(daemonsets) is not None:
            return []
        # Only where the run and the nodes' configs both say Flannel.
        cni = self.opts.cni if self.opts.cni != "flannel" else self._nodes_cni(ctx)
        if cni != "flannel":
            return [Plan(self.name, None, (), manual=(
                f"the cluster's CNI is {cni}, not Flannel: no Flannel manifest is "
                f"applied; reinstall the {cni} agent with its own installer"))]
        left = flannel_config_left(ctx.list("configmaps"))
        if not left:
            return [Plan(self.name, None, (), manual=(
                "no Flannel DaemonSet and no Flannel ConfigMap (net-conf.json): Flannel was not "
                "installed from its manifest here, it runs inside the node agent (k3s); applying "
                "upstream Flannel would run a second one. Restart the node agent on the nodes "
                "without flannel.1 (systemctl restart k3s / k3s-agent)"))]
        path = self.opts.flannel_manifest
        return [Plan(self.name, None, (Action(
            f"create the missing objects of the pinned manifest {path.name} (Flannel's "
            f"ConfigMap {left} is still there) and await the DaemonSet",
            f"kubectl create -f {path}  # only objects that do not exist",
            touches=f"the objects of {path.name}"),))]

    def _nodes_cni(self, ctx: RepairContext) -> str:
        """The CNI the nodes' configs name (the run's, where they agree or cannot tell)."""
        found = set()
        for node in sorted(ctx.nodes()):
            try:
                found.add(node_cni(read_facts(ctx, node), self.opts.cni))
            except RuntimeError:  # a node whose facts cannot be read says nothing
                continue
        others = sorted(found - {self.opts.cni})
        return others[0] if others else self.opts.cni

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
