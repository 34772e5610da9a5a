"""Flannel's VXLAN data plane in a node namespace, programmed the way flanneld does it.

Per remote node M (pod subnet 10.244.M.0/24, VTEP MAC, underlay IP):

- route ``10.244.M.0/24 via 10.244.M.0 dev flannel.1 onlink``
- neighbour ``10.244.M.0 lladdr <VtepMAC> nud permanent`` on flannel.1
- FDB ``<VtepMAC> dev flannel.1 dst <underlay IP>``

and ``flannel.1`` itself holds ``10.244.N.0/32``.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from netdoctor.lab import sh
from netdoctor.lab.containers import NodeInfo
from netdoctor.lab.net import _ns

VXLAN_DEV = "flannel.1"
VNI = 1
VXLAN_PORT = 8472
NETWORK = "10.244.0.0/16"
MTU = 1450
SUBNET_ENV = "run/flannel/subnet.env"
CONFLIST = "etc/cni/net.d/10-flannel.conflist"
# The file flannel's install-cni init container copies onto every node.
FLANNEL_CONFLIST: dict[str, Any] = {
    "name": "cbr0",
    "cniVersion": "0.3.1",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
MASQ_COMMENT = "flanneld masq"
FWD_COMMENT = "flanneld forward"


@dataclass(frozen=True)
class Peer:
    """A remote node as flannel sees it: pod subnet, VTEP MAC, underlay address."""

    pod_cidr: str
    vtep_mac: str
    internal_ip: str
    gateway: str = ""  # the next hop for the subnet; default: its network address

    @property
    def vtep_ip(self) -> str:
        """The peer's flannel.1 address: the network address of its subnet."""
        return self.gateway or str(ipaddress.ip_network(self.pod_cidr).network_address)


def vtep_address(pod_cidr: str) -> str:
    """``10.244.N.0`` for ``10.244.N.0/24``."""
    return str(ipaddress.ip_network(pod_cidr).network_address)


async def vxlan_mac(netns: str) -> str | None:
    """The MAC of flannel.1 in ``netns``; ``None`` when it does not exist."""
    links = await _ns.ip_json(netns, "link", "show", "dev", VXLAN_DEV)
    return str(links[0]["address"]) if links else None


async def vxlan_up(node: NodeInfo) -> str:
    """Create (or reuse) flannel.1 in the node namespace, up with 10.244.N.0/32.

    Returns:
        The VTEP MAC address, which peers need in their neighbour and FDB entries.
    """
    lines: list[str] = []
    if await vxlan_mac(node.netns) is None:
        lines.append(f"link add {VXLAN_DEV} type vxlan id {VNI} dstport {VXLAN_PORT} "
                     f"nolearning local {node.internal_ip} dev eth0")
    lines += [
        f"link set {VXLAN_DEV} mtu {MTU}",
        f"addr replace {vtep_address(node.pod_cidr)}/32 dev {VXLAN_DEV}",
        f"link set {VXLAN_DEV} up",
    ]
    await _ns.ip_batch(node.netns, lines)
    mac = await vxlan_mac(node.netns)
    if mac is None:
        raise RuntimeError(f"{VXLAN_DEV} vanished in {node.netns}")
    return mac


async def vxlan_down(node: NodeInfo) -> None:
    """Delete flannel.1 (and with it every route, neighbour and FDB entry on it)."""
    if await vxlan_mac(node.netns) is not None:
        await _ns.ip_batch(node.netns, [f"link del {VXLAN_DEV}"], force=True)


async def _current(netns: str, dev: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]],
                                                   set[tuple[str, str]]]:
    """Routes (dst, gw), neighbours (ip, mac) and FDB entries (mac, dst) on ``dev``."""
    routes = {(r["dst"], r.get("gateway", "")) for r in
              await _ns.ip_json(netns, "route", "show", "dev", dev)
              if r.get("gateway")}
    neigh = {(n["dst"], n.get("lladdr", "")) for n in
             await _ns.ip_json(netns, "neigh", "show", "dev", dev)}
    fdb = {(f["mac"], f.get("dst", "")) for f in
           await _ns.ip_json(netns, "fdb", "show", "dev", dev, tool="bridge")
           if f.get("dst")}
    return routes, neigh, fdb


async def sync_peers(node: NodeInfo, peers: list[Peer], dev: str = VXLAN_DEV) -> int:
    """Make ``dev``'s (flannel.1's) routes, neighbours and FDB match ``peers`` exactly.

    Reads the current state first, so repeating a call changes nothing. Entries
    for nodes no longer in ``peers`` are removed.

    Returns:
        The number of entries added or removed.

    Raises:
        CommandError: flannel.1 does not exist or a change was refused.
    """
    routes, neigh, fdb = await _current(node.netns, dev)
    want_routes = {(p.pod_cidr, p.vtep_ip) for p in peers}
    want_neigh = {(p.vtep_ip, p.vtep_mac.lower()) for p in peers}
    want_fdb = {(p.vtep_mac.lower(), p.internal_ip) for p in peers}
    ip_lines = [f"route del {d} via {g} dev {dev}" for d, g in routes - want_routes]
    ip_lines += [f"neigh del {i} dev {dev}" for i, _ in neigh - want_neigh]
    ip_lines += [f"neigh replace {i} lladdr {m} dev {dev} nud permanent"
                 for i, m in want_neigh - neigh]
    ip_lines += [f"route replace {d} via {g} dev {dev} onlink"
                 for d, g in want_routes - routes]
    br_lines = [f"fdb del {m} dev {dev} dst {d}" for m, d in fdb - want_fdb]
    br_lines += [f"fdb append {m} dev {dev} dst {d}" for m, d in want_fdb - fdb]
    # FDB first: an entry must exist before the route can carry traffic.
    await _ns.ip_batch(node.netns, br_lines, tool="bridge")
    await _ns.ip_batch(node.netns, ip_lines)
    return len(ip_lines) + len(br_lines)


