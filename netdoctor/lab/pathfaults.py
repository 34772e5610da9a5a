"""Faults on the paths between nodes, pods and the outside, each on the real layer.

A pair fault breaks what node A holds about peer B (``lab fault inject NAME --node A
--peer B``): the VXLAN FDB or neighbour entry flanneld programmed for B, the route to
B's pod range, or a host firewall rule dropping B's VXLAN packets. A node fault breaks
one node (its masquerade rule, its underlay MTU, a firewall rule on NodePorts or on its
pods' DNS); ``dns-replica-mute`` silences one replica of the cluster DNS while its pod
stays Running and Ready. What a clear needs and cannot recompute from the cluster's own
truth (Node annotations, the profile) is recorded under the state dir when injecting,
so a clear restores exactly what was there.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from netdoctor.lab.components.flannel import NODES, peer_of
from netdoctor.lab.containers import NodeInfo
from netdoctor.lab.faultbase import (
    PODS,
    TAG,
    Fault,
    FaultNotApplicable,
    LabContext,
    delete_rules,
    insert_rules,
    recall,
    record,
)
from netdoctor.lab.faultbase import ipt as _ipt
from netdoctor.lab.faultbase import netns_of as _netns
from netdoctor.lab.net import _ns
from netdoctor.lab.net.flannel import VXLAN_DEV, VXLAN_PORT
from netdoctor.lab.profiles import Pods
from netdoctor.lab.sh import arun

NODEPORT_RANGE = "30000:32767"  # kube-apiserver's default --service-node-port-range
MTU_DROP = 100  # below the underlay MTU the overlay needs, by more than any header slack
Obj = dict[str, Any]


# -- helpers -----------------------------------------------------------------------------
def _pair(ctx: LabContext, node: str | None) -> tuple[NodeInfo, NodeInfo]:
    if node is None or node not in ctx.lab.nodes:
        raise ValueError(f"unknown node {node!r}")
    if ctx.peer is None or ctx.peer not in ctx.lab.nodes:
        raise ValueError(f"unknown peer {ctx.peer!r}")
    if ctx.peer == node:
        raise ValueError(f"--peer must differ from --node (both {node})")
    return ctx.lab.nodes[node], ctx.lab.nodes[ctx.peer]


async def _vxlan_peer(ctx: LabContext, a: NodeInfo, b: NodeInfo) -> tuple[str, str, str]:
    """(B's VTEP MAC, B's VTEP address, B's underlay IP) as B's Node publishes them, after
    checking A has a flannel.1 to hold entries for it."""
    obj = ctx.store.find(NODES, "", b.name)
    peer = peer_of(obj) if obj is not None else None
    if peer is None or not await _ns.ip_json(a.netns, "link", "show", "dev", VXLAN_DEV):
        raise FaultNotApplicable(f"{a.name} holds no Flannel VXLAN entries for {b.name} "
                                 f"(profile {ctx.profile.name} has no {VXLAN_DEV} data plane)")
    return peer.vtep_mac.lower(), peer.vtep_ip, peer.internal_ip


def _other_ip(ctx: LabContext, a: NodeInfo, b: NodeInfo) -> str:
    """Another node's underlay address, as left by an address reused after a rebuild; an
    unused one on the underlay when the cluster has only these two nodes."""
    others = [n.internal_ip for n in ctx.lab.nodes.values() if n.name not in (a.name, b.name)]
    if others:
        return others[0]
    net = ipaddress.ip_network(f"{b.internal_ip}/24", strict=False)
    used = {n.internal_ip for n in ctx.lab.nodes.values()}
    return next(str(h) for h in reversed(list(net.hosts())) if str(h) not in used)


def _stale_mac(mac: str) -> str:
    """A MAC the peer's VTEP no longer has (its flannel.1 was recreated since)."""
    octets = mac.split(":")
    octets[-1] = f"{int(octets[-1], 16) ^ 0x5A:02x}"
    return ":".join(octets)


# -- pair faults: VXLAN forwarding state -----------------------------------------------
async def _fdb_stale(ctx: LabContext, node: str | None) -> None:
    # flanneld programmed B's VTEP MAC towards an address that now belongs to another
    # node: the frames reach a VTEP that drops them (not its MAC), both ways fail.
    a, b = _pair(ctx, node)
    mac, _, dst = await _vxlan_peer(ctx, a, b)
    wrong = _other_ip(ctx, a, b)
    await _ns.ip_batch(a.netns, [f"fdb del {mac} dev {VXLAN_DEV} dst {dst}",
                                 f"fdb append {mac} dev {VXLAN_DEV} dst {wrong}"], tool="bridge")


async def _fdb_fixed(ctx: LabContext, node: str | None) -> None:
    a, b = _pair(ctx, node)
    mac, _, dst = await _vxlan_peer(ctx, a, b)
    entries = await _ns.ip_json(a.netns, "fdb", "show", "dev", VXLAN_DEV, tool="bridge")
    lines = [f"fdb del {mac} dev {VXLAN_DEV} dst {e['dst']}" for e in entries
             if str(e.get("mac", "")).lower() == mac and e.get("dst") not in (None, dst)]
    if not any(str(e.get("mac", "")).lower() == mac and e.get("dst") == dst for e in entries):
        lines.append(f"fdb append {mac} dev {VXLAN_DEV} dst {dst}")
    await _ns.ip_batch(a.netns, lines, tool="bridge")


async def _neigh_stale(ctx: LabContext, node: str | None) -> None:
    # B's flannel.1 was recreated with a new MAC and A missed the update: A resolves B's
    # VTEP address to the old MAC, which no FDB entry knows, so VXLAN never sends.
    a, b = _pair(ctx, node)
    mac, vtep, _ = await _vxlan_peer(ctx, a, b)
    await _ns.ip_batch(a.netns, [f"neigh replace {vtep} lladdr {_stale_mac(mac)} "
                                 f"dev {VXLAN_DEV} nud permanent"])


async def _neigh_fixed(ctx: LabContext, node: str | None) -> None:
    a, b = _pair(ctx, node)
    mac, vtep, _ = await _vxlan_peer(ctx, a, b)
    await _ns.ip_batch(a.netns, [f"neigh replace {vtep} lladdr {mac} dev {VXLAN_DEV} "
                                 "nud permanent"])


async def _route_missing(ctx: LabContext, node: str | None) -> None:
    # Something (NetworkManager, a manual flush) deleted A's route to B's pod range; the
    # CNI agent re-adds it only on its next change of B. Recorded as the kernel shows it,
    # so the clear restores the same route on any data plane (flannel.1, BGP via eth0).
    a, b = _pair(ctx, node)
    dst = b.pod_range
    out = await arun(["ip", "-n", a.netns, "-o", "route", "show", "exact", dst])
    line = out.stdout.strip()
    if not line:
        raise FaultNotApplicable(f"{a.name} has no route to {b.name}'s pod range {dst} "
                                 f"(profile {ctx.profile.name} routes it another way)")
    record(ctx, f"route-missing-{a.name}-{b.name}", {"route": line})
    await arun(["ip", "-n", a.netns, "route", "del", *shlex.split(line)])


async def _route_back(ctx: LabContext, node: str | None) -> None:
    a, b = _pair(ctx, node)
    rec = recall(ctx, f"route-missing-{a.name}-{b.name}")
    if rec is not None:
        await arun(["ip", "-n", a.netns, "route", "replace", *shlex.split(rec["route"])])


def _vxlan_rule(b: NodeInfo) -> list[str]:
    return ["PREROUTING", "-s", b.internal_ip, "-p", "udp", "--dport", str(VXLAN_PORT),
            "-m", "comment", "--comment", TAG, "-j", "DROP"]


async def _vxlan_blocked(ctx: LabContext, node: str | None) -> None:
    # A host firewall drops B's VXLAN before conntrack, in the raw table (where
    # "notrack"-style hardening rules live), through iptables-nft.
    a, b = _pair(ctx, node)
    await insert_rules(ctx, f"firewall-vxlan-{a.name}-{b.name}", a.netns, "raw",
                        [_vxlan_rule(b)])


async def _vxlan_allowed(ctx: LabContext, node: str | None) -> None:
    a, b = _pair(ctx, node)
    await delete_rules(ctx, f"firewall-vxlan-{a.name}-{b.name}", a.netns, "raw",
                        [_vxlan_rule(b)])


def _underlay_table(a: NodeInfo, b: NodeInfo) -> str:
    return f"netdoctor_lab_underlay_{min(a.index, b.index)}_{max(a.index, b.index)}"


async def _underlay_blocked(ctx: LabContext, node: str | None) -> None:
    # Outside both nodes, the underlay (a switch ACL, a cloud security group) drops VXLAN
    # between them both ways: neither node holds a rule or a stale entry to find, and
    # their other traffic passes.
    a, b = _pair(ctx, node)
    drops = "\n".join(f"    ip saddr {x} ip daddr {y} udp dport {VXLAN_PORT} drop"
                      for x, y in ((a.internal_ip, b.internal_ip), (b.internal_ip, a.internal_ip)))
    script = (f"table bridge {_underlay_table(a, b)} {{\n  chain forward {{\n"
              "    type filter hook forward priority 0; policy accept;\n"
              f"{drops}\n  }}\n}}\n")
    await arun(["ip", "netns", "exec", ctx.lab.router_netns, "nft", "-f", "-"], input=script)


async def _underlay_open(ctx: LabContext, node: str | None) -> None:
    a, b = _pair(ctx, node)
    await arun(["ip", "netns", "exec", ctx.lab.router_netns, "nft", "delete", "table", "bridge",
                _underlay_table(a, b)], check=False)


# -- node faults -----------------------------------------------------------------------
_SOURCE = re.compile(r"(?:^|\s)-s (\S+)")


def _leaving_masquerade(rule: str, cluster: str) -> bool:
    """A nat rule masquerading pod-network sources towards destinations outside it."""
    if "-j MASQUERADE" not in rule or "! -d " not in rule or "! -s " in rule:
        return False
    m = _SOURCE.search(rule)
    if m is None:
        return False
    src = ipaddress.ip_network(m.group(1), strict=False)
    return src.overlaps(ipaddress.ip_network(cluster))


async def _masquerade_removed(ctx: LabContext, node: str | None) -> None:
    # The CNI's pod-network MASQUERADE for traffic leaving the cluster is missing on this
    # node (its flanneld runs without --ip-masq, so its 5 s iptables resync restores
    # nothing; Calico's pool has natOutgoing off): its pods' packets leave with pod source
    # addresses, which the outside cannot route back.
    ns = _netns(ctx, node)
    out = (await arun(["ip", "netns", "exec", ns, "iptables-nft", "-w", "-t", "nat", "-S"])
           ).stdout.splitlines()
    found: list[Obj] = []
    for line in out:
        if line.startswith("-A ") and _leaving_masquerade(line, ctx.lab.cluster_cidr):
            chain = line.split()[1]
            pos = [r for r in out if r.startswith(f"-A {chain} ")].index(line) + 1
            found.append({"chain": chain, "pos": pos, "rule": line})
    if not found:
        raise FaultNotApplicable(f"{node} has no pod-network masquerade rule for traffic "
                                 "leaving the cluster")
    record(ctx, f"masquerade-missing-{node}", {"rules": found})
    for rule in reversed(found):
        await _ipt(ns, "-t", "nat", "-D", *shlex.split(str(rule["rule"]))[1:])


async def _masquerade_back(ctx: LabContext, node: str | None) -> None:
    rec = recall(ctx, f"masquerade-missing-{node}")
    for rule in (rec or {}).get("rules", []):
        args = shlex.split(rule["rule"])[2:]
        await _ipt(_netns(ctx, node), "-t", "nat", "-I", rule["chain"], str(rule["pos"]), *args)


async def _mtu_lowered(ctx: LabContext, node: str | None) -> None:
    # The node's NIC came up with a smaller MTU than the overlay was sized for (a new
    # NIC, a jumbo-frame setting lost): full-size VXLAN frames to it are dropped on the
    # wire, silently, while small packets pass.
    ns = _netns(ctx, node)
    link = (await _ns.ip_json(ns, "link", "show", "dev", "eth0"))[0]
    mtu = int(link["mtu"])
    record(ctx, f"underlay-mtu-{node}", {"mtu": mtu})
    await _ns.ip_batch(ns, [f"link set eth0 mtu {mtu - MTU_DROP}"])


async def _mtu_restored(ctx: LabContext, node: str | None) -> None:
    rec = recall(ctx, f"underlay-mtu-{node}")
    if rec is not None:
        ns = _netns(ctx, node)
        await _ns.ip_batch(ns, [f"link set eth0 mtu {rec['mtu']}"])
        # Path MTUs learnt while it was low would keep large packets small for minutes.
        await arun(["ip", "-n", ns, "route", "flush", "cache"], check=False)


def _nodeport_rules() -> list[list[str]]:
    return [["PREROUTING", "-p", proto, "-m", "addrtype", "--dst-type", "LOCAL", "-m", proto,
             "--dport", NODEPORT_RANGE, "-m", "comment", "--comment", TAG, "-j", "DROP"]
            for proto in ("tcp", "udp")]


async def _nodeports_blocked(ctx: LabContext, node: str | None) -> None:
    # A host firewall closes the NodePort range; in mangle PREROUTING it matches before
    # kube-proxy's DNAT rewrites the port.
    await insert_rules(ctx, f"firewall-nodeport-{node}", _netns(ctx, node), "mangle",
                        _nodeport_rules())


async def _nodeports_open(ctx: LabContext, node: str | None) -> None:
    await delete_rules(ctx, f"firewall-nodeport-{node}", _netns(ctx, node), "mangle",
                        _nodeport_rules())


def _dns_rules(ctx: LabContext, node: str | None) -> list[list[str]]:
    src = ctx.lab.nodes[str(node)].pod_range
    return [["FORWARD", "-s", src, "-p", proto, "-m", proto, "--dport", "53", "-m", "comment",
             "--comment", TAG, "-j", "DROP"] for proto in ("udp", "tcp")]


async def _dns_blocked(ctx: LabContext, node: str | None) -> None:
    # A host firewall (ufw-style, filter FORWARD) drops DNS its pods send through it,
    # to the cluster DNS and to any resolver alike.
    for rule in _dns_rules(ctx, node):
        await _ipt(_netns(ctx, node), "-I", *rule)


async def _dns_allowed(ctx: LabContext, node: str | None) -> None:
    for rule in _dns_rules(ctx, node):
        await _ipt(_netns(ctx, node), "-D", *rule, check=False)


def _dns_pods(ctx: LabContext) -> list[Obj]:
    dns: Pods = ctx.profile.dns
    return [p for p in ctx.store.items(PODS, dns.namespace)
            if dns.matches(p) and p["spec"].get("nodeName")
            and not p["metadata"].get("deletionTimestamp")]


def _replica(ctx: LabContext, node: str | None) -> tuple[str, list[str]]:
    """The pod namespace of the DNS replica on ``node`` and its DNS ports."""
    pods = _dns_pods(ctx)
    if len(pods) < 2:
        raise FaultNotApplicable(f"dns-replica-mute needs at least 2 DNS replicas, the lab "
                                 f"has {len(pods)} (lab up --dns-replicas 2)")
    pod = next((p for p in pods if p["spec"]["nodeName"] == node), None)
    if pod is None:
        raise FaultNotApplicable(f"no DNS replica runs on {node}; replicas on "
                                 f"{', '.join(sorted(p['spec']['nodeName'] for p in pods))}")
    netns = ctx.pod_netns(pod) if ctx.pod_netns is not None else None
    if netns is None:
        raise FaultNotApplicable(f"DNS replica {pod['metadata']['name']} has no sandbox yet")
    ports = sorted({str(p["containerPort"]) for c in pod["spec"]["containers"]
                    for p in c.get("ports") or [] if p.get("protocol", "TCP") == "UDP"}) or ["53"]
    return netns, ports


def _mute_rules(ports: list[str]) -> list[list[str]]:
    # Loopback stays open: the pod's own health and readiness endpoints keep answering.
    return [["INPUT", "!", "-i", "lo", "-p", proto, "-m", proto, "--dport", port,
             "-m", "comment", "--comment", TAG, "-j", "DROP"]
            for port in ports for proto in ("udp", "tcp")]


async def _replica_muted(ctx: LabContext, node: str | None) -> None:
    # One replica stops answering DNS (a stuck plugin, a policy inside its sandbox)
    # while its health and ready ports still answer: Running, Ready, and silent.
    netns, ports = _replica(ctx, node)
    for rule in _mute_rules(ports):
        await _ipt(netns, "-I", *rule)


async def _replica_unmuted(ctx: LabContext, node: str | None) -> None:
    try:
        netns, ports = _replica(ctx, node)
    except FaultNotApplicable:
        return  # the replica is gone, and its sandbox with the rule
    for rule in _mute_rules(ports):
        await _ipt(netns, "-D", *rule, check=False)


PATH_FAULTS: tuple[Fault, ...] = (
    Fault("vxlan-fdb-stale", "on NODE, the VXLAN FDB entry for PEER's VTEP MAC points at "
          "another node's underlay address", _fdb_stale, _fdb_fixed, node_scoped=True,
          pair=True),
    Fault("neigh-stale", "on NODE, the flannel.1 neighbour entry for PEER's VTEP address "
          "carries a stale MAC", _neigh_stale, _neigh_fixed, node_scoped=True, pair=True),
    Fault("route-missing", "on NODE, the route to PEER's pod range is gone", _route_missing,
          _route_back, node_scoped=True, pair=True),
    Fault("firewall-vxlan", "a raw PREROUTING rule on NODE drops VXLAN (UDP 8472) from "
          "PEER's underlay address", _vxlan_blocked, _vxlan_allowed, node_scoped=True,
          pair=True),
    Fault("underlay-vxlan-drop", "the underlay between NODE and PEER (a switch ACL, a "
          "security group) drops their VXLAN both ways; no node holds a rule",
          _underlay_blocked, _underlay_open, node_scoped=True, pair=True),
    Fault("masquerade-missing", "the pod-network MASQUERADE rule for traffic leaving the "
          "cluster is gone on the node", _masquerade_removed, _masquerade_back,
          node_scoped=True),
    Fault("underlay-mtu", f"the node's underlay MTU is {MTU_DROP} below what the overlay "
          "needs: large packets on its paths vanish", _mtu_lowered, _mtu_restored,
          node_scoped=True),
    Fault("firewall-nodeport", f"a mangle PREROUTING rule on the node drops NodePorts "
          f"({NODEPORT_RANGE.replace(':', '-')})", _nodeports_blocked, _nodeports_open,
          node_scoped=True),
    Fault("firewall-dns", "a filter FORWARD rule on the node drops DNS (udp/tcp 53) from its "
          "pods", _dns_blocked, _dns_allowed, node_scoped=True),
    Fault("dns-replica-mute", "one DNS replica (the one on NODE) stops answering DNS while "
          "Running and Ready", _replica_muted, _replica_unmuted, node_scoped=True,
          default="coredns"),
)
