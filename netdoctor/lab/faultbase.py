"""What every lab fault is built from: the context it may touch and its declaration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netdoctor.lab import profiles
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Obj, Store
from netdoctor.lab.containers import LabInfo
from netdoctor.lab.sh import arun

PODS = resource("", "pods")
DAEMONSETS = resource("apps", "daemonsets")
DEPLOYMENTS = resource("apps", "deployments")
TAG = "netdoctor-lab-fault"

if TYPE_CHECKING:
    from netdoctor.lab.nodeagent import NodeAgents


class FaultNotApplicable(Exception):
    """The fault makes no sense on this profile (e.g. kube-proxy faults without kube-proxy)."""


@dataclass
class LabContext:
    """What a fault may touch: the API objects and the lab's namespaces."""

    store: Store
    lab: LabInfo
    # Kills the running containers of a component's pods, as an OOM kill or node reboot
    # would; the kubelet then restarts them.
    kill_containers: Callable[[profiles.Pods], int] | None = None
    agents: NodeAgents | None = None  # components embedded in the node agent (k3s)
    # The network namespace of a running pod's sandbox (None: not started).
    pod_netns: Callable[[Obj], str | None] | None = None
    peer: str | None = None  # the other node of a pair fault, set per call

    @property
    def profile(self) -> profiles.Profile:
        """The profile the lab plays."""
        return profiles.get(self.lab.profile)


Action = Callable[[LabContext, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    """A named way to break the lab; ``default`` picks the targets of a node fault.

    A ``pair`` fault breaks what its node holds about another node, ``ctx.peer``
    (``default_peer`` unless given).
    """

    name: str
    summary: str
    inject: Action
    clear: Action
    node_scoped: bool = False
    default: str = "worker-1"  # "workers", "all", "coredns" or a node name
    pair: bool = False
    default_peer: str = "worker-2"

    def targets(self, ctx: LabContext, node: str | None) -> list[str | None]:
        """Nodes the fault applies to (``[None]`` for a cluster-wide fault)."""
        if not self.node_scoped:
            return [None]
        if node is not None:
            return [node]
        names = list(ctx.lab.nodes)
        if self.default == "workers":
            return [n for n in names if ctx.lab.nodes[n].index > 0]
        if self.default == "all":
            return list(names)
        if self.default == "coredns":
            dns = ctx.profile.dns
            nodes = sorted({p["spec"]["nodeName"] for p in ctx.store.items(PODS, dns.namespace)
                            if dns.matches(p) and p["spec"].get("nodeName")})
            # A DNS DaemonSet runs everywhere: break it on one worker, as a Deployment's
            # single replica would be.
            return nodes[-1:] or [names[0]]
        return [self.default]


def netns_of(ctx: LabContext, node: str | None) -> str:
    """The network namespace of ``node``; ValueError for an unknown one."""
    if node is None or node not in ctx.lab.nodes:
        raise ValueError(f"unknown node {node!r}")
    return ctx.lab.nodes[node].netns


async def ipt(netns: str, *args: str, backend: str = "nft", check: bool = True) -> None:
    """``iptables-<backend> -w ARGS`` inside ``netns``."""
    await arun(["ip", "netns", "exec", netns, f"iptables-{backend}", "-w", *args], check=check)
