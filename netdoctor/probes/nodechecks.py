"""Findings about one node's facts (CNI config, bridge, VXLAN peers, iptables, kernel).

Each function returns evidence of what is wrong with the node (empty when all is well);
the ``node`` checks in tests/ state the expectation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from netdoctor.cluster.probes import ProbeSet, run_name
from netdoctor.cluster.profile import NodeInfo
from netdoctor.model import Evidence, make_evidence
from netdoctor.rootcause import nodefindings, pathfacts
from netdoctor.rootcause.facts import VXLAN_DEVICE, NodeFacts, in_cidr
from netdoctor.rootcause.model import NodeView
from netdoctor.rootcause.pathfacts import Finding


def _cmd(node: str, probes: ProbeSet, what: str) -> str:
    # The node probe's own name: in a shared --probe-namespace it carries the run id.
    pod = run_name(probes.namespace, probes.run_id, "nodeprobe", node)
    return f"kubectl exec -n {probes.namespace} {pod} -- {what}"


IPTABLES_TITLES = {"iptables-mixed-backend": "KUBE-* rules in both iptables backends",
                   "netfilter-unmanageable": "iptables cannot manage a table"}


def iptables_backends(f: NodeFacts, probes: ProbeSet) -> list[Evidence]:
    """KUBE-* rules in the legacy backend next to nf_tables ones; tables iptables cannot
    manage (judged by :func:`netdoctor.rootcause.nodefindings.iptables`)."""
    return [item for x in nodefindings.iptables(f)
            for item in _evidence(f"{f.node}: {IPTABLES_TITLES[x.id]}", [x],
                                  _cmd(f.node, probes, x.command))]


def cni_winner(f: NodeFacts, cni: str, probes: ProbeSet) -> list[Evidence]:
    """The lexically first CNI config (the one the runtime uses) is the cluster CNI's own,
    or a meta-plugin (Multus) that delegates to it."""
    active = f.active_cni
    files = ", ".join(c.name for c in f.active_files) or "none"
    if active is None:
        return [make_evidence(f"{f.node}: no CNI config in {f.cni_dir}", "none",
                              command=_cmd(f.node, probes, f"ls /host{f.cni_dir}"))]
    if f.owns(active, cni) and not active.error:
        return []
    via = ""
    if active.meta:
        target = f.delegate_of(active)
        via = (f"{active.name} is a meta-plugin delegating to "
               f"{', '.join(active.delegates) or (target.name if target else 'nothing found')}")
    return [make_evidence(
        f"{f.node}: CNI config {active.name} (type {', '.join(active.plugins) or '?'}) shadows "
        f"the cluster's {cni} config",
        [f"{f.cni_dir}: {files}; the runtime uses the lexically first",
         *([via] if via else []),
         *([f"{active.name}: {active.error}"] if active.error else []),
         *([f"{active.name} allocates from {active.subnet}"] if active.subnet else [])],
        command=_cmd(f.node, probes, f"ls -l /host{f.cni_dir}"))]


def _evidence(title: str, findings: list[Finding], command: str) -> list[Evidence]:
    """One evidence item for findings of a node (empty when there are none)."""
    if not findings:
        return []
    lines = [line for f in findings for line in (*f.contrast, *f.evidence)]
    return [make_evidence(title, lines, command=command)]


def bridge_subnet(f: NodeFacts, info: NodeInfo, probes: ProbeSet) -> list[Evidence]:
    """cni0 holds the pod gateway, and it and Flannel's subnet lease lie in the node's
    podCIDR (judged by :func:`netdoctor.rootcause.nodefindings.bridge`)."""
    return _evidence(f"{f.node}: cni0/subnet lease do not match the pod gateway or podCIDR "
                     f"{info.pod_cidr}", nodefindings.bridge(f, info.pod_cidr or None),
                     _cmd(f.node, probes, "ip addr show cni0"))


def pods_outside_cidr(node: str, pod_cidr: str, pods: Iterable[tuple[str, str]]
                      ) -> list[Evidence]:
    """Pods (name, IP) on ``node`` whose address is outside its podCIDR."""
    outside = [f"{name} {ip}" for name, ip in pods if ip and not in_cidr(ip, pod_cidr)]
    if not pod_cidr or not outside:
        return []
    return [make_evidence(f"{node}: {len(outside)} pod(s) outside podCIDR {pod_cidr}", outside,
                          command=f"kubectl get pods -A -o wide --field-selector "
                                  f"spec.nodeName={node}")]


def vxlan_peers(f: NodeFacts, peers: Sequence[NodeInfo], probes: ProbeSet,
                every: Mapping[str, NodeFacts] | None = None) -> list[Evidence]:
    """flannel.1 exists and has a route, a neighbour and an FDB entry for every peer
    (judged by :func:`netdoctor.rootcause.pathfacts.forwarding`; ``every``: all nodes' facts,
    so that a neighbour entry is compared with the peer's own VTEP MAC)."""
    if VXLAN_DEVICE not in f.addresses:
        return [make_evidence(f"{f.node}: no {VXLAN_DEVICE} device", "VXLAN device absent",
                              command=_cmd(f.node, probes, "ip -d link show flannel.1"))]
    views = [NodeView(p.name, p.internal_ip, p.pod_cidr or None) for p in peers]
    # This node's rows only: every node's check judging the whole cluster made validate
    # O(nodes^3) (6% of the suite's CPU samples in a 100-node validate).
    found = pathfacts.forwarding({**(every or {}), f.node: f}, views, only=f.node)
    return _evidence(f"{f.node}: VXLAN state incomplete", found,
                     _cmd(f.node, probes, "bridge fdb show dev flannel.1"))


def kernel(f: NodeFacts, probes: ProbeSet, cni: str = "") -> list[Evidence]:
    """ip_forward on, bridged traffic through iptables, no strict reverse-path filter where
    the CNI does not want it (judged by :func:`netdoctor.rootcause.nodefindings.kernel`)."""
    return _evidence(f"{f.node}: kernel prerequisites not met", nodefindings.kernel(f, cni),
                     _cmd(f.node, probes, "sysctl net.ipv4.ip_forward "
                                      "net.bridge.bridge-nf-call-iptables "
                                      "net.ipv4.conf.all.rp_filter"))
