"""Routed pod networks in a node namespace: Calico's per-block routes, Cilium's devices.

Calico (BGP on a flat underlay) gives every node an IPAM block: the node holds a
blackhole route for its own block (the pods' /32 routes are more specific) and BIRD
installs ``<block> via <peer InternalIP> dev eth0 proto bird`` for every other node.
BIRD runs with ``persist``: when calico-node stops, its routes stay.
"""

from __future__ import annotations

from netdoctor.lab import sh
from netdoctor.lab.containers import NodeInfo
from netdoctor.lab.net import _ns

CALICO_VXLAN = "vxlan.calico"
CALICO_VXLAN_VNI = 4096
CALICO_VXLAN_PORT = 4789


async def calico_devices(node: NodeInfo, tunnel_ip: str, mtu: int = 1450) -> None:
    """``vxlan.calico`` with the node's tunnel address, and the blackhole for its block."""
    lines = []
    if not await _ns.ip_json(node.netns, "link", "show", "dev", CALICO_VXLAN):
        lines.append(f"link add {CALICO_VXLAN} type vxlan id {CALICO_VXLAN_VNI} dstport "
                     f"{CALICO_VXLAN_PORT} nolearning local {node.internal_ip} dev eth0")
    lines += [f"link set {CALICO_VXLAN} mtu {mtu}",
              f"addr replace {tunnel_ip}/32 dev {CALICO_VXLAN}",
              f"link set {CALICO_VXLAN} up",
              f"route replace blackhole {node.pod_range} proto bird"]
    await _ns.ip_batch(node.netns, lines)


async def sync_block_routes(node: NodeInfo, peers: dict[str, str]) -> int:
    """Make the ``proto bird`` routes to other nodes' blocks match ``peers`` (block -> IP).

    Returns:
        The number of routes added, changed or removed.
    """
    current = {r["dst"]: r.get("gateway", "") for r in
               await _ns.ip_json(node.netns, "route", "show", "proto", "bird", "dev", "eth0")}
    lines = [f"route del {dst} dev eth0 proto bird" for dst in current if dst not in peers]
    lines += [f"route replace {block} via {ip} dev eth0 proto bird"
              for block, ip in peers.items() if current.get(block) != ip]
    await _ns.ip_batch(node.netns, lines)
    return len(lines)


def calico_nat_rules(pool: str) -> str:
    """Felix's ``natOutgoing`` for the pool (``iptables-restore --noflush`` input)."""
    return "\n".join([
        "*nat",
        ":cali-POSTROUTING - [0:0]",
        ":cali-nat-outgoing - [0:0]",
        "-A cali-POSTROUTING -m comment --comment \"cali:postrouting\" "
        "-j cali-nat-outgoing",
        f"-A cali-nat-outgoing -s {pool} ! -d {pool} -m comment --comment "
        "\"cali:nat-outgoing\" -j MASQUERADE --random-fully",
        "COMMIT", ""])


async def ensure_chain_jump(netns: str, table: str, chain: str, target: str,
                            comment: str) -> None:
    """Insert ``-j target`` at the top of a built-in chain unless it is there."""
    rule = [chain, "-m", "comment", "--comment", comment, "-j", target]
    exec_ = ["ip", "netns", "exec", netns, "iptables-nft", "-w", "-t", table]
    if (await sh.arun([*exec_, "-C", *rule], check=False)).code != 0:
        await sh.arun([*exec_, "-I", *rule])


async def ensure_calico_nat(node: NodeInfo, pool: str) -> None:
    """Program Felix's NAT chains and the jump from POSTROUTING; idempotent."""
    await sh.arun(["ip", "netns", "exec", node.netns, "iptables-nft-restore", "--noflush"],
                  input=calico_nat_rules(pool))
    await ensure_chain_jump(node.netns, "nat", "POSTROUTING", "cali-POSTROUTING",
                            "cali:postrouting")
