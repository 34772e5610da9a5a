"""Helpers for the data plane tests: an event loop, a built topology, probes."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from netdoctor.lab import sh
from netdoctor.lab.containers import NodeInfo
from netdoctor.lab.net import _ns, external, flannel, pods, topology
from netdoctor.lab.net.pods import PodNet

T = TypeVar("T")
BRIDGE = "cni0"
NEEDED = ("ip", "bridge", "iptables-nft", "iptables-nft-restore", "dnsmasq", "ping", "dig",
          "curl")


def require_root() -> None:
    """Skip unless the test can build namespaces (root with the tools installed)."""
    if os.geteuid() != 0:
        pytest.skip("the lab network needs root")
    missing = sh.missing_tools(NEEDED)
    if missing:
        pytest.skip("; ".join(missing))


def prefix_for(tag: str) -> str:
    """A namespace prefix unique to this test run: ``ndtn<tag><pid hex>``."""
    return f"ndtn{tag}{os.getpid() % 4096:03x}"


class Loop:
    """One event loop for a module: servers started on it keep serving between tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` to completion within ``timeout`` seconds."""
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def cancel_pending(self) -> None:
        """Cancel every task still running on the loop and let each finish its cleanup."""
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=10))

    def close(self) -> None:
        """Cancel what is left and close the loop."""
        self.cancel_pending()
        self.loop.close()


def make_nodes(prefix: str, root: Path, count: int) -> list[NodeInfo]:
    """NodeInfo for ``count`` nodes with the lab's fixed addressing."""
    names = ["control-plane", *(f"worker-{i}" for i in range(1, count))]
    return [NodeInfo(name, f"{prefix}-n{i}", topology.node_ip(i), topology.node_pod_cidr(i),
                     root / name, i) for i, name in enumerate(names)]


def pod_ip(node: NodeInfo, j: int) -> str:
    """The ``j``-th pod address on ``node``."""
    return f"10.244.{node.index}.{j + 2}"


def resolv_for(pod_netns: str) -> str:
    """A per-pod resolv.conf; the comment names the pod so tests can tell them apart."""
    return f"# pod {pod_netns}\nnameserver {topology.ROUTER_IP}\noptions ndots:5\n"


@dataclass
class Lab:
    """A built topology."""

    prefix: str
    state_dir: Path
    router: topology.Router
    nodes: list[NodeInfo]
    pods: list[PodNet] = field(default_factory=list)
    macs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    web: external.WebServers | None = None

    def node_of(self, pod: PodNet) -> NodeInfo:
        """The node a pod lives on."""
        return next(n for n in self.nodes if n.name == pod.node)


def peers_for(lab: Lab, node: NodeInfo) -> list[flannel.Peer]:
    """Every other node as a flannel peer."""
    return [flannel.Peer(n.pod_cidr, lab.macs[n.name], n.internal_ip)
            for n in lab.nodes if n is not node]


async def wire_flannel(lab: Lab) -> None:
    """flannel.1, peers and masquerade on every node, as the agent would."""
    macs = await asyncio.gather(*(flannel.vxlan_up(n) for n in lab.nodes))
    lab.macs = {n.name: m for n, m in zip(lab.nodes, macs, strict=True)}
    await asyncio.gather(*(flannel.sync_peers(n, peers_for(lab, n)) for n in lab.nodes))
    await asyncio.gather(*(flannel.ensure_masquerade(n) for n in lab.nodes))
    for n in lab.nodes:
        flannel.write_node_files(n)


async def add_pods(lab: Lab, per_node: int) -> None:
    """Bridge on every node, then ``per_node`` pods on each, concurrently."""
    await asyncio.gather(*(pods.ensure_bridge(n, BRIDGE, f"10.244.{n.index}.1/24",
                                              topology.POD_MTU) for n in lab.nodes))
    specs = [(n, f"{lab.prefix}-p{n.index}x{j}", pod_ip(n, j))
             for n in lab.nodes for j in range(per_node)]
    lab.pods = list(await asyncio.gather(*(
        pods.add_pod(n, ns, BRIDGE, ip, 24, f"10.244.{n.index}.1", topology.POD_MTU,
                     resolv_for(ns)) for n, ns, ip in specs)))


async def build(prefix: str, state_dir: Path, nodes: int = 3, per_node: int = 2,
                with_flannel: bool = True) -> Lab:
    """Router, nodes, (flannel) and pods; timings in ``Lab.timings``."""
    t0 = time.monotonic()
    router = await topology.create_router(prefix, state_dir)
    lab = Lab(prefix, state_dir, router, make_nodes(prefix, state_dir / "nodes", nodes))
    await asyncio.gather(*(topology.create_node(router, n) for n in lab.nodes))
    t1 = time.monotonic()
    if with_flannel:
        await wire_flannel(lab)
    t2 = time.monotonic()
    await add_pods(lab, per_node)
    t3 = time.monotonic()
    lab.timings = {"router+nodes": t1 - t0, "flannel": t2 - t1, "pods": t3 - t2,
                   "total": t3 - t0}
    return lab


async def teardown(prefix: str, state_dir: Path) -> float:
    """Destroy and wait until the namespaces are gone; return the seconds it took."""
    t0 = time.monotonic()
    await topology.destroy(prefix, state_dir)
    await topology.wait_gone(prefix)
    return time.monotonic() - t0


def leftovers(prefix: str) -> list[str]:
    """Namespaces and /etc/netns entries still named ``<prefix>-*``."""
    netns = _ns.namespaces(prefix)
    etc = Path("/etc/netns")
    return netns + (sorted(p.name for p in etc.glob(f"{prefix}-*")) if etc.is_dir() else [])


async def in_ns(netns: str, *argv: str, timeout: float = 10.0) -> sh.Result:
    """Run a command inside ``netns`` (unchecked)."""
    return await sh.arun(["ip", "netns", "exec", netns, *argv], timeout=timeout, check=False)


async def ping(netns: str, dst: str, size: int | None = None, df: bool = False,
               wait: float = 1.0) -> bool:
    """One ICMP echo from ``netns`` to ``dst``; whether it was answered."""
    argv = ["ping", "-n", "-q", "-c", "1", "-W", str(wait)]
    if df:
        argv += ["-M", "do"]
    if size is not None:
        argv += ["-s", str(size)]
    return (await in_ns(netns, *argv, dst)).code == 0


async def ping_until(netns: str, dst: str, ok: bool, timeout: float = 5.0) -> bool:
    """Ping until the answer is ``ok`` (True: reachable) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if await ping(netns, dst, wait=0.5) == ok:
            return True
        if time.monotonic() > deadline:
            return False


def rmtree(path: Path) -> None:
    """Remove a state directory, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
