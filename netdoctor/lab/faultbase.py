"""What every lab fault is built from: the context it may touch and its declaration."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netdoctor.lab import profiles
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Obj, Store
from netdoctor.lab.containers import LabInfo
from netdoctor.lab.sh import arun

Json = dict[str, Any]

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


RECORDS = "fault-records"  # under the state dir


def record_path(ctx: LabContext, key: str) -> Path:
    """Where a fault keeps what its clear needs back (``key``: fault, node, peer)."""
    return ctx.lab.state_dir / RECORDS / f"{key}.json"


def record(ctx: LabContext, key: str, data: Json) -> None:
    """Keep ``data`` for the clear of the fault in force under ``key``."""
    path = record_path(ctx, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def recall(ctx: LabContext, key: str) -> Json | None:
    """What the inject recorded (and forget it); ``None`` when nothing is in force."""
    path = record_path(ctx, key)
    try:
        data: Json = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    return data


async def insert_rules(ctx: LabContext, key: str, netns: str, table: str,
                       rules: list[list[str]]) -> None:
    """Insert ``rules`` at the top of ``table``, recording whether iptables-nft had to
    create the table (a clear then removes it again, leaving the node as it was)."""
    listed = await arun(["ip", "netns", "exec", netns, "nft", "list", "table", "ip", table],
                        check=False)
    record(ctx, key, {"created": listed.code != 0})
    for rule in rules:
        await ipt(netns, "-t", table, "-I", *rule)


async def delete_rules(ctx: LabContext, key: str, netns: str, table: str,
                       rules: list[list[str]]) -> None:
    """Delete what :func:`insert_rules` inserted, and the table when it created it."""
    for rule in rules:
        await ipt(netns, "-t", table, "-D", *rule, check=False)
    rec = recall(ctx, key)
    left = await arun(["ip", "netns", "exec", netns, "iptables-nft", "-w", "-t", table, "-S"],
                      check=False)
    if rec and rec["created"] and not any(line.startswith("-A ")
                                          for line in left.stdout.splitlines()):
        await arun(["ip", "netns", "exec", netns, "nft", "delete", "table", "ip", table],
                   check=False)
