"""calico-node as a built-in container: BGP routing of IPAM blocks, or Canal's policy-only role.

In the ``calico`` profile (operator install, BGP with VXLANCrossSubnet on a flat
underlay, so no encapsulation between nodes) it writes /var/lib/calico/nodename and
the CNI conflist, publishes its address and VXLAN tunnel address (taken from its IPAM
block) on the Node as calico-node does, brings up ``vxlan.calico``, blackholes its
own block and routes every other node's block via that node's InternalIP, like BIRD.
In Canal (RKE2) Flannel routes; calico-node only writes the CNI config and nodename.

When it stops, its routes stay (BIRD's kernel protocol runs with ``persist``); what
nobody programs any more is a route to a node or block that appears later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

from netdoctor.lab import profiles
from netdoctor.lab.api.resources import resource
from netdoctor.lab.cni import CALICO_TUNNEL_ANNOTATION
from netdoctor.lab.containers import ContainerContext, builtin
from netdoctor.lab.net import routed

NODES = resource("", "nodes")
ADDRESS_ANNOTATION = "projectcalico.org/IPv4Address"
Obj = dict[str, Any]


def write_agent_files(ctx: ContainerContext) -> None:
    """/var/lib/calico/nodename and the profile's CNI conflist on the node's root."""
    root = ctx.node.root
    (root / "var/lib/calico").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/calico/nodename").write_text(ctx.node.name)
    (root / "var/lib/calico/mtu").write_text("1450")  # eth0's 1500 less VXLAN's 50
    cni = profiles.get(ctx.lab.profile).agent_cni
    if cni is not None:
        path = root / cni[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        # install-cni fills in the node's name where the template has its placeholder.
        text = json.dumps(cni[1], indent=2).replace("__KUBERNETES_NODE_NAME__", ctx.node.name)
        path.write_text(text + "\n")


def block_of(node: Obj) -> tuple[str, str] | None:
    """(block, InternalIP) a Node's calico-node published; ``None`` before it did."""
    ann = node.get("metadata", {}).get("annotations") or {}
    tunnel, address = ann.get(CALICO_TUNNEL_ANNOTATION), ann.get(ADDRESS_ANNOTATION)
    if not tunnel or not address:
        return None
    block = ipaddress.ip_network(f"{tunnel}/26", strict=False)
    return str(block), address.split("/")[0]


@builtin(r"calico/node:|hardened-calico:")
class CalicoNode:
    """calico-node (Felix and BIRD) for one node."""

    async def run(self, ctx: ContainerContext) -> int:
        """Program the node, then follow the other nodes until stopped."""
        ctx.log("2024-06-01 00:00:00.000 [INFO][1] startup/startup.go 425: Early log level "
                f"set to info; using node name {ctx.node.name}")
        if profiles.get(ctx.lab.profile).cni_daemonset != ("calico-system", "calico-node"):
            write_agent_files(ctx)
            await asyncio.Event().wait()  # Canal: Flannel routes, Felix only enforces policy
            return 0
        node = ctx.node
        tunnel = str(next(ipaddress.ip_network(node.pod_range).hosts()))
        await routed.calico_devices(node, tunnel)
        await routed.ensure_calico_nat(node, ctx.lab.cluster_cidr)

        def annotate(obj: Obj) -> None:
            obj.setdefault("metadata", {}).setdefault("annotations", {}).update({
                ADDRESS_ANNOTATION: f"{node.internal_ip}/24",
                CALICO_TUNNEL_ANNOTATION: tunnel})

        ctx.store.mutate(NODES, "", node.name, annotate)
        # The nodename file last: the CNI plugin refuses pods until it exists, and by then
        # the tunnel address is taken.
        write_agent_files(ctx)
        events = ctx.store.subscribe(NODES)
        try:
            while True:
                peers = {}
                for obj in ctx.store.items(NODES):
                    found = block_of(obj)
                    if found is not None and obj["metadata"]["name"] != node.name:
                        peers[found[0]] = found[1]
                if await routed.sync_block_routes(node, peers):
                    ctx.log(f"[INFO][bird] routes to {len(peers)} blocks programmed")
                await events.get()  # the queue holds Node events only
        finally:
            ctx.store.unsubscribe(events)
