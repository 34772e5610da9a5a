"""Cause detectors and their ranking.

Each detector reads :class:`Observations` and returns candidate causes with the
signals they would explain. :func:`rank` keeps the signals that are really
present, adds the failing tests behind them, and orders the causes: most
explanatory first, lower layers first on a tie (a node's broken CNI explains a
crash-looping CoreDNS, not the other way round).
"""

from __future__ import annotations

from collections.abc import Iterable

from netdoctor.probes.findings import TIMEOUT_LINES
from netdoctor.rootcause import nodefindings, pathrules
from netdoctor.rootcause.facts import (
    VXLAN_DEVICE,
    NodeFacts,
    in_cidr,
)
from netdoctor.rootcause.model import Observations
from netdoctor.rootcause.pathfacts import POD_KINDS, THROUGH_PODS
from netdoctor.rootcause.ranking import Candidate, detector, explain, names_node, rank

__all__ = ["detector", "explain", "pathrules", "rank"]

CONNECTIVITY = "pod_connectivity_failed"
COREDNS = "coredns_crashloop"
DNS = "dns_timeouts"
ENDPOINTS = "service_endpoints_missing"
KUBE_PROXY = "kube_proxy_restarts"
FLANNEL = "flannel_missing"


def _dns_chain(obs: Observations, node: str) -> set[str]:
    """What a node with broken pod networking explains through the CoreDNS pods it hosts."""
    if node not in obs.component_nodes("coredns"):
        return set()
    chain = {COREDNS, DNS}
    if obs.dns_service in obs.services_without_endpoints:
        chain.add(ENDPOINTS)
    return chain


def _node_network(obs: Observations, node: str) -> frozenset[str]:
    pairs = [p for p in obs.broken_pairs if node in p]
    signals = {CONNECTIVITY} if pairs or not obs.broken_pairs else set()
    if names_node(obs.failed_tests.get(DNS, ()), node):
        signals.add(DNS)  # lookups from the node's own pods cannot leave it
    return frozenset(signals | _dns_chain(obs, node))


NODE_NETWORK = (*((k, "either") for k in POD_KINDS), *((k, "any") for k in THROUGH_PODS))
"""What a node whose own pod network is broken breaks: every pod path to or from it, and
any path that may be balanced to a pod there."""


SERVICE_PATHS = (("service_cluster_ip", "pair"), ("api_cluster_ip", "pair"),
                 ("node_port", "either"), ("dns", "any"), ("cluster_dns_answers", "any"))
"""Paths through a node's Service rules (DNS from anywhere: its replicas may live there)."""


def _breaks(*kinds: str) -> tuple[tuple[str, str], ...]:
    """A node's broken pod network plus its own node-fact checks that show it."""
    return (*NODE_NETWORK, *((k, "pair") for k in kinds))


def _local_causes(obs: Observations) -> set[str]:
    """Nodes whose own pod network is broken (CNI config, bridge, forwarding)."""
    nodes = {c.node for c in cni_config_shadowed(obs)} | {c.node for c in bridge_conflict(obs)}
    nodes |= {n for n, f in obs.facts.items()
              if any(x.id == "ip-forward-off" for x in nodefindings.kernel(f, obs.cni))}
    return {n for n in nodes if n}


def _facts(obs: Observations) -> Iterable[tuple[str, NodeFacts]]:
    return sorted(obs.facts.items())


def _outside(obs: Observations, node: str) -> list[str]:
    """Pods on ``node`` outside its podCIDR, where the CNI allocates from podCIDRs at all."""
    view = obs.node(node)
    if not obs.ipam_from_podcidr or view is None or not view.pod_cidr:
        return []
    return [f"{p.namespace}/{p.name} {p.ip}" for p in obs.pods
            if p.node == node and not p.host_network and p.ip
            and not in_cidr(p.ip, view.pod_cidr)]


@detector
def cni_config_shadowed(obs: Observations) -> Iterable[Candidate]:
    """The config the runtime uses (the lexically first) is not the cluster CNI's own, nor a
    meta-plugin (Multus) delegating to it. Nothing is judged for an unidentified CNI."""
    if obs.cni == "unknown":
        return
    for node, f in _facts(obs):
        active = f.active_cni
        if active is None or f.owns(active, obs.cni):
            continue
        outside = _outside(obs, node)
        evidence = [f"{f.cni_dir} holds {', '.join(c.name for c in f.active_files)}; the "
                    f"runtime uses the first, {active.name} (type {', '.join(active.plugins)}"
                    + (f", subnet {active.subnet}" if active.subnet else "") + ")"]
        if outside:
            view = obs.node(node)
            evidence.append(f"pods outside the node's podCIDR {view.pod_cidr if view else ''}: "
                            + ", ".join(outside))
        yield Candidate("cni-config-shadowed", node,
                        f"{node}: CNI config {active.name} shadows the cluster's {obs.cni} config",
                        tuple(evidence), _node_network(obs, node), 1, active.name,
                        breaks=_breaks("cni_config_wins", "pod_ips_in_podcidr"),
                        confidence=0.9, contrast=(
                            f"expected the runtime's first config in {f.cni_dir} to be "
                            f"{obs.cni}'s / observed {active.name} "
                            f"(type {', '.join(active.plugins)})",))


