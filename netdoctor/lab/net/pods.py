"""Pod network namespaces wired to a node's bridge, as the CNI bridge plugin does it."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import weakref
from dataclasses import dataclass

from netdoctor.lab import sh
from netdoctor.lab.containers import NodeInfo
from netdoctor.lab.net import _ns


class CniError(RuntimeError):
    """A CNI ADD failed; the message is the one the real plugin reports."""


@dataclass(frozen=True)
class PodNet:
    """A pod's network namespace and its wiring on the node."""

    netns: str
    node: str
    node_netns: str
    ip: str
    prefix_len: int
    gateway: str
    bridge: str
    host_veth: str
    mtu: int


async def bridge_ipv4(netns: str, bridge: str) -> list[str] | None:
    """The IPv4 ``addr/len`` entries of ``bridge`` in ``netns``; ``None`` when it is absent."""
    links = await _ns.ip_json(netns, "addr", "show", "dev", bridge)
    if not links:
        return None
    return [f"{a['local']}/{a['prefixlen']}" for a in links[0].get("addr_info", [])
            if a.get("family") == "inet"]


# One lock per (event loop, node namespace, bridge): two pods set up on one node at once
# must not both create the bridge (the second "link add" fails with File exists, where the
# real plugin takes the bridge the other one made).
_BRIDGE_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                         dict[tuple[str, str], asyncio.Lock]] = \
    weakref.WeakKeyDictionary()


async def ensure_bridge(node: NodeInfo, bridge: str, gateway_cidr: str, mtu: int) -> None:
    """Make sure ``bridge`` exists in the node namespace, up, holding ``gateway_cidr``.

    Raises:
        CniError: the bridge already holds a different IPv4 address (the message of
            the CNI bridge plugin, e.g. after a node's subnet changed).
    """
    locks = _BRIDGE_LOCKS.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault((node.netns, bridge), asyncio.Lock()):
        await _ensure_bridge(node, bridge, gateway_cidr, mtu)


async def _ensure_bridge(node: NodeInfo, bridge: str, gateway_cidr: str, mtu: int) -> None:
    addrs = await bridge_ipv4(node.netns, bridge)
    lines: list[str] = []
    if addrs is None:
        addrs = []
        lines += [f"link add {bridge} type bridge", f"link set {bridge} mtu {mtu}"]
    wanted = ipaddress.ip_interface(gateway_cidr)
    if any(ipaddress.ip_interface(a) != wanted for a in addrs):
        raise CniError(f'failed to set bridge addr: "{bridge}" already has an IP address '
                       f"different from {gateway_cidr}")
    if not addrs:
        lines.append(f"addr add {gateway_cidr} dev {bridge}")
    lines.append(f"link set {bridge} up")
    await _ns.ip_batch(node.netns, lines)


async def add_pod(node: NodeInfo, pod_netns: str, bridge: str, ip: str, prefix_len: int,
                  gateway: str, mtu: int, resolv_conf: str) -> PodNet:
    """Create a pod namespace attached to ``bridge`` on ``node``.

    The pod gets ``eth0`` with ``ip/prefix_len`` and ``mtu``, a default route via
    ``gateway`` and its own /etc/netns/<pod_netns>/resolv.conf (bind-mounted by
    ``ip netns exec``). The host end of the veth has hairpin mode on, so a pod can
    reach itself through a Service. Name ``pod_netns`` with the lab prefix.

    Raises:
        CommandError: a step failed (e.g. the namespace already exists, or the
            bridge is missing); the pod namespace is removed again.
    """
    host_veth = _ns.hashed_name("veth", pod_netns)
    node_lines = [
        f"link add {host_veth} type veth peer name eth0 netns {pod_netns}",
        f"link set {host_veth} mtu {mtu} master {bridge}",
        f"link set {host_veth} type bridge_slave hairpin on",
        f"link set {host_veth} up",
    ]
    pod_lines = [f"addr add {ip}/{prefix_len} dev eth0", "link set eth0 up",
                 f"route add default via {gateway} dev eth0"]
    await _wire(node, pod_netns, resolv_conf, mtu, node_lines, pod_lines)
    return PodNet(pod_netns, node.name, node.netns, ip, prefix_len, gateway, bridge,
                  host_veth, mtu)


async def add_routed_pod(node: NodeInfo, pod_netns: str, host_prefix: str, ip: str,
                         gateway: str, mtu: int, resolv_conf: str) -> PodNet:
    """Create a pod namespace on a routed veth, as Calico's and Cilium's plugins wire pods.

    The pod holds ``ip/32`` with a link route to ``gateway`` and its default route
    through it; the node routes ``ip/32`` to the host end (``<host_prefix><hash>``),
    which answers the pod's ARP for the gateway (proxy ARP, the 169.254.1.1 trick,
    or a gateway address the node owns). No bridge.

    Raises:
        CommandError: a step failed; the pod namespace is removed again.
    """
    host_veth = _ns.hashed_name(host_prefix, pod_netns)
    node_lines = [
        f"link add {host_veth} type veth peer name eth0 netns {pod_netns}",
        f"link set {host_veth} mtu {mtu} address ee:ee:ee:ee:ee:ee",
        f"link set {host_veth} up",
        f"route replace {ip}/32 dev {host_veth} scope link",
    ]
    pod_lines = [f"addr add {ip}/32 dev eth0", "link set eth0 up",
                 f"route add {gateway} dev eth0 scope link",
                 f"route add default via {gateway} dev eth0"]
    sysctls = (f"net.ipv4.conf.{host_veth}.proxy_arp=1",
               f"net.ipv4.neigh.{host_veth}.proxy_delay=0")
    await _wire(node, pod_netns, resolv_conf, mtu, node_lines, pod_lines, sysctls)
    return PodNet(pod_netns, node.name, node.netns, ip, 32, gateway, "", host_veth, mtu)


async def _wire(node: NodeInfo, pod_netns: str, resolv_conf: str, mtu: int,
                node_lines: list[str], pod_lines: list[str],
                sysctls: tuple[str, ...] = ()) -> None:
    """Create the pod namespace with its resolv.conf, then run the node's and the pod's
    ``ip`` lines; on any failure the namespace is removed again."""
    etc = _ns.ETC_NETNS / pod_netns
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text(resolv_conf)
    await sh.arun(["ip", "netns", "add", pod_netns])
    try:
        await _ns.ip_batch(node.netns, node_lines)
        if sysctls:
            await sh.arun(["ip", "netns", "exec", node.netns, "sysctl", "-q", "-w", *sysctls])
        await _ns.ip_batch(pod_netns, ["link set lo up", f"link set eth0 mtu {mtu}",
                                       *pod_lines])
    except BaseException:
        await delete_pod(pod_netns)
        raise


async def delete_pod(pod_netns: str) -> None:
    """Remove a pod namespace, its processes and /etc/netns entry; no-op when absent.

    Deleting the namespace destroys the pod's veth pair, host end included.
    """
    if _ns.exists(pod_netns):
        _ns.kill(_ns.pids_in(pod_netns))
        await sh.arun(["ip", "netns", "del", pod_netns], check=False)
    shutil.rmtree(_ns.ETC_NETNS / pod_netns, ignore_errors=True)
