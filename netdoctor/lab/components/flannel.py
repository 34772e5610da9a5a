"""The lab's Flannel agent: flanneld with ``--kube-subnet-mgr`` and the VXLAN backend.

It runs hostNetwork in its node's namespace. It takes the node's subnet from
``Node.spec.podCIDR``, brings up ``flannel.1``, publishes its VTEP on the Node as
annotations, writes /run/flannel/subnet.env and the CNI conflist, then programs a
route, neighbour and FDB entry for every other node that published one. When the
pod stops, flannel.1 and its masquerade rules go with it, so cross-node pod traffic
from that node fails as it would once forwarding state is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from netdoctor.lab import profiles
from netdoctor.lab.api.resources import resource
from netdoctor.lab.containers import ContainerContext, NodeInfo, builtin
from netdoctor.lab.net import flannel as dataplane
from netdoctor.lab.sh import CommandError

NODES = resource("", "nodes")
ANNOTATION_PREFIX = "flannel.alpha.coreos.com/"
BACKEND_TYPE = ANNOTATION_PREFIX + "backend-type"
BACKEND_DATA = ANNOTATION_PREFIX + "backend-data"
PUBLIC_IP = ANNOTATION_PREFIX + "public-ip"
SUBNET_MANAGER = ANNOTATION_PREFIX + "kube-subnet-manager"

Obj = dict[str, Any]


def klog(log: Callable[[str], None], source: str, message: str, level: str = "I") -> None:
    """Write one line in klog's format, as flanneld logs."""
    stamp = datetime.now().strftime("%m%d %H:%M:%S.%f")
    log(f"{level}{stamp}       1 {source}] {message}")


def node_annotations(vtep_mac: str, public_ip: str) -> dict[str, str]:
    """The annotations flanneld's kube subnet manager sets on its Node."""
    return {
        BACKEND_TYPE: "vxlan",
        BACKEND_DATA: json.dumps({"VNI": dataplane.VNI, "VtepMAC": vtep_mac},
                                 separators=(",", ":")),
        PUBLIC_IP: public_ip,
        SUBNET_MANAGER: "true",
    }


def peer_of(node: Obj) -> dataplane.Peer | None:
    """The VXLAN peer a Node advertises; ``None`` until its flanneld has annotated it."""
    ann = node.get("metadata", {}).get("annotations") or {}
    cidr = node.get("spec", {}).get("podCIDR")
    if ann.get(BACKEND_TYPE) != "vxlan" or not cidr or not ann.get(PUBLIC_IP):
        return None
    try:
        mac = json.loads(ann.get(BACKEND_DATA, ""))["VtepMAC"]
    except (ValueError, KeyError, TypeError):
        return None
    return dataplane.Peer(cidr, str(mac), ann[PUBLIC_IP])


# Upstream's image (and k3s's embedded Flannel); RKE2's Canal runs hardened-flannel.
async def finish(cleanup: Coroutine[Any, Any, None]) -> None:
    """Run a stopping component's cleanup to the end, however often the stop is repeated.

    The kubelet repeats a cancel that did not end the container at once; a cleanup cut
    short would leave half of the state a real process removes before it exits.
    """
    task = asyncio.ensure_future(cleanup)
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
    task.result()


