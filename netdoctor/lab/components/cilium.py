"""The Cilium agent as a built-in container: cluster-pool IPAM, VXLAN, kube-proxy replacement.

Per node it takes the pod CIDR the operator's cluster pool gave the node (not the
Node's spec.podCIDR), publishes it with its router address as annotations (the agent's
``annotate-k8s-node``), brings up ``cilium_host``/``cilium_net`` (the router address)
and ``cilium_vxlan`` (UDP 8472), routes every other node's pod CIDR through the tunnel,
masquerades pod traffic leaving the cluster (``CILIUM_POST_nat``, as in iptables
masquerading mode), opens ``/var/run/cilium/cilium.sock`` (the CNI plugin needs it)
and writes ``05-cilium.conflist``.

Services: the real agent translates them in eBPF at the socket and on the devices. The
lab has no eBPF, so it emulates that with netfilter rules of the same meaning as
kube-proxy's, under the agent's own ``CILIUM_*`` chain names: no ``KUBE-*`` chain
exists on a node. When the agent stops, the socket goes; routes and rules stay.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from pathlib import Path
from typing import Any

from netdoctor.lab.api.resources import resource
from netdoctor.lab.cni import CILIUM_HOST_ANNOTATION
from netdoctor.lab.components.calico import write_agent_files
from netdoctor.lab.components.klog import klog
from netdoctor.lab.components.kube_proxy import KubeProxy, ProxyConfig
from netdoctor.lab.components.kube_proxy_rules import JUMPS, Jump
from netdoctor.lab.containers import ContainerContext, NodeInfo, builtin
from netdoctor.lab.net import _ns, flannel, routed
from netdoctor.lab.sh import CommandError, arun

NODES = resource("", "nodes")
POD_CIDR_ANNOTATION = "network.cilium.io/ipv4-pod-cidr"
VXLAN_DEV = "cilium_vxlan"
SOCKET = "var/run/cilium/cilium.sock"
Obj = dict[str, Any]


def router_ip(pod_cidr: str) -> str:
    """The address the agent gives ``cilium_host``: the first of the node's pod CIDR."""
    return str(next(ipaddress.ip_network(pod_cidr).hosts()))


def vtep_mac(internal_ip: str) -> str:
    """A stable MAC for a node's ``cilium_vxlan`` (peers derive it from the InternalIP)."""
    digest = hashlib.sha256(internal_ip.encode()).digest()
    return "0a:" + ":".join(f"{b:02x}" for b in digest[:5])


class CiliumServices(KubeProxy):
    """The Service translation of kube-proxy replacement, emulated with netfilter rules."""

    def rename(self, rules: str) -> str:
        """kube-proxy's chain names become the agent's (``KUBE-X`` -> ``CILIUM_X``)."""
        return rules.replace("KUBE-", "CILIUM_")

    def unname(self, chain: str) -> str:
        """The kube-proxy name of one of the agent's chains."""
        return chain.replace("CILIUM_", "KUBE-", 1)

    def jumps(self) -> tuple[Jump, ...]:
        """The same hooks, into the agent's chains, with its feeder comments."""
        return tuple(Jump(j.table, j.src_chain, self.rename(j.dst_chain),
                          f"cilium-feeder: {self.rename(j.dst_chain)}", j.extra) for j in JUMPS)


def masquerade_rules(pod_cidr: str, cluster_pool: str) -> str:
    """``CILIUM_POST_nat``: masquerade pod traffic that leaves the cluster pool."""
    return "\n".join([
        "*nat", ":CILIUM_POST_nat - [0:0]",
        f"-A CILIUM_POST_nat -s {pod_cidr} ! -d {cluster_pool} ! -o cilium_+ -m comment "
        '--comment "cilium masquerade non-cluster" -j MASQUERADE', "COMMIT", ""])


