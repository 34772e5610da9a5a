"""Stage ``kube-proxy``: restart a crash-looping kube-proxy once its node causes are gone."""

from __future__ import annotations

from dataclasses import dataclass

from netdoctor.cluster.profile import KUBE_PROXY_SELECTOR, find_by_label_or_name
from netdoctor.cluster.roles import (
    is_mirror_pod,
    kube_proxy_config_left,
    kube_proxy_pods,
    replacement,
)
from netdoctor.repair.model import Action, Level, Plan, RepairContext

from ._common import HookOptions, crashlooping, read_facts, restarted_or_failing


def without_daemonset(hook: str, ctx: RepairContext) -> list[Plan]:
    """No kube-proxy DaemonSet: nothing to do where it is replaced by design; a manual step
    that fits how it runs otherwise (static pods, inside the node agent, or really gone)."""
    daemonsets = ctx.list("daemonsets")
    if replacement(daemonsets, ctx.list("configmaps")):
        return []
    mirrors = sorted({str(p["spec"].get("nodeName", "")) for p in kube_proxy_pods(
        ctx.list("pods", namespace="kube-system")) if is_mirror_pod(p)})
    if mirrors:
        return [Plan(hook, None, (), manual=(
            f"kube-proxy runs as static pods (on {', '.join(mirrors)}): the kubelet owns them, "
            "no DaemonSet is restarted; check the node's static pod manifest and restart the "
            "node agent there"))]
    if kube_proxy_config_left(ctx.list("configmaps")):
        return [Plan(hook, None, (), manual="kube-proxy's DaemonSet is missing: "
                     "kubeadm init phase addon kube-proxy")]
    return [Plan(hook, None, (), manual=(
        "no kube-proxy DaemonSet and no kubeadm kube-proxy ConfigMap: where kube-proxy runs "
        "inside the node agent (k3s), restart the node agent on the nodes without KUBE-SERVICES "
        "rules; on kubeadm: kubeadm init phase addon kube-proxy"))]


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
            return without_daemonset(self.name, ctx)
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
