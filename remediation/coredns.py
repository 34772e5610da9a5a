"""Stage ``coredns``: an upstream that does not answer, and a CoreDNS whose cause is fixed."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netdoctor.cluster.profile import COREDNS_SELECTOR, Workload, find_by_label_or_name
from netdoctor.cluster.roles import dns_service
from netdoctor.repair.model import Action, Level, Plan, RepairContext

from ._common import HookOptions, crashlooping, restarted_or_failing
from .firewall import api_server, blocking_rules, coredns_nodes, delete_command

COREDNS = "coredns_crashloop"
TIMEOUT_TO = re.compile(r"->(\d+\.\d+\.\d+\.\d+):53: i/o timeout")
FORWARD = re.compile(r"(?m)^(\s*forward\s+\.\s+)([^{\n]+?)(\s*(\{|$))")


def forward_targets(corefile: str) -> list[str]:
    """The ``forward .`` targets of a Corefile.

    Example:
        >>> forward_targets(".:53 {\\n    forward . /etc/resolv.conf {\\n    }\\n}")
        ['/etc/resolv.conf']
    """
    found = FORWARD.search(corefile)
    return found.group(2).split() if found else []


def with_forward(corefile: str, targets: tuple[str, ...]) -> str:
    """The Corefile with ``forward .`` pointing at ``targets``."""
    return FORWARD.sub(lambda m: f"{m.group(1)}{' '.join(targets)}{m.group(3)}", corefile,
                       count=1)


def _coredns(ctx: RepairContext) -> Workload | None:
    return find_by_label_or_name("Deployment", ctx.list("deployments"), COREDNS_SELECTOR,
                                 "coredns")


def _corefile(ctx: RepairContext, ns: str) -> Mapping[str, Any] | None:
    return next((c for c in ctx.list("configmaps", namespace=ns)
                 if c["metadata"]["name"] == "coredns"), None)


def answers(ctx: RepairContext, node: str, server: str, name: str) -> bool:
    """Whether ``server`` answers a query for ``name`` from ``node``'s own network."""
    ip, name = shlex.quote(server), shlex.quote(name)
    code, _, _ = ctx.node_read(node, f"if command -v dig >/dev/null; then dig +time=2 +tries=1 "
                               f"@{ip} {name} >/dev/null; else nslookup -timeout=2 {name} {ip}"
                               " >/dev/null; fi", 10.0)
    return code == 0


def _resolv_nameservers(ctx: RepairContext, node: str) -> list[str]:
    _, out, _ = ctx.node_read(node, "cat /host/etc/resolv.conf 2>/dev/null", 10.0)
    return [ln.split()[1] for ln in out.splitlines()
            if ln.startswith("nameserver") and len(ln.split()) > 1]


@dataclass
class CoreDnsForwardFallback:
    """CoreDNS's upstream does not answer from the nodes themselves: switch ``forward`` to a
    --dns-fallback resolver that does (never guessed; without one, the fix stays manual)."""

    opts: HookOptions
    name: str = "coredns-forward-fallback"
    stage: str = "coredns"
    causes: frozenset[str] = frozenset({"upstream-dns-unreachable"})
    level: Level = "api"
    disruptive: bool = True
    deadline: float = 90.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        dep = _coredns(ctx)
        cm = _corefile(ctx, dep.namespace) if dep else None
        nodes = sorted(ctx.nodes())
        if dep is None or cm is None or not nodes:
            return []
        corefile = (cm.get("data") or {}).get("Corefile", "")
        pods = ctx.list("pods", namespace=dep.namespace, selector=dep.selector)
        node = next((p["spec"].get("nodeName") for p in pods
                     if p["spec"].get("nodeName") in nodes), nodes[0])
        upstreams = [s for t in forward_targets(corefile)
                     for s in (_resolv_nameservers(ctx, node) if t.startswith("/") else [t])]
        if not upstreams:  # the node's resolv.conf is elsewhere: CoreDNS's own words
            logs = "".join(ctx.pod_log(dep.namespace, p["metadata"]["name"], prev)
                           for p in pods for prev in (True, False))
            upstreams = list(dict.fromkeys(TIMEOUT_TO.findall(logs)))
        upstreams = [u.split(":")[0].removeprefix("dns://") for u in upstreams]
        if not upstreams or any(answers(ctx, node, u, self.opts.external_name)
                                for u in upstreams):
            return []
        edit = f"kubectl -n {dep.namespace} edit configmap coredns"
        if not self.opts.dns_fallback:
            return [Plan(self.name, None, (), manual=(
                f"CoreDNS's upstream {', '.join(upstreams)} does not answer from {node}; "
                f"no --dns-fallback given: {edit}  # forward . <resolver that answers>; then "
                f"kubectl -n {dep.namespace} rollout restart deployment {dep.name}"))]
        good = tuple(f for f in self.opts.dns_fallback
                     if answers(ctx, node, f, self.opts.external_name))
        if not good:
            return [Plan(self.name, None, (), manual=(
                f"neither the upstream {', '.join(upstreams)} nor --dns-fallback "
                f"{', '.join(self.opts.dns_fallback)} answers from {node}: {edit}"))]
        return [Plan(self.name, None, (
            Action(f"Corefile: forward . {' '.join(forward_targets(corefile))} -> "
                   f"{' '.join(good)} (upstream {', '.join(upstreams)} does not answer from "
                   f"{node})", f"{edit}  # forward . {' '.join(good)}",
                   touches=f"configmaps {dep.namespace}/coredns"),
            Action(f"rollout restart {dep.ref} and await it",
                   f"kubectl -n {dep.namespace} rollout restart deployment {dep.name}",
                   touches=f"deployments {dep.namespace}/{dep.name}"),
        ), disruptive=True)]

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        dep = _coredns(ctx)
        assert dep is not None
        cm = _corefile(ctx, dep.namespace)
        assert cm is not None
        old = (cm.get("data") or {}).get("Corefile", "")
        targets = tuple(plan.actions[0].command.rsplit("# forward . ", 1)[1].split())
        ctx.patch("configmaps", dep.namespace, "coredns",
                  {"data": {"Corefile": with_forward(old, targets)}}, self.deadline)
        restarted = ctx.rollout_restart("Deployment", dep.namespace, dep.name, self.deadline)
        return f"{plan.actions[0].description}; {restarted}; previous Corefile:\n{old}"

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        dep = _coredns(ctx)
        cm = _corefile(ctx, dep.namespace) if dep else None
        targets = forward_targets(((cm or {}).get("data") or {}).get("Corefile", ""))
        wanted = plan.actions[0].command.rsplit("# forward . ", 1)[1].split()
        return None if targets == wanted else f"Corefile forwards to {targets}"