async def devices(node: NodeInfo, pod_cidr: str) -> None:
    """``cilium_host``/``cilium_net`` with the router address and ``cilium_vxlan``."""
    lines = []
    if not await _ns.ip_json(node.netns, "link", "show", "dev", "cilium_host"):
        lines.append("link add cilium_host type veth peer name cilium_net")
    if not await _ns.ip_json(node.netns, "link", "show", "dev", VXLAN_DEV):
        lines.append(f"link add {VXLAN_DEV} address {vtep_mac(node.internal_ip)} type vxlan "
                     f"id 2 dstport {flannel.VXLAN_PORT} nolearning local {node.internal_ip} "
                     "dev eth0")
    lines += ["link set cilium_net up", "link set cilium_host up",
              f"addr replace {router_ip(pod_cidr)}/32 dev cilium_host",
              f"link set {VXLAN_DEV} mtu {flannel.MTU}", f"link set {VXLAN_DEV} up"]
    await _ns.ip_batch(node.netns, lines)
    # The agent turns reverse-path filtering off (net.ipv4.conf.all and its devices, in
    # its loader's base sysctls): cilium_vxlan has no address, so with rp_filter on,
    # tunnelled traffic from a node address (a NodePort the sender masqueraded) would be
    # dropped as martian.
    await arun(["ip", "netns", "exec", node.netns, "sysctl", "-q", "-w",
                *(f"net.ipv4.conf.{d}.rp_filter=0" for d in ("all", "cilium_host",
                                                               "cilium_net", VXLAN_DEV))])


@builtin(r"cilium/cilium:")
class CiliumAgent:
    """cilium-agent for one node."""

    def __init__(self) -> None:
        self.services = CiliumServices()

    async def run(self, ctx: ContainerContext) -> int:
        """Set the node up, serve the CNI socket, keep peers and Services programmed."""
        node = ctx.node
        pod_cidr = node.pod_range
        ctx.log(klog("I", "daemon/cmd/daemon_main.go:1645", "Initializing daemon"))
        await devices(node, pod_cidr)
        await arun(["ip", "netns", "exec", node.netns, "iptables-nft-restore", "--noflush"],
                   input=masquerade_rules(pod_cidr, ctx.lab.cluster_cidr))
        await routed.ensure_chain_jump(node.netns, "nat", "POSTROUTING", "CILIUM_POST_nat",
                                       "cilium-feeder: CILIUM_POST_nat")

        def annotate(obj: Obj) -> None:
            obj.setdefault("metadata", {}).setdefault("annotations", {}).update({
                POD_CIDR_ANNOTATION: pod_cidr, CILIUM_HOST_ANNOTATION: router_ip(pod_cidr)})

        ctx.store.mutate(NODES, "", node.name, annotate)
        sock = self._listen(node.root / SOCKET)
        write_agent_files(ctx)
        ctx.log(klog("I", "daemon/cmd/daemon_main.go:1823", "Daemon initialization completed"))
        try:
            peers = asyncio.create_task(self._follow_nodes(ctx))
            cfg = ProxyConfig("iptables", "", ctx.lab.cluster_cidr)
            code = await self.services.proxy(ctx, cfg, "nft")
            peers.cancel()
            return code
        finally:
            sock.close()
            (node.root / SOCKET).unlink(missing_ok=True)

    @staticmethod
    def _listen(path: Path) -> socket.socket:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.listen(8)
        return sock

    async def _follow_nodes(self, ctx: ContainerContext) -> None:
        events = ctx.store.subscribe(NODES)
        try:
            while True:
                peers = []
                for obj in ctx.store.items(NODES):
                    ann = obj["metadata"].get("annotations") or {}
                    ip = next((a["address"] for a in obj.get("status", {}).get("addresses", [])
                               if a.get("type") == "InternalIP"), None)
                    if obj["metadata"]["name"] == ctx.node.name or not ip or \
                            POD_CIDR_ANNOTATION not in ann:
                        continue
                    peers.append(flannel.Peer(ann[POD_CIDR_ANNOTATION], vtep_mac(ip), ip,
                                              ann.get(CILIUM_HOST_ANNOTATION, "")))
                try:
                    await flannel.sync_peers(ctx.node, peers, VXLAN_DEV)
                except CommandError as exc:  # retried on the next Node event
                    ctx.log(klog("E", "linux/node.go:540", "Unable to program tunnel routes",
                                 err=str(exc)))
                await events.get()  # the queue holds Node events only
        finally:
            ctx.store.unsubscribe(events)
