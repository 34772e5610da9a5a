"""Judgments of the node facts that carry traffic between nodes: one function per fact.

Each returns typed :class:`Finding` objects (empty when the fact is as it should be): the
node checks assert on them, the ranking joins them with the failing paths. No other module
judges these facts again.

* forwarding: per peer, the overlay route, the VTEP neighbour and the FDB entry, against the
  peer's podCIDR, its own VTEP MAC and its InternalIP;
* MTU: underlay, overlay and pod MTUs of a node against each other and its peers';
* masquerade: the pod network's NAT rules every other node has;
* host firewall: DROP/REJECT rules, in any backend and table, that match given traffic.

Example:
    >>> from netdoctor.rootcause.model import NodeView
    >>> masquerade({}, (NodeView("a", "192.0.2.1", "10.244.0.0/24"),))
    []
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from netdoctor.rootcause.facts import VXLAN_DEVICE, NodeFacts
from netdoctor.rootcause.model import NodeView

VXLAN_OVERHEAD = 50
"""Bytes a VXLAN header adds over IPv4 (outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14)."""
VXLAN_PORTS = (8472, 4789)
"""UDP ports of VXLAN: Linux's and Flannel's default, and the IANA one."""
COMPONENT_CHAINS = ("KUBE-", "FLANNEL-", "cali-", "CILIUM_", "KUBE_", "ts-", "RKE2-")
COMPONENT_TABLES = ("kube-proxy", "cilium", "calico", "flannel", "antrea")
"""nftables tables the network components own (kube-proxy's nftables mode names its own)."""
"""Chains the network components program: their own rules are not a host firewall."""
POD_KINDS = ("pod_ping", "pod_http", "pod_to_pod", "pod_mtu")
"""Checks whose traffic crosses the pod network between two nodes."""
THROUGH_PODS = ("service_cluster_ip", "api_cluster_ip", "dns", "cluster_dns_answers",
                "egress_http", "node_port")
"""Per-node checks whose traffic may cross the pod network to another node."""


@dataclass(frozen=True)
class Finding:
    """One fact of one node that is not as it should be.

    Attributes:
        id: The cause id it stands for (``vxlan-fdb-stale``).
        node: Where the fact was read.
        peer: The other node it is about, for per-peer state.
        expected: What a working node has.
        observed: What this node has.
        evidence: More lines that show it.
        command: How to see it on the node.
        breaks: Check kinds it breaks (``pod_ping``, ``vxlan_peers``...).
        subject: The object it is about (the matching firewall rule), or ``""``.
        setting: What a repair sets, and to what (a sysctl key and its value; ``cni0`` and
            the gateway it should hold); ``None`` when no setting repairs it.
    """

    id: str
    node: str
    peer: str | None
    expected: str
    observed: str
    evidence: tuple[str, ...] = ()
    command: str = ""
    breaks: tuple[str, ...] = ()
    setting: tuple[str, str] | None = None
    subject: str = ""

    @property
    def contrast(self) -> tuple[str, ...]:
        """The expected / observed line."""
        return (f"expected {self.expected} / observed {self.observed}",)


def _vtep(peer: NodeView, facts: Mapping[str, NodeFacts]) -> tuple[str, str]:
    """The peer's VTEP address and MAC: from its own flannel.1 when read, else the network
    address of its podCIDR (what Flannel assigns) and no MAC."""
    own = facts.get(peer.name)
    if own is not None and own.addresses.get(VXLAN_DEVICE):
        return own.addresses[VXLAN_DEVICE][0].split("/")[0], own.macs.get(VXLAN_DEVICE, "")
    return (peer.pod_cidr or "").split("/")[0], ""


def forwarding(facts: Mapping[str, NodeFacts], nodes: Sequence[NodeView],
               only: str | None = None) -> list[Finding]:
    """Per node with a VXLAN device (``only`` that one) and per peer with a podCIDR: the
    route to the peer's podCIDR through the device, the neighbour entry of the peer's VTEP
    (its MAC) and the FDB entry of that MAC (the peer's InternalIP). Every node's facts are
    read for the peers' VTEPs."""
    found: list[Finding] = []
    for name, f in sorted(facts.items()):
        if (only is not None and name != only) or VXLAN_DEVICE not in f.addresses:
            continue
        routed = {r.dst: r for r in f.routes if r.dev == VXLAN_DEVICE}
        cmd = f"ip route; ip neigh show dev {VXLAN_DEVICE}; bridge fdb show dev {VXLAN_DEVICE}"
        for peer in nodes:
            if peer.name == name or not peer.pod_cidr:
                continue
            vtep, mac = _vtep(peer, facts)
            route = routed.get(peer.pod_cidr)
            if route is not None and route.gateway and vtep and route.gateway != vtep:
                found.append(Finding(
                    "pod-route-missing", name, peer.name,
                    f"route {peer.pod_cidr} via {vtep} dev {VXLAN_DEVICE} ({peer.name}'s VTEP)",
                    f"route {peer.pod_cidr} via {route.gateway} dev {VXLAN_DEVICE}", (), cmd,
                    ("vxlan_peers", *POD_KINDS)))
            elif route is None:
                found.append(Finding(
                    "pod-route-missing", name, peer.name,
                    f"route {peer.pod_cidr} dev {VXLAN_DEVICE} ({peer.name}'s podCIDR)",
                    f"no route to {peer.pod_cidr} through {VXLAN_DEVICE}",
                    tuple(f"route {r.dst} dev {r.dev}" for r in f.routes
                          if r.dst == peer.pod_cidr), cmd, ("vxlan_peers", *POD_KINDS)))
            have = f.vxlan_neighbors.get(vtep)
            if not have or (mac and have.lower() != mac.lower()):
                found.append(Finding(
                    "vxlan-neighbor-stale", name, peer.name,
                    f"neighbour {vtep} lladdr {mac or '<its VTEP MAC>'} ({peer.name})",
                    f"neighbour {vtep} " + (f"lladdr {have}" if have else "absent"),
                    (), cmd, ("vxlan_peers", *POD_KINDS)))
                continue
            dst = f.vxlan_fdb.get(have) or f.vxlan_fdb.get(have.lower())
            if dst != peer.internal_ip:
                owner = next((n.name for n in nodes if n.internal_ip == dst), "no node")
                found.append(Finding(
                    "vxlan-fdb-stale", name, peer.name,
                    f"FDB {have} dst {peer.internal_ip} ({peer.name})",
                    f"FDB {have} dst {dst or 'absent'} ({owner})", (), cmd,
                    ("vxlan_peers", *POD_KINDS)))
    return found


def underlay_mtu(f: NodeFacts, view: NodeView) -> tuple[str, int] | None:
    """The device holding the node's InternalIP and its MTU."""
    dev = f.device_of(view.internal_ip)
    return (dev, f.mtus.get(dev, 0)) if dev else None


def mtu(facts: Mapping[str, NodeFacts], nodes: Sequence[NodeView]) -> list[Finding]:
    """A node whose underlay MTU is below its peers', whose overlay device does not fit in
    its underlay, or whose pods' MTU exceeds its overlay."""
    under = {n.name: u for n in nodes if n.name in facts
             and (u := underlay_mtu(facts[n.name], n)) is not None and u[1]}
    found: list[Finding] = []
    for view in nodes:
        f = facts.get(view.name)
        if f is None or view.name not in under:
            continue
        dev, size = under[view.name]
        peers = [m for n, (_, m) in under.items() if n != view.name]
        vxlan = f.mtus.get(VXLAN_DEVICE, 0)
        pod = f.flannel_mtu or f.mtus.get("cni0", 0)
        lines = []
        if peers and size < max(peers):
            lines.append((f"underlay {dev} MTU {max(peers)} (as on the other nodes)",
                          f"{dev} MTU {size}"))
        if vxlan and vxlan + VXLAN_OVERHEAD > size:
            lines.append((f"{VXLAN_DEVICE} MTU <= {size - VXLAN_OVERHEAD} (underlay {size} - "
                          f"{VXLAN_OVERHEAD})", f"{VXLAN_DEVICE} MTU {vxlan}"))
        if vxlan and pod and pod > vxlan:
            lines.append((f"pod MTU <= {vxlan} ({VXLAN_DEVICE})", f"pod MTU {pod}"))
        if lines:
            found.append(Finding(
                "mtu-mismatch", view.name, None, lines[0][0], lines[0][1],
                tuple(f"expected {e} / observed {o}" for e, o in lines[1:]),
                f"ip link show {dev}; ip link show {VXLAN_DEVICE}",
                ("pod_mtu", "pod_http", "vxlan_peers")))
    return found


def _masq_rules(f: NodeFacts, view: NodeView) -> set[str]:
    """The node's MASQUERADE/SNAT rules of the nat table, its own podCIDR written as
    ``<podCIDR>`` so that nodes compare."""
    out = set()
    for _backend, table, rule in f.all_rules():
        if table == "nat" and ("MASQUERADE" in rule or "SNAT" in rule):
            text = rule.replace(view.pod_cidr, "<podCIDR>") if view.pod_cidr else rule
            out.add(" ".join(text.replace("--random-fully", "").split()))
    return out


def masquerade(facts: Mapping[str, NodeFacts], nodes: Sequence[NodeView]) -> list[Finding]:
    """A node lacking a masquerade rule that every other node (at least two) has."""
    rules = {n.name: _masq_rules(facts[n.name], n) for n in nodes if n.name in facts
             and facts[n.name].complete}
    found = []
    for name, have in sorted(rules.items()):
        others = [r for n, r in rules.items() if n != name]
        if len(others) < 2:
            continue
        common = set.intersection(*others)
        missing = sorted(common - have)
        if missing:
            found.append(Finding(
                "masquerade-missing", name, None, f"nat rule {missing[0]} (on every other node)",
                f"{name} has no such rule ({len(have)} masquerade rule(s) in its nat table)",
                tuple(f"missing: {r}" for r in missing[1:]), "iptables-save -t nat",
                ("egress_http",)))
    return found


@dataclass(frozen=True)
class Traffic:
    """Traffic a failing check sent, as far as it is known (``None``: any)."""

    what: str
    proto: str | None = None
    ports: tuple[int, ...] = ()
    src: tuple[str, ...] = ()
    dst: tuple[str, ...] = ()


def _opt(tokens: list[str], *names: str) -> tuple[str, bool] | None:
    for i, tok in enumerate(tokens[:-1]):
        if tok in names:
            return tokens[i + 1], i > 0 and tokens[i - 1] == "!"
    return None


def _addr_in(value: str, ips: Sequence[str]) -> bool:
    try:
        net = ipaddress.ip_network(value, strict=False)
        return any(ipaddress.ip_network(ip, strict=False).overlaps(net) for ip in ips)
    except ValueError:
        return False


def _ports(value: str) -> set[int]:
    out: set[int] = set()
    for part in value.replace(":", "-").split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            out |= set(range(int(lo), int(hi or lo) + 1)) if (hi or lo).isdigit() else set()
    return out


def rule_matches(rule: str, t: Traffic) -> bool:
    """A ``-A CHAIN ... -j DROP|REJECT`` rule outside the network components' chains that
    would match traffic ``t`` (a match the traffic does not determine counts as matching)."""
    tokens = rule.split(" [nft: ")[0].split()
    target = _opt(tokens, "-j")
    state = _opt(tokens, "--ctstate")
    if len(tokens) < 2 or target is None or target[0] not in ("DROP", "REJECT") \
            or tokens[1].startswith(COMPONENT_CHAINS) \
            or (state is not None and "INVALID" in state[0].upper()):
        return False
    proto = _opt(tokens, "-p", "--protocol")
    if proto and t.proto and (proto[0] == t.proto) == proto[1]:
        return False
    port = _opt(tokens, "--dport", "--dports", "--destination-port")
    if port and t.ports and bool(_ports(port[0]) & set(t.ports)) == port[1]:
        return False
    for flag, ips in ((("-s", "--source"), t.src), (("-d", "--destination"), t.dst)):
        addr = _opt(tokens, *flag)
        if addr and ips and _addr_in(addr[0], ips) == addr[1]:
            return False
    return True


def firewall(f: NodeFacts, t: Traffic) -> list[Finding]:
    """Host firewall rules on ``f``'s node, in any backend and table, that drop ``t``."""
    hits = [(backend, table, rule) for backend, table, rule in f.all_rules()
            if rule_matches(rule, t) and not table.split()[-1].startswith(COMPONENT_TABLES)]
    if not hits:
        return []
    backend, table, rule = hits[0]
    return [Finding("host-firewall", f.node, None, f"{t.what} passes {f.node}'s firewall",
                    f"{rule} ({_where(backend, table)}) drops it",
                    tuple(f"also: {r} ({_where(b, tb)})" for b, tb, r in hits[1:]),
                    "nft list ruleset" if backend == "native-nft"
                    else f"iptables-{backend}-save -t {table}", (), subject=rule)]


def _where(backend: str, table: str) -> str:
    return (f"nftables table {table}" if backend == "native-nft"
            else f"iptables-{backend}, table {table}")