@detector
def pod_ip_outside_cidr(obs: Observations) -> Iterable[Candidate]:
    """Pods whose address is not in their node's podCIDR (when no config explains it), where
    the CNI's IPAM allocates from podCIDRs (never for Calico's or Cilium's own IPAM)."""
    shadowed = {c.node for c in cni_config_shadowed(obs)}
    for view in obs.nodes:
        if view.name in shadowed:
            continue
        outside = _outside(obs, view.name)
        if outside:
            yield Candidate("pod-ip-outside-podcidr", view.name,
                            f"{view.name}: pod IPs outside its podCIDR {view.pod_cidr}",
                            tuple(outside), _node_network(obs, view.name), 1,
                            breaks=_breaks("pod_ips_in_podcidr"), confidence=0.7,
                            contrast=(f"expected pod IPs in {view.pod_cidr} / observed "
                                      f"{outside[0]}",))


@detector
def bridge_conflict(obs: Observations) -> Iterable[Candidate]:
    """cni0 does not hold the node's pod gateway, or lies outside its podCIDR."""
    for node, f in _facts(obs):
        view = obs.node(node)
        for found in nodefindings.bridge(f, view.pod_cidr if view else None):
            yield Candidate(found.id, node, f"{node}: {found.observed}, not {found.expected}",
                            (found.observed, *found.evidence,
                             f"/run/flannel/subnet.env FLANNEL_SUBNET={f.flannel_subnet}"),
                            _node_network(obs, node), 1,
                            breaks=_breaks("bridge_matches_podcidr"), confidence=0.9,
                            contrast=found.contrast)


def _agent_cascade(obs: Observations) -> frozenset[str]:
    signals = {FLANNEL, CONNECTIVITY}
    # The CoreDNS cascade belongs to a broken node under CoreDNS, when there is one.
    if ("dial tcp" in obs.coredns_logs or "i/o timeout" in obs.coredns_logs) \
            and not obs.component_nodes("coredns") & _local_causes(obs):
        signals |= {COREDNS, DNS, ENDPOINTS}
    return frozenset(signals)


@detector
def cni_agent_missing(obs: Observations) -> Iterable[Candidate]:
    """A CNI other than Flannel whose agent DaemonSet is gone (the nodes' config names it)."""
    if obs.cni in ("flannel", "unknown") or obs.cni_agent:
        return
    yield Candidate("cni-agent-missing", None, f"the {obs.cni} agent DaemonSet is gone: nothing "
                    "programs the pod network on the nodes",
                    (f"no {obs.cni} agent DaemonSet in any namespace, yet the nodes' CNI config "
                     f"is {obs.cni}'s",), _agent_cascade(obs), 2,
                    breaks=tuple((k, "any") for k in (*POD_KINDS, *THROUGH_PODS,
                                                      "flannel_running_ready")),
                    confidence=0.85, contrast=(f"expected a {obs.cni} agent DaemonSet / "
                                               "observed none in any namespace",))


@detector
def vxlan_state(obs: Observations) -> Iterable[Candidate]:
    """Flannel's forwarding state: its agent, flannel.1 and an entry per peer."""
    if obs.cni != "flannel":
        return
    if not obs.flannel_daemonset and obs.flannel_expected and not obs.cni_embedded:
        missing = sorted(n for n, f in obs.facts.items() if VXLAN_DEVICE not in f.addresses)
        evidence = ["no Flannel DaemonSet, yet the nodes carry Flannel's annotations/config"]
        if missing:
            evidence.append(f"{VXLAN_DEVICE} absent on {', '.join(missing)}: no Flannel agent "
                            "runs there, embedded or not")
        yield Candidate("flannel-missing", None, "Flannel is not running: no Flannel DaemonSet "
                        "and no node forwards pod traffic to other nodes", tuple(evidence),
                        _agent_cascade(obs), 2,
                        breaks=tuple((k, "any") for k in (*POD_KINDS, *THROUGH_PODS,
                                                          "vxlan_peers",
                                                          "flannel_running_ready")),
                        confidence=0.85, contrast=("expected a Flannel agent on every node / "
                                                   "observed no Flannel DaemonSet",))
        return
    # Per-peer routes, neighbours and FDB entries are judged once, in pathfacts.forwarding.
    for node, f in _facts(obs):
        if VXLAN_DEVICE in f.addresses:
            continue
        detail = f"{VXLAN_DEVICE} missing"
        yield Candidate("vxlan-incomplete", node, f"{node}: {detail}", (detail,),
                        _node_network(obs, node), 2, breaks=_breaks("vxlan_peers"),
                        confidence=0.85,
                        contrast=(f"expected {VXLAN_DEVICE} on {node} / observed none",))


