"""Components a node agent runs in-process (k3s's Flannel and kube-proxy): no pod at all.

Each task runs the lab's built-in implementation of the component in the node's
namespace, logs to the node's ``var/log/k3s.log`` and is restarted after a crash with
a growing delay, as the service manager restarts the agent. Stopping a task is what
stopping the embedded component does: its cleanup runs (Flannel removes its VXLAN
device and masquerade rules), rules it leaves behind stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from netdoctor.lab.api.store import Store
from netdoctor.lab.containers import ContainerContext, LabInfo, NodeInfo, builtin_for
from netdoctor.lab.kubelet.pod import cancel_until_done
from netdoctor.lab.profiles import NodeTask

log = logging.getLogger("netdoctor.lab.nodeagent")
MAX_DELAY = 10.0


class NodeAgents:
    """The in-process components of every node, started and stopped by name."""

    def __init__(self, store: Store, lab: LabInfo, tasks: tuple[NodeTask, ...]) -> None:
        self.store, self.lab = store, lab
        self.tasks = {t.name: t for t in tasks}
        self.running: dict[tuple[str, str], asyncio.Task[None]] = {}

    def start(self, task: str, node: str | None = None) -> None:
        """Start ``task`` on ``node`` (every node when ``None``); running ones are kept."""
        for name in [node] if node else list(self.lab.nodes):
            key = (task, name)
            if key not in self.running or self.running[key].done():
                self.running[key] = asyncio.create_task(
                    self._supervise(self.tasks[task], self.lab.nodes[name]),
                    name=f"node-{name}-{task}")

    def start_all(self) -> None:
        """Every task on every node."""
        for task in self.tasks:
            self.start(task)

    async def stop(self, task: str, node: str | None = None) -> None:
        """Stop ``task`` on ``node`` (every node when ``None``) and wait for its cleanup."""
        keys = [k for k in self.running if k[0] == task and (node is None or k[1] == node)]
        await asyncio.gather(*(cancel_until_done(self.running.pop(k)) for k in keys))

    def is_running(self, task: str, node: str) -> bool:
        """Whether ``task`` runs (or waits to restart) on ``node``."""
        t = self.running.get((task, node))
        return t is not None and not t.done()

    async def shutdown(self) -> None:
        """Stop every task."""
        for task in list(self.tasks):
            await self.stop(task)

    async def _supervise(self, task: NodeTask, node: NodeInfo) -> None:
        delay = 1.0
        logfile = node.root / "var/log/k3s.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)

        def write(line: str) -> None:
            with logfile.open("a") as f:
                f.write(line.rstrip("\n") + "\n")

        while True:
            impl = builtin_for(task.image)
            if impl is None:
                raise RuntimeError(f"no built-in component for {task.image}")
            pod = {"metadata": {"name": node.name, "namespace": "", "uid": ""},
                   "spec": {"hostNetwork": True, "nodeName": node.name}}
            ctx = ContainerContext(pod=pod, container={"name": task.name, "image": task.image,
                                                       "args": list(task.args)},
                                   node=node, netns=node.netns, pod_ip=node.internal_ip,
                                   store=self.store, lab=self.lab, log=write)
            started = datetime.now()
            try:
                code = await impl.run(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a crash of the component is logged, then restarted
                me = asyncio.current_task()
                if me is not None and me.cancelling():
                    # Stopped while failing: a stop is a stop, not a crash to restart after.
                    raise asyncio.CancelledError from exc
                log.exception("%s on %s crashed", task.name, node.name)
                code = 2
                with contextlib.suppress(OSError):
                    write(f"{task.name} exited: {exc!r}")
            write(f'time="{datetime.now():%Y-%m-%dT%H:%M:%S}" level=error msg="{task.name} '
                  f'exited with code {code}; restarting"')
            if (datetime.now() - started).total_seconds() > 30:
                delay = 1.0
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
