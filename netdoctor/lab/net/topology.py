"""The lab's underlay: a router namespace with a bridge, and one namespace per node.

Layout for prefix ``P``::

    P-rt   router: br0 192.168.4.1/24 (the underlay switch), ext0 with the
           documentation addresses, dnsmasq, the web server
    <node.netns>  one per node: eth0 192.168.4.(10+i)/24, its veth peer in P-rt's br0

Node namespaces must be named ``P-...`` so :func:`destroy` finds them.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from netdoctor.lab import nsock, sh
from netdoctor.lab.containers import NodeInfo
from netdoctor.lab.net import _ns, external

UNDERLAY_CIDR = "192.168.4.0/24"
UNDERLAY_PREFIX_LEN = 24
ROUTER_IP = external.ROUTER_IP
UNDERLAY_BRIDGE = "br0"
EXTERNAL_IFACE = "ext0"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
POD_MTU = 1450
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap", "flannel")
NODE_DIRS = ("etc", "var/lib/cni/networks", "var/log")
# Sysctls a kubeadm node has set before Kubernetes runs; rp_filter=2 is "loose".
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.ipv4.conf.all.rp_filter": "2",
    "net.ipv4.conf.default.rp_filter": "2",
}


class LabNetError(RuntimeError):
    """The machine cannot host the lab network (a missing kernel feature or tool)."""


@dataclass(frozen=True)
class Router:
    """The underlay router namespace and what runs in it."""

    prefix: str
    netns: str
    bridge: str
    state_dir: Path
    dns_pid: int


def router_netns(prefix: str) -> str:
    """The router's namespace name for ``prefix``."""
    return f"{prefix}-rt"


def node_ip(index: int) -> str:
    """The underlay address of node ``index`` (0 is the control plane)."""
    return f"192.168.4.{10 + index}"


def node_pod_cidr(index: int) -> str:
    """The pod subnet of node ``index``."""
    return f"10.244.{index}.0/24"


async def create_router(prefix: str, state_dir: Path) -> Router:
    """Create ``<prefix>-rt`` with the underlay bridge, external addresses and resolver.

    Args:
        prefix: namespace name prefix of this lab (e.g. ``ndtn1``).
        state_dir: where dnsmasq's config, pid file and log go.

    Raises:
        CommandError: an ``ip`` command failed (e.g. the namespace already exists).
        TimeoutError: dnsmasq did not come up.
    """
    netns = router_netns(prefix)
    await sh.arun(["ip", "netns", "add", netns])
    ext_peer = EXTERNAL_IFACE + "p"
    await _ns.ip_batch(netns, [
        "link set lo up",
        f"link add {UNDERLAY_BRIDGE} type bridge",
        f"addr add {ROUTER_IP}/{UNDERLAY_PREFIX_LEN} dev {UNDERLAY_BRIDGE}",
        f"link set {UNDERLAY_BRIDGE} up",
        # "dummy" links are unavailable here; a veth pair gives the external
        # addresses an interface of their own that a fault can take down.
        f"link add {EXTERNAL_IFACE} type veth peer name {ext_peer}",
        *(f"addr add {ip}/32 dev {EXTERNAL_IFACE}" for ip in external.EXTERNAL_ADDRESSES),
        f"link set {ext_peer} up",
        f"link set {EXTERNAL_IFACE} up",
    ])
    await set_sysctl(netns, "net.ipv4.ip_forward", "1")
    pid = await external.start_dnsmasq(netns, state_dir)
    return Router(prefix, netns, UNDERLAY_BRIDGE, state_dir, pid)


def _check_br_netfilter(netns: str) -> None:
    if not nsock.call_in_netns(netns, Path("/proc/sys/net/bridge").exists):
        raise LabNetError("/proc/sys/net/bridge is missing: the br_netfilter module is not "
                          "loaded; run `modprobe br_netfilter` on the host")