@dataclass
class CoreDnsRestart:
    """CoreDNS pods crash-loop (or, when the CoreDNS checks failed, have restarted) while
    nothing on their node still blocks them: restart the Deployment and await Ready pods
    and kube-dns endpoints.

    A filter rule dropping their traffic to the API server (see :mod:`remediation.firewall`)
    still present when this stage plans makes the restart a manual step instead."""

    opts: HookOptions
    name: str = "coredns-restart"
    stage: str = "coredns"
    causes: frozenset[str] = frozenset({"coredns-cannot-reach-api"})
    level: Level = "api"
    disruptive: bool = True
    deadline: float = 90.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        dep = _coredns(ctx)
        if dep is None:
            return []
        pods = ctx.list("pods", namespace=dep.namespace, selector=dep.selector)
        # When the CoreDNS checks failed, a pod that restarted keeps failing them (its
        # restarts, its probe-failure events, its logs) even once it came up by itself
        # after its cause went: fresh pods are the repair. Otherwise only a pod failing now.
        failing = [p for p in pods if (restarted_or_failing(p) if COREDNS in ctx.signals
                                       else crashlooping(p))]
        if not failing:
            return []
        # Facts are read now, after stage system ran: a rule api-firewall-drop deleted is
        # gone; one still there (a dry run, the cap, a rule it leaves to the operator)
        # would make a restart crash again, so the restart waits for it.
        api = api_server(ctx)
        blocked = {node: rules for node, pods in coredns_nodes(ctx).items()
                   if (rules := blocking_rules(ctx, node, api, pods))}
        if blocked:
            return [Plan(self.name, node, (), manual=(
                f"a firewall rule on {node} drops CoreDNS's traffic to the API server "
                f"({', '.join(sorted(api.ips))}); api-firewall-drop (stage system) deletes "
                "the ones it may when applied; otherwise on the node: "
                f"{'; '.join(delete_command(b, r) for b, r, _ in rules)}; then "
                f"kubectl -n {dep.namespace} rollout restart deployment {dep.name}"))
                for node, rules in blocked.items()]
        where = ", ".join(sorted({p["spec"].get("nodeName", "?") for p in failing}))
        return [Plan(self.name, None, (Action(
            f"rollout restart {dep.ref} (not ready on {where}) and await Ready pods and "
            "kube-dns endpoints",
            f"kubectl -n {dep.namespace} rollout restart deployment {dep.name}",
            touches=f"deployments {dep.namespace}/{dep.name}"),), disruptive=True)]

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        dep = _coredns(ctx)
        assert dep is not None
        return ctx.rollout_restart("Deployment", dep.namespace, dep.name, self.deadline)

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        # The cluster's own DNS Service, wherever and however it is named (kube-dns on
        # kubeadm, rke2-coredns-rke2-coredns on RKE2).
        svc = dns_service(ctx.list("services"))
        if svc is None:
            return "no cluster DNS Service found to check for ready endpoints"
        ns, name = svc["metadata"].get("namespace", ""), svc["metadata"]["name"]
        end = time.monotonic() + 30.0
        while True:
            eps = [e for e in ctx.list("endpoints", namespace=ns) if e["metadata"]["name"] == name]
            if eps and any(s.get("addresses") for s in eps[0].get("subsets") or []):
                return None
            if time.monotonic() > end:
                return f"Service {ns}/{name} has no ready endpoints"
            time.sleep(0.5)

