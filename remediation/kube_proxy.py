"""Stage ``kube-proxy``: restart a crash-looping kube-proxy once its node causes are gone."""

from __future__ import annotations

from dataclasses import dataclass

from netdoctor.cluster.profile import KUBE_PROXY_SELECTOR, find_by_label_or_name
from netdoctor.repair.model import Action, Level, Plan, RepairContext

from ._common import HookOptions, crashlooping, read_facts, restarted_or_failing


@dataclass
class KubeProxyRestart:
    """Rollout-restart the kube-proxy DaemonSet when its pods crash-loop and no node they
    run on still shows a cause iptables would trip over."""

    opts: HookOptions
    name: str = "kube-proxy-restart"
    stage: str = "kube-proxy"
    causes: frozenset[str] = frozenset({"netfilter-unmanageable"})
    level: Level = "api"
    disruptive: bool = True
    deadline: float = 120.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        ds = find_by_label_or_name("DaemonSet", ctx.list("daemonsets"), KUBE_PROXY_SELECTOR,
                                   "kube-proxy")
        if ds is None:
            return [Plan(self.name, None, (), manual="kube-proxy's DaemonSet is missing: "
                         "kubeadm init phase addon kube-proxy")]
        pods = ctx.list("pods", namespace=ds.namespace, selector=ds.selector)
        failing = sorted({p["spec"].get("nodeName", "") for p in pods
                          if restarted_or_failing(p)})
        if not failing:
            return []
        blocked = [n for n in failing if n in ctx.nodes() and read_facts(ctx, n).nft_incompatible]
        if blocked:
            return [Plan(self.name, None, (), manual=f"iptables still cannot manage the tables "
                         f"on {', '.join(blocked)}: `nft list ruleset` there, remove what "
                         f"iptables-nft reports as incompatible, then kubectl -n {ds.namespace} "
                         f"rollout restart daemonset {ds.name}")]
        return [Plan(self.name, None, (Action(
            f"rollout restart {ds.ref} (crash-looping on {', '.join(failing)}) and await it",
            f"kubectl -n {ds.namespace} rollout restart daemonset {ds.name}",
            touches=f"daemonsets {ds.namespace}/{ds.name}"),),
            disruptive=True)]

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        ds = find_by_label_or_name("DaemonSet", ctx.list("daemonsets"), KUBE_PROXY_SELECTOR,
                                   "kube-proxy")
        assert ds is not None
        return ctx.rollout_restart("DaemonSet", ds.namespace, ds.name, self.deadline)

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        ds = find_by_label_or_name("DaemonSet", ctx.list("daemonsets"), KUBE_PROXY_SELECTOR,
                                   "kube-proxy")
        assert ds is not None
        bad = [p["metadata"]["name"] for p in ctx.list("pods", namespace=ds.namespace,
                                                       selector=ds.selector) if crashlooping(p)]
        return f"still not ready: {', '.join(bad)}" if bad else None