KERNEL_SIGNALS = {"ip-forward-off": None, "br-netfilter-off": DNS, "rp-filter-strict": ""}
"""What a kernel switch explains: a node's pod network (None), DNS through Service rules, or
only what its checks show ("")."""


@detector
def kernel_switches(obs: Observations) -> Iterable[Candidate]:
    """ip_forward, bridge-nf-call-iptables and rp_filter as the node's kernel has them."""
    for node, f in _facts(obs):
        for found in nodefindings.kernel(f, obs.cni):
            kind = KERNEL_SIGNALS.get(found.id, "")
            if kind is None:
                signals, breaks = _node_network(obs, node), _breaks("kernel_prerequisites")
            elif kind == DNS:
                signals = frozenset(_dns_chain(obs, node) & {DNS} or {DNS})
                breaks = (("kernel_prerequisites", "pair"), *SERVICE_PATHS)
            else:
                signals = frozenset()
                breaks = (("kernel_prerequisites", "pair"),
                          *((k, "either") for k in POD_KINDS))
            yield Candidate(found.id, node, f"{node}: {found.observed}",
                            (f"{found.observed}: {found.evidence[0]}",), signals, 0,
                            breaks=breaks, confidence=0.9 if kind is None else 0.8,
                            contrast=found.contrast)


@detector
def iptables_backends(obs: Observations) -> Iterable[Candidate]:
    """KUBE-* rules in both backends, or a table iptables-nft cannot manage."""
    for node, f in _facts(obs):
        for found in nodefindings.iptables(f):
            if found.id == "iptables-mixed-backend":
                yield Candidate(found.id, node,
                                f"{node}: kube-proxy rules in both iptables backends",
                                (f"KUBE-* rules: {found.observed}: {found.evidence[0]}",
                                 *found.evidence[1:4]), frozenset({DNS, ENDPOINTS}), 0,
                                breaks=(("iptables_backends", "pair"), *SERVICE_PATHS),
                                confidence=0.9, contrast=found.contrast)
                continue
            log = obs.kube_proxy_logs.get(node, "")
            failed = [ln for ln in log.splitlines() if "iptables-restore" in ln][-1:]
            yield Candidate(found.id, node,
                            f"{node}: iptables cannot manage the node's tables; kube-proxy fails",
                            (*f.nft_warnings, *failed), frozenset({KUBE_PROXY}), 0,
                            breaks=(("iptables_backends", "pair"),
                                    ("kube_proxy_running_ready", "pair"),
                                    ("kube_proxy_stable", "pair"), *SERVICE_PATHS),
                            confidence=0.85, contrast=found.contrast)


def _api_unreachable(line: str) -> bool:
    """A CoreDNS log line saying its kubernetes plugin cannot reach the API server (whatever
    the API's ClusterIP: ``dial tcp <ip>:443: i/o timeout``, refused, waiting)."""
    return "waiting for Kubernetes API" in line or ("plugin/kubernetes" in line and any(
        w in line for w in ("dial tcp", "i/o timeout", "connection refused", "no route")))


@detector
def coredns_side(obs: Observations) -> Iterable[Candidate]:
    """CoreDNS's own view: the API unreachable, or its upstream timing out."""
    lines = obs.coredns_logs.splitlines()
    nodes = sorted(obs.component_nodes("coredns"))
    api = [ln for ln in lines if _api_unreachable(ln)]
    if api:
        yield Candidate("coredns-cannot-reach-api", nodes[0] if len(nodes) == 1 else None,
                        "CoreDNS cannot reach the API server from its node",
                        tuple(api[-2:]), frozenset({COREDNS, ENDPOINTS, DNS}), 4,
                        obs.dns_workload, breaks=(("dns", "any"), ("cluster_dns_answers", "any")),
                        confidence=0.8, contrast=(
                            "expected CoreDNS to list Services from the API / observed "
                            f"{api[-1][:160]}",))
    timeouts = [ln for ln in lines if "i/o timeout" in ln and "read udp" in ln]
    if len(timeouts) >= TIMEOUT_LINES:  # one or two are a lost packet, not a dead upstream
        yield Candidate("upstream-dns-unreachable", None,
                        "CoreDNS's upstream resolver does not answer", tuple(timeouts[-2:]),
                        frozenset({DNS}), 4, obs.dns_workload,
                        breaks=(("dns[external]", "any"), ("cluster_dns_answers", "any")),
                        confidence=0.8, contrast=(
                            "expected the upstream resolver to answer CoreDNS / observed "
                            f"{len(timeouts)} read timeouts in its log",))


@detector
def selector_mismatch(obs: Observations) -> Iterable[Candidate]:
    """Services whose selector matches no pod at all (a label typo, not unready pods)."""
    for svc in obs.unmatched_selectors:
        yield Candidate("service-selector-matches-nothing", None,
                        f"Service {svc}: its selector matches no pod",
                        (f"{svc} selects no pod in its namespace",), frozenset({ENDPOINTS}), 5,
                        svc, confidence=0.9,
                        contrast=(f"expected {svc}'s selector to match pods / observed none",))