async def create_node(router: Router, node: NodeInfo, cni_dirs: tuple[str, str] | None = None,
                      cni_plugins: tuple[str, ...] = CNI_PLUGINS) -> None:
    """Create a node namespace wired to the router's bridge, plus its filesystem root.

    ``cni_dirs`` is (config dir, bin dir) under the root, where the distribution keeps
    them; ``cni_plugins`` the plugin binaries its CNI installs there.

    Raises:
        LabNetError: br_netfilter is not loaded.
        CommandError: an ``ip`` command failed (e.g. the namespace already exists).
    """
    await sh.arun(["ip", "netns", "add", node.netns])
    try:
        _check_br_netfilter(node.netns)
    except LabNetError:
        await sh.arun(["ip", "netns", "del", node.netns], check=False)
        raise
    uplink = _ns.hashed_name("u", node.netns)
    # Created from inside the router namespace with the peer placed directly in the
    # node namespace: no link ever exists in the host namespace.
    await _ns.ip_batch(router.netns, [
        f"link add {uplink} type veth peer name eth0 netns {node.netns}",
        f"link set {uplink} master {router.bridge}",
        f"link set {uplink} up",
    ])
    await _ns.ip_batch(node.netns, [
        "link set lo up",
        f"addr add {node.internal_ip}/{UNDERLAY_PREFIX_LEN} dev eth0",
        "link set eth0 up",
        f"route add default via {ROUTER_IP}",
    ])
    for key, value in NODE_SYSCTLS.items():
        await set_sysctl(node.netns, key, value)
    make_node_root(node.root, cni_dirs, cni_plugins)


def make_node_root(root: Path, cni_dirs: tuple[str, str] | None = None,
                   cni_plugins: tuple[str, ...] = CNI_PLUGINS) -> None:
    """Create a node's directories and placeholder CNI plugin executables."""
    conf_dir, bin_dir = cni_dirs or ("etc/cni/net.d", "opt/cni/bin")
    for sub in (*NODE_DIRS, conf_dir, bin_dir):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # The node's resolver, which the kubelet hands to dnsPolicy=Default pods such as CoreDNS.
    (root / "etc/resolv.conf").write_text(f"nameserver {ROUTER_IP}\n")
    for plugin in cni_plugins:
        path = root / bin_dir / plugin
        # Only presence matters: deleting one simulates a node missing that plugin.
        path.write_text(f"#!/bin/sh\n# lab placeholder for the CNI '{plugin}' plugin\nexit 0\n")
        path.chmod(0o755)


async def destroy(prefix: str, state_dir: Path | None = None) -> None:
    """Remove everything the lab made under ``prefix``; safe to call at any time.

    Kills processes in every ``<prefix>-*`` namespace, deletes those namespaces and
    their /etc/netns directories, and kills the resolver named by ``state_dir``'s
    pid file. Does nothing when nothing exists. Listening sockets the caller still
    holds (e.g. :class:`external.WebServers`) keep their namespace alive: stop them first.
    """
    if state_dir is not None:
        external.stop_dnsmasq(state_dir)
    names = _ns.namespaces(prefix)
    killed = [pid for name in names for pid in _ns.pids_in(name)]
    _ns.kill(killed)
    await _ns.ip_batch(None, [f"netns del {n}" for n in names], force=True)
    if _ns.ETC_NETNS.is_dir():
        for path in _ns.ETC_NETNS.glob(f"{prefix}-*"):
            shutil.rmtree(path, ignore_errors=True)
    external.reap(killed)


async def routes_to(node: NodeInfo, ranges: list[str]) -> bool:
    """Whether ``node``'s main table has a route for each of ``ranges`` (a blackhole is none)."""
    routes = {r.get("dst") for r in await _ns.ip_json(node.netns, "route", "show")
              if r.get("type") != "blackhole"}
    return all(r in routes for r in ranges)


async def set_sysctl(netns: str, key: str, value: str) -> None:
    """Set a sysctl inside ``netns`` (e.g. ``net.ipv4.ip_forward``).

    Raises:
        OSError: the key does not exist in that namespace, or the value is refused.
    """
    def write() -> None:
        _ns.sysctl_path(key).write_text(f"{value}\n")
    nsock.call_in_netns(netns, write)


async def get_sysctl(netns: str, key: str) -> str:
    """Read a sysctl inside ``netns`` (stripped of its newline).

    Raises:
        OSError: the key does not exist in that namespace.
    """
    return nsock.call_in_netns(netns, lambda: _ns.sysctl_path(key).read_text().strip())


async def wait_gone(prefix: str, timeout: float = 5.0) -> None:
    """Wait until no ``<prefix>-*`` namespace is pinned.

    Raises:
        TimeoutError: some remain after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _ns.namespaces(prefix):
        if loop.time() > deadline:
            raise TimeoutError(f"namespaces left: {_ns.namespaces(prefix)}")
        await asyncio.sleep(0.02)