@builtin(r"flannel/flannel:|hardened-flannel:")
class FlannelAgent:
    """flanneld as a built-in container (image ``docker.io/flannel/flannel:*``)."""

    async def run(self, ctx: ContainerContext) -> int:
        """Set up this node's VXLAN endpoint and follow the other nodes until cancelled.

        Returns:
            1 when the node has no podCIDR (flanneld's "pod cidr not assigned").
        """
        name = ctx.node.name
        klog(ctx.log, "main.go:241", f"Created subnet manager: Kubernetes Subnet Manager - {name}")
        node_obj = ctx.store.find(NODES, "", name)
        cidr = (node_obj or {}).get("spec", {}).get("podCIDR")
        if not cidr:
            klog(ctx.log, "main.go:335", "Error registering network: failed to acquire lease: "
                 f'node "{name}" pod cidr not assigned', level="E")
            return 1
        node = dataclasses.replace(ctx.node, pod_cidr=cidr)
        events = ctx.store.subscribe(NODES)
        try:
            await self._start(ctx, node)
            await self._follow(ctx, node, events)
        except asyncio.CancelledError:
            # The pod stopped: its VTEP and all forwarding state through it go away, and
            # with --ip-masq flanneld deletes its masquerade and forward rules on exit.
            klog(ctx.log, "main.go:467", "shutdownHandler sent cancel signal...")
            await finish(self._teardown(node))
            raise
        finally:
            ctx.store.unsubscribe(events)
        return 0

    @staticmethod
    async def _teardown(node: NodeInfo) -> None:
        await dataplane.vxlan_down(node)
        await dataplane.remove_masquerade(node)

    async def _start(self, ctx: ContainerContext, node: NodeInfo) -> None:
        klog(ctx.log, "main.go:523", "Found network config - Backend type: vxlan")
        klog(ctx.log, "main.go:596",
             f"Using interface with name eth0 and address {node.internal_ip}")
        klog(ctx.log, "vxlan.go:141", "VXLAN config: VNI=1 Port=0 GBP=false Learning=false "
             "DirectRouting=false")
        mac = await dataplane.vxlan_up(node)
        annotations = node_annotations(mac, node.internal_ip)

        def annotate(obj: Obj) -> None:
            obj.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)

        ctx.store.mutate(NODES, "", node.name, annotate)
        klog(ctx.log, "main.go:359", "Setting up masking rules")
        await dataplane.ensure_masquerade(node, ctx.lab.cluster_cidr)
        dataplane.write_node_files(node, ctx.lab.cluster_cidr,
                                   profiles.get(ctx.lab.profile).flannel_cni)
        klog(ctx.log, "main.go:438", "Wrote subnet file to /run/flannel/subnet.env")
        klog(ctx.log, "main.go:442", "Running backend.")

    async def _follow(self, ctx: ContainerContext, node: NodeInfo,
                      events: asyncio.Queue[Any]) -> None:
        klog(ctx.log, "vxlan_network.go:65", "watching for new subnet leases")
        known: dict[str, dataplane.Peer] = {}
        while True:
            known = await self._sync(ctx, node, known)
            await self._next_node_event(events)

    @staticmethod
    async def _next_node_event(events: asyncio.Queue[Any]) -> None:
        """Wait for a Node event (the queue holds no other), then swallow any burst behind it
        (one sync covers all)."""
        await events.get()
        while not events.empty():
            events.get_nowait()

    async def _sync(self, ctx: ContainerContext, node: NodeInfo,
                    known: dict[str, dataplane.Peer]) -> dict[str, dataplane.Peer]:
        peers: dict[str, dataplane.Peer] = {}
        for obj in ctx.store.items(NODES):
            peer = peer_of(obj)
            if peer is not None and obj["metadata"]["name"] != node.name:
                peers[obj["metadata"]["name"]] = peer
        if peers == known:
            return known
        for peer_name, peer in sorted(peers.items()):
            if known.get(peer_name) != peer:
                klog(ctx.log, "subnet.go:159", f"Subnet added: {peer.pod_cidr} via "
                     f"{peer.internal_ip} (node {peer_name}, VtepMAC {peer.vtep_mac})")
        for peer_name in sorted(set(known) - set(peers)):
            klog(ctx.log, "subnet.go:180", f"Subnet removed: {known[peer_name].pod_cidr}")
        try:
            await dataplane.sync_peers(node, list(peers.values()))
        except CommandError as exc:
            # Like flanneld: log and keep running; the next Node event retries.
            klog(ctx.log, "vxlan_network.go:109", f"error programming peers: {exc}", level="E")
            return known
        return peers

