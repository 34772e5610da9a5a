"""Stage ``node-cni-state``: pods wired with addresses outside their node's podCIDR."""

from __future__ import annotations

import time
from dataclasses import dataclass

from netdoctor.cluster.roles import PODCIDR_IPAM, family_of_types
from netdoctor.repair.model import Level, Plan, RepairContext
from netdoctor.rootcause.facts import NodeFacts

from ._common import (
    HookOptions,
    evict_action,
    evicted,
    in_cidr,
    node_cni,
    owned,
    pod_network_pods,
    read_facts,
    ref,
)


def ipam_of(facts: NodeFacts, cni: str) -> str:
    """Why the CNI's IPAM does not hand out addresses from node podCIDRs ("" when it does):
    Calico's own IPAM blocks, Cilium's pools, the cloud's VPC addresses."""
    types = facts.effective_types()
    family = family_of_types(types) or cni
    active = facts.active_cni
    ipam = ""
    if active is not None:
        own = facts.delegate_of(active) if active.meta else active
        ipam = own.ipam if own is not None else ""
    if ipam and ipam != "host-local":
        return f"its IPAM ({ipam}) does not allocate from node podCIDRs"
    if family not in PODCIDR_IPAM:
        return f"{family} does not allocate pod addresses from node podCIDRs"
    return ""


@dataclass
class PodsOutsidePodCidr:
    """Evict controller-owned pods whose IP is outside the node's podCIDR, once
    the node's CNI config is the cluster's (so they come back with the right address)."""

    opts: HookOptions
    name: str = "pods-outside-podcidr"
    stage: str = "node-cni-state"
    causes: frozenset[str] = frozenset({"pod-ip-outside-podcidr", "cni-config-shadowed"})
    level: Level = "api"
    disruptive: bool = True
    deadline: float = 90.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        plans = []
        for node, cidr in sorted(ctx.nodes().items()):
            wrong = [p for p in pod_network_pods(ctx, node)
                     if cidr and not in_cidr(p["status"]["podIP"], cidr)]
            if not wrong:
                continue
            facts = read_facts(ctx, node)
            active = facts.active_cni
            cni = node_cni(facts, self.opts.cni)
            ipam = ipam_of(facts, cni)
            if ipam:
                plans.append(Plan(self.name, node, (), manual=(
                    f"pods on {node} ({', '.join(map(ref, wrong))}) have addresses outside its "
                    f"podCIDR {cidr}, but {ipam}: that is how this CNI works, so no pod is "
                    "deleted")))
                continue
            if active is None or not facts.owns(active, cni):
                plans.append(Plan(self.name, node, (), manual=(
                    f"the runtime on {node} still uses {active.name if active else 'no config'}"
                    f"; fix {facts.cni_dir} there, then evict the pods "
                    + ", ".join(map(ref, wrong)))))
                continue
            actions = tuple(evict_action(p, f"{p['status']['podIP']} not in {cidr}")
                            for p in wrong if owned(p))
            bare = [f"kubectl delete pod -n {p['metadata']['namespace']} "
                    f"{p['metadata']['name']}" for p in wrong if not owned(p)]
            if actions:
                plans.append(Plan(self.name, node, actions, disruptive=True))
            if bare:
                plans.append(Plan(self.name, node, (), manual=(
                    "pods without a controller are not recreated by anyone: after saving "
                    "their spec, " + "; ".join(bare))))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        for action in plan.actions:
            target = evicted(action)
            if target is not None:
                ctx.evict_pod(*target, self.deadline / 2)
        return plan.detail

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        assert plan.node is not None
        cidr = ctx.nodes().get(plan.node, "")
        end = time.monotonic() + self.deadline / 2
        while True:
            names = {t[1] for a in plan.actions if (t := evicted(a))}
            pods = [p for p in ctx.list("pods") if p["spec"].get("nodeName") == plan.node
                    and not p["spec"].get("hostNetwork")]
            left = [ref(p) for p in pods if p["metadata"]["name"] in names]
            wrong = [ref(p) for p in pods if p.get("status", {}).get("podIP")
                     and not in_cidr(p["status"]["podIP"], cidr) and owned(p)]
            if not left and not wrong:
                return None
            if time.monotonic() > end:
                return f"still there: {', '.join(left + wrong)}"
            time.sleep(0.5)