def masquerade_rules(pod_cidr: str, network: str = NETWORK) -> str:
    """``iptables-restore --noflush`` input for flanneld's masquerade and forward rules."""
    m, f = f'-m comment --comment "{MASQ_COMMENT}"', f'-m comment --comment "{FWD_COMMENT}"'
    return "\n".join([
        "*nat",
        ":FLANNEL-POSTRTG - [0:0]",
        f"-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 {m} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {pod_cidr} -d {network} {m} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {network} -d {pod_cidr} {m} -j RETURN",
        f"-A FLANNEL-POSTRTG ! -s {network} -d {pod_cidr} {m} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {network} ! -d 224.0.0.0/4 {m} -j MASQUERADE --random-fully",
        f"-A FLANNEL-POSTRTG ! -s {network} -d {network} {m} -j MASQUERADE --random-fully",
        "COMMIT",
        "*filter",
        ":FLANNEL-FWD - [0:0]",
        f"-A FLANNEL-FWD -s {network} {f} -j ACCEPT",
        f"-A FLANNEL-FWD -d {network} {f} -j ACCEPT",
        "COMMIT",
        "",
    ])


async def ensure_masquerade(node: NodeInfo, network: str = NETWORK) -> None:
    """Install flanneld's NAT and FORWARD rules with iptables-nft; idempotent.

    The FLANNEL-* chains are rewritten whole (declaring a chain in a
    ``--noflush`` restore flushes it) and the jumps to them added only if missing.
    """
    exec_ = ["ip", "netns", "exec", node.netns]
    await sh.arun([*exec_, "iptables-nft-restore", "--noflush"],
                  input=masquerade_rules(node.pod_cidr, network))
    jumps = [("nat", "POSTROUTING", MASQ_COMMENT, "FLANNEL-POSTRTG"),
             ("filter", "FORWARD", FWD_COMMENT, "FLANNEL-FWD")]
    for table, chain, comment, target in jumps:
        rule = [chain, "-m", "comment", "--comment", comment, "-j", target]
        check = await sh.arun([*exec_, "iptables-nft", "-w", "-t", table, "-C", *rule],
                              check=False)
        if check.code != 0:
            await sh.arun([*exec_, "iptables-nft", "-w", "-t", table, "-A", *rule])


def remove_masquerade_script(iptables: str = "iptables-nft") -> str:
    """Shell script that removes what :func:`ensure_masquerade` installed; idempotent."""
    return "\n".join([
        f'while {iptables} -w -t nat -D POSTROUTING -m comment --comment "{MASQ_COMMENT}" '
        "-j FLANNEL-POSTRTG 2>/dev/null; do :; done",
        f'while {iptables} -w -t filter -D FORWARD -m comment --comment "{FWD_COMMENT}" '
        "-j FLANNEL-FWD 2>/dev/null; do :; done",
        f"{iptables} -w -t nat -F FLANNEL-POSTRTG 2>/dev/null",
        f"{iptables} -w -t nat -X FLANNEL-POSTRTG 2>/dev/null",
        f"{iptables} -w -t filter -F FLANNEL-FWD 2>/dev/null",
        f"{iptables} -w -t filter -X FLANNEL-FWD 2>/dev/null",
        "exit 0", ""])


async def remove_masquerade(node: NodeInfo) -> None:
    """Delete flanneld's NAT and FORWARD rules, as flanneld does when it exits."""
    await sh.arun(["ip", "netns", "exec", node.netns, "sh", "-c", remove_masquerade_script()],
                  check=False)


def subnet_env(pod_cidr: str, network: str = NETWORK, mtu: int = MTU) -> str:
    """The text of /run/flannel/subnet.env for a node with subnet ``pod_cidr``."""
    net = ipaddress.ip_network(pod_cidr)
    return (f"FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={net.network_address + 1}/"
            f"{net.prefixlen}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ=true\n")


def write_node_files(node: NodeInfo, network: str = NETWORK,
                     cni: tuple[str, dict[str, Any]] | None = (CONFLIST, FLANNEL_CONFLIST)
                     ) -> None:
    """Write run/flannel/subnet.env and the CNI conflist under the node's root.

    ``cni`` is (path under the root, conflist); ``None`` where another container of
    the CNI installs the config (Canal's install-cni).
    """
    env = node.root / SUBNET_ENV
    env.parent.mkdir(parents=True, exist_ok=True)
    env.write_text(subnet_env(node.pod_cidr, network))
    if cni is not None:
        conf = node.root / cni[0]
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(json.dumps(cni[1], indent=2) + "\n")
