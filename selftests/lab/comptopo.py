"""Small namespace topologies and contexts for the component tests.

Every namespace is named ``ndtc`` + a short unique tag and is deleted by the
fixture that made it, also when a test fails. Nothing is created in the host
namespace: interfaces are made inside the namespaces with ``ip -n``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store
from netdoctor.lab.containers import ContainerContext, LabInfo, NodeInfo
from netdoctor.lab.sh import arun, run

T = TypeVar("T")
NAMESPACES = resource("", "namespaces")
_counter = itertools.count()


def tag() -> str:
    """A short tag unique to this process and call, for namespace names."""
    return f"{os.getpid() % 4096:03x}{next(_counter)}"


def ns_exec(ns: str, cmd: str) -> str:
    """Run a shell command inside ``ns`` (blocking; setup only)."""
    return run(["ip", "netns", "exec", ns, "sh", "-c", cmd], timeout=10).stdout


async def ans_exec(ns: str, *argv: str, timeout: float = 10) -> tuple[int, str, str]:
    """Run a command inside ``ns`` without blocking the event loop."""
    res = await arun(["ip", "netns", "exec", ns, *argv], timeout=timeout, check=False)
    return res.code, res.stdout, res.stderr


@contextmanager
def namespaces(*names: str) -> Iterator[None]:
    """Create network namespaces (loopback up) and always delete them afterwards."""
    made: list[str] = []
    try:
        for name in names:
            run(["ip", "netns", "add", name])
            made.append(name)
            run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield
    finally:
        for name in made:
            run(["ip", "netns", "del", name], check=False)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def link(ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
    """A veth pair between two namespaces, both ends up."""
    run(["ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
         "netns", ns_b])
    run(["ip", "-n", ns_a, "link", "set", if_a, "up"])
    run(["ip", "-n", ns_b, "link", "set", if_b, "up"])


def addr(ns: str, dev: str, *cidrs: str) -> None:
    """Add addresses to an interface in ``ns``."""
    for cidr in cidrs:
        run(["ip", "-n", ns, "addr", "add", cidr, "dev", dev])


def route(ns: str, *args: str) -> None:
    """``ip route add ARGS`` in ``ns``."""
    run(["ip", "-n", ns, "route", "add", *args])


def new_store(*namespaces_: str) -> Store:
    """A store holding the given Kubernetes namespaces."""
    store = Store()
    for name in namespaces_:
        store.create(NAMESPACES, {"metadata": {"name": name}})
    return store


def context(store: Store, netns: str, pod_ip: str, *, pod: dict[str, Any] | None = None,
            container: dict[str, Any] | None = None, node_ip: str = "192.168.77.2",
            ca_file: Path = Path(), logs: list[str] | None = None) -> ContainerContext:
    """A container context as the kubelet would hand it to a built-in."""
    node = NodeInfo("node-1", netns, node_ip, "10.244.0.0/24", Path("/nonexistent"), 0)
    lab = LabInfo(prefix="ndtc", nodes={"node-1": node}, router_netns="", underlay_bridge="",
                  ca_file=ca_file)
    sink = logs if logs is not None else []
    return ContainerContext(
        pod=pod or {"metadata": {"name": "pod-1", "namespace": "default"}, "spec": {}},
        container=container or {"name": "c"}, node=node, netns=netns, pod_ip=pod_ip,
        store=store, lab=lab, log=sink.append)


async def wait_for(check: Callable[[], Awaitable[bool]], deadline: float, what: str) -> None:
    """Poll ``check`` until true; fail the test after ``deadline`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}")
        await asyncio.sleep(0.05)


async def stop(task: asyncio.Task[T]) -> None:
    """Stop a container task the way the kubelet does (cancel) and wait for it."""
    task.cancel()
    with suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
