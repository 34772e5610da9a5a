"""Faults that break the lab's real layers, and scenarios built from them.

A fault changes what a real cluster's fault changes (a deleted DaemonSet, a
firewall rule, a sysctl, a stray CNI config, stale rules in the other iptables
backend); everything the API shows afterwards follows from that, nothing is
painted on. Each fault can be cleared again.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from netdoctor.lab import profiles
from netdoctor.lab.api.apifaults import API_FAULTS
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import ApiError, Obj
from netdoctor.lab.components import kube_proxy

# Re-exported: the lab and its tests know these as faults.X.
from netdoctor.lab.faultbase import PODS as PODS
from netdoctor.lab.faultbase import TAG as TAG
from netdoctor.lab.faultbase import Action as Action
from netdoctor.lab.faultbase import Fault as Fault
from netdoctor.lab.faultbase import FaultNotApplicable as FaultNotApplicable
from netdoctor.lab.faultbase import LabContext as LabContext
from netdoctor.lab.faultbase import ipt as _ipt
from netdoctor.lab.faultbase import netns_of as _netns
from netdoctor.lab.pathfaults import PATH_FAULTS
from netdoctor.lab.sh import arun

DAEMONSETS = resource("apps", "daemonsets")
DEPLOYMENTS = resource("apps", "deployments")


def _seed(ctx: LabContext, objs: list[tuple[str, str, Obj]]) -> None:
    for group, plural, obj in objs:
        try:
            ctx.store.create(resource(group, plural), obj)
        except ApiError as exc:
            if exc.code != 409:
                raise


# -- cluster faults --------------------------------------------------------------------
async def _flannel_missing(ctx: LabContext, node: str | None) -> None:
    # Someone deleted the CNI agent's DaemonSet: its pods stop, each agent's forwarding
    # state goes. Where the agent is embedded (k3s), the node agent's Flannel stopped.
    prof = ctx.profile
    if prof.cni_daemonset is not None:
        ns, name = prof.cni_daemonset
        if ctx.store.find(DAEMONSETS, ns, name) is not None:
            ctx.store.delete(DAEMONSETS, ns, name)
    elif ctx.agents is not None:
        await ctx.agents.stop("flannel")


async def _flannel_restore(ctx: LabContext, node: str | None) -> None:
    prof = ctx.profile
    if prof.cni_daemonset is not None:
        ns, name = prof.cni_daemonset
        # The agent's DaemonSet and what it needs (ConfigMaps, ServiceAccount), from the
        # profile's own seed, so it comes back exactly as installed.
        _seed(ctx, [(g, p, o) for g, p, o in prof.seed(ctx.lab)
                    if o["metadata"].get("namespace") == ns and
                    (p != "daemonsets" or o["metadata"]["name"] == name) and
                    p in ("daemonsets", "configmaps", "serviceaccounts")])
    elif ctx.agents is not None:
        ctx.agents.start("flannel")


async def _service_no_endpoints(ctx: LabContext, node: str | None) -> None:
    # A Service whose selector matches no pod label: the classic typo (app=web vs app=webapp).
    labels = {"app": "webapp"}
    _seed(ctx, [
        ("", "namespaces", {"metadata": {"name": "shop"}}),
        ("apps", "deployments", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "web", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                "args": ["netexec", "--http-port=8080"],
                "ports": [{"containerPort": 8080, "name": "http"}]}]}}}}),
        ("", "services", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
    ])


async def _service_fixed(ctx: LabContext, node: str | None) -> None:
    svc = resource("", "services")
    ctx.store.mutate(svc, "shop", "web", lambda o: o["spec"].__setitem__("selector",
                                                                          {"app": "webapp"}))


async def _dns_upstream_drop(ctx: LabContext, node: str | None) -> None:
    # The upstream resolver stops answering: queries to it vanish (i/o timeout). Only the
    # address the nodes use is dropped; the lab's second resolver still answers (a
    # fallback an operator can name).
    for proto in ("udp", "tcp"):
        await _ipt(ctx.lab.router_netns, "-I", "INPUT", "-d", ctx.lab.upstream_dns, "-p", proto,
                   "--dport", "53", "-m", "comment", "--comment", TAG, "-j", "DROP")


async def _dns_upstream_back(ctx: LabContext, node: str | None) -> None:
    for proto in ("udp", "tcp"):
        await _ipt(ctx.lab.router_netns, "-D", "INPUT", "-d", ctx.lab.upstream_dns, "-p", proto,
                   "--dport", "53", "-m", "comment", "--comment", TAG, "-j", "DROP",
                   check=False)


# -- node faults -----------------------------------------------------------------------
def _api_rules(ctx: LabContext, node: str | None) -> list[list[str]]:
    pod_cidr = ctx.lab.nodes[str(node)].pod_range
    base = ["-s", pod_cidr, "-d", ctx.lab.apiserver_ip, "-p", "tcp", "--dport",
            str(ctx.lab.apiserver_port), "-m", "comment", "--comment", TAG, "-j", "DROP"]
    return [["INPUT", *base], ["FORWARD", *base]]


async def _api_blocked(ctx: LabContext, node: str | None) -> None:
    # A host firewall rule on CoreDNS's node drops its pods' traffic to the API server:
    # CoreDNS waits for the API, gives up and exits, again and again.
    for rule in _api_rules(ctx, node):
        await _ipt(_netns(ctx, node), "-I", *rule)
    # CoreDNS only waits for the API when it starts; its next restart (here: now) fails.
    if ctx.kill_containers is not None:
        ctx.kill_containers(ctx.profile.dns)


async def _api_unblocked(ctx: LabContext, node: str | None) -> None:
    for rule in _api_rules(ctx, node):
        await _ipt(_netns(ctx, node), "-D", *rule, check=False)


async def _netfilter_broken(ctx: LabContext, node: str | None) -> None:
    # The node's filter OUTPUT hook is taken by a chain iptables cannot manage (as another
    # tool writing nf_tables directly leaves it): every kube-proxy iptables-restore fails,
    # kube-proxy exits, and the rules it wrote before stay in place, stale.
    # The table and chain are declared first: when the fault strikes before kube-proxy's
    # first sync (as in a scenario), iptables has not created them yet.
    script = ("add table ip filter\n"
              "add chain ip filter OUTPUT { type filter hook output priority 0; }\n"
              "flush chain ip filter OUTPUT\ndelete chain ip filter OUTPUT\n"
              "add chain ip filter OUTPUT { type route hook output priority 0; }\n")
    # One nft transaction, so kube-proxy's next sync cannot slip in between.
    await arun(["ip", "netns", "exec", _netns(ctx, node), "nft", "-f", "-"], input=script)
    # kube-proxy meets the broken table at its next sync; a Service change makes that now
    # on a busy cluster, the periodic resync 30 s later on a quiet one. The lab takes the
    # busy case, so a scenario does not wait out the period.
    kube_proxy.resync(_netns(ctx, node))


async def _netfilter_fixed(ctx: LabContext, node: str | None) -> None:
    ns = _netns(ctx, node)
    await arun(["ip", "netns", "exec", ns, "nft", "delete chain ip filter OUTPUT"], check=False)


async def _mixed_backend(ctx: LabContext, node: str | None) -> None:
    # Stale kube-proxy rules left in the legacy backend after a switch to nft: the legacy
    # nat table is registered last, so its DNAT for kube-dns wins and points at a pod
    # that no longer exists.
    dns = ctx.lab.dns_service_ip
    rules = "\n".join([
        "*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]",
        ":KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]", ":KUBE-SEP-STALE0DNS000000 - [0:0]",
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        f'-A KUBE-SERVICES -d {dns}/32 -p udp -m comment --comment "kube-system/kube-dns:dns '
        'cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU',
        "-A KUBE-SVC-TCOU7JCQXEZGVUNU -j KUBE-SEP-STALE0DNS000000",
        "-A KUBE-SEP-STALE0DNS000000 -p udp -m udp -j DNAT --to-destination 10.244.99.2:53",
        "COMMIT", ""])
    await arun(["ip", "netns", "exec", _netns(ctx, node), "iptables-legacy-restore", "-w"],
               input=rules)


async def _mixed_backend_cleaned(ctx: LabContext, node: str | None) -> None:
    ns = _netns(ctx, node)
    for args in (["-F"], ["-X"]):
        await arun(["ip", "netns", "exec", ns, "iptables-legacy", "-w", "-t", "nat", *args],
                   check=False)


def _sysctl(key: str, value: str) -> Action:
    async def act(ctx: LabContext, node: str | None) -> None:
        from netdoctor.lab.net.topology import set_sysctl
        await set_sysctl(_netns(ctx, node), key, value)
    return act


async def _bridge_conflict(ctx: LabContext, node: str | None) -> None:
    # cni0 keeps an address from an old subnet (the node was re-added with a new podCIDR).
    ns = _netns(ctx, node)
    if (await arun(["ip", "-n", ns, "link", "show", "cni0"], check=False)).code != 0:
        # No pod has run here yet: the stale bridge is a leftover of the node's old life.
        await arun(["ip", "-n", ns, "link", "add", "cni0", "type", "bridge"])
        await arun(["ip", "-n", ns, "link", "set", "cni0", "up"])
    await arun(["ip", "-n", ns, "addr", "flush", "dev", "cni0"], check=False)
    await arun(["ip", "-n", ns, "addr", "add", "10.244.250.1/24", "dev", "cni0"])


async def _bridge_fixed(ctx: LabContext, node: str | None) -> None:
    ns, info = _netns(ctx, node), ctx.lab.nodes[str(node)]
    net = ipaddress.ip_network(info.pod_cidr)
    gw = f"{net.network_address + 1}/{net.prefixlen}"
    await arun(["ip", "-n", ns, "addr", "flush", "dev", "cni0"], check=False)
    await arun(["ip", "-n", ns, "addr", "add", gw, "dev", "cni0"])


STRAY_CNI = "00-bridge.conflist"


async def _stray_cni(ctx: LabContext, node: str | None) -> None:
    # A second CNI config sorts before Flannel's and wins: new pods on this node get
    # addresses from another node's range, on a bridge of their own.
    info = ctx.lab.nodes[str(node)]
    other = next(n for n in ctx.lab.nodes.values() if n.name != info.name and n.index == 0)
    conf = {"cniVersion": "0.3.1", "name": "bridge", "plugins": [{
        "type": "bridge", "bridge": "cbr0", "isGateway": True, "ipMasq": True,
        "hairpinMode": True, "ipam": {"type": "host-local", "subnet": other.pod_range}}]}
    (info.root / ctx.lab.cni_conf_dir / STRAY_CNI).write_text(json.dumps(conf, indent=2))


async def _stray_cni_removed(ctx: LabContext, node: str | None) -> None:
    (ctx.lab.nodes[str(node)].root / ctx.lab.cni_conf_dir / STRAY_CNI).unlink(missing_ok=True)


def _all(*actions: Action) -> Action:
    async def act(ctx: LabContext, node: str | None) -> None:
        for a in actions:
            await a(ctx, node)
    return act


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("flannel-missing", "the CNI agent is gone (its DaemonSet deleted, or k3s's embedded "
          "Flannel stopped); the forwarding state it keeps goes with it",
          _flannel_missing, _flannel_restore),
    Fault("coredns-crashloop", "a firewall rule on CoreDNS's node drops its traffic to the API",
          _api_blocked, _api_unblocked, node_scoped=True, default="coredns"),
    Fault("kube-proxy-crashloop", "iptables cannot write the node's filter table; kube-proxy "
          "exits and its rules go stale", _netfilter_broken, _netfilter_fixed, node_scoped=True,
          default="workers"),
    Fault("dns-upstream-timeout", "the upstream resolver drops DNS queries",
          _dns_upstream_drop, _dns_upstream_back),
    Fault("service-no-endpoints", "a Service whose selector matches no pod",
          _service_no_endpoints, _service_fixed),
    Fault("iptables-mixed-backend", "stale kube-dns rules in the legacy iptables backend win",
          _mixed_backend, _mixed_backend_cleaned, node_scoped=True),
    Fault("cni-bridge-conflict", "cni0 holds an address from an old subnet",
          _bridge_conflict, _bridge_fixed, node_scoped=True, default="worker-2"),
    Fault("ip-forward-off", "net.ipv4.ip_forward=0 on the node",
          _sysctl("net.ipv4.ip_forward", "0"), _sysctl("net.ipv4.ip_forward", "1"),
          node_scoped=True),
    Fault("br-netfilter-off", "bridged traffic bypasses iptables (bridge-nf-call-iptables=0)",
          _sysctl("net.bridge.bridge-nf-call-iptables", "0"),
          _sysctl("net.bridge.bridge-nf-call-iptables", "1"), node_scoped=True, default="coredns"),
    Fault("cni-config-shadowed", "a stray bridge CNI config sorts before Flannel's",
          _stray_cni, _stray_cni_removed, node_scoped=True, default="worker-2"),
)}


FAULTS.update({f.name: f for f in PATH_FAULTS})


@dataclass(frozen=True)
class Step:
    """One fault of a scenario, optionally on a given node."""

    fault: str
    node: str | None = None
    peer: str | None = None


@dataclass(frozen=True)
class Scenario:
    """Faults present from the start (``boot``), faults that strike once the cluster is up
    (``steps``), where CoreDNS was scheduled (``coredns_node``) and how many replicas a DNS
    Deployment needs for the faults to apply (``dns_replicas``)."""

    steps: tuple[Step, ...] = ()
    boot: tuple[Step, ...] = ()
    coredns_node: str | None = None
    dns_replicas: int = 1


# The field guide's incident: a worker whose stray CNI config won from the start and
# where CoreDNS runs; later no Flannel DaemonSet, kube-proxy failing on the workers and
# the upstream unreachable. The Service without endpoints is kube-dns (CoreDNS is never
# ready), as in the incident; a selector typo is a fault of its own.
SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario(),
    "problem-statement": Scenario(
        boot=(Step("cni-config-shadowed", "worker-2"),), coredns_node="worker-2",
        steps=(Step("flannel-missing"), Step("kube-proxy-crashloop"),
               Step("dns-upstream-timeout"))),
    **{name: Scenario(steps=(Step(name),)) for name in FAULTS},
    "dns-replica-mute": Scenario(steps=(Step("dns-replica-mute"),), dns_replicas=2),
}


def scenario(name: str, profile: profiles.Profile) -> Scenario:
    """Scenario ``name`` as it applies to ``profile``: steps the profile cannot have are left
    out (the incident on a cluster without kube-proxy has no kube-proxy failure).

    Raises:
        FaultNotApplicable: the scenario is a single fault the profile cannot have.
    """
    base = SCENARIOS[name]
    if name in FAULTS and profile.supports(name):
        raise FaultNotApplicable(f"scenario {name} does not apply to profile {profile.name}: "
                                 f"{profile.supports(name)}")
    return dataclasses.replace(
        base, boot=tuple(s for s in base.boot if not profile.supports(s.fault)),
        steps=tuple(s for s in base.steps if not profile.supports(s.fault)))


def describe() -> list[dict[str, Any]]:
    """Faults for ``lab fault list``, with the profiles each applies to (the API server's own
    faults last: every profile has an API server)."""
    every = [profiles.get(n) for n in profiles.names()]
    return [{"name": f.name, "summary": f.summary, "node_scoped": f.node_scoped,
             "default_nodes": f.default if f.node_scoped else None,
             "pair": f.pair, "default_peer": f.default_peer if f.pair else None,
             "profiles": [p.name for p in every if p.supports(f.name) is None]}
            for f in FAULTS.values()] \
        + [{"name": name, "summary": summary, "node_scoped": False, "default_nodes": None,
            "pair": False, "default_peer": None,
            "profiles": [p.name for p in every]} for name, summary in API_FAULTS.items()]
