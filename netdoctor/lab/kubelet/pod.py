"""One pod on one node: its sandbox, its containers, restarts and probes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netdoctor.lab import cni, events
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Obj, now
from netdoctor.lab.containers import ContainerContext, NodeInfo, builtin_for
from netdoctor.lab.kubelet import process
from netdoctor.lab.kubelet.probes import run_probe
from netdoctor.lab.kubelet.serviceaccount import token_volume
from netdoctor.lab.kubelet.status import ContainerState, container_id, pod_status
from netdoctor.lab.looplag import LAG
from netdoctor.lab.net import pods as podnet
from netdoctor.lab.registry import parse_error

if TYPE_CHECKING:
    from netdoctor.lab.kubelet import Kubelet

PODS = resource("", "pods")
NODES = resource("", "nodes")
MAX_BACKOFF = 300.0
PULL_ERROR_SECONDS = 1.0
"""How long a failed pull shows ErrImagePull before the back-off (ImagePullBackOff)."""


async def cancel_until_done(task: asyncio.Task[Any], every: float = 1.0,
                            tries: int = 30) -> None:
    """Cancel ``task`` and wait for it, cancelling again while it keeps running.

    A single cancel can be lost (``asyncio.wait_for`` before Python 3.12 may swallow a
    cancellation that races with its inner future), and a real kubelet escalates to
    SIGKILL when SIGTERM is ignored; this is the in-process equivalent.
    """
    for _ in range(tries):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved, so a failed cleanup is not reported as unhandled


HELD_UP_MAX = 3
"""Probes in a row that may be asked again because the lab's loop stalled during them."""


def _held_up(asked: float, probe: Obj) -> bool:
    """Whether a probe asked at ``asked`` (monotonic) was held up by the lab itself: a stall
    of its loop ended since, or the answer came well after the probe's own timeout."""
    return LAG.held_up(asked, float(probe.get("timeoutSeconds", 1)))


class PodWorker:
    """Brings a pod up on its node and keeps its status true until stopped."""

    def __init__(self, kubelet: Kubelet, pod: Obj, node: NodeInfo) -> None:
        self.k, self.node = kubelet, node
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.host_network = bool(pod["spec"].get("hostNetwork"))
        self.netns = node.netns if self.host_network else f"{kubelet.lab.prefix}-p{self.uid[:8]}"
        self.pod_ip: str | None = node.internal_ip if self.host_network else None
        self.sandbox_ready = False
        self.started_at: str | None = None
        self.dir = kubelet.lab.state_dir / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.states = {
            c["name"]: ContainerState(c["name"], c["image"]) for c in pod["spec"]["containers"]
        }
        self.attempts: dict[str, asyncio.Task[int]] = {}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.killing: set[str] = set()
        self.task: asyncio.Task[None] | None = None

    # -- helpers -------------------------------------------------------------------------
    def pod(self) -> Obj | None:
        """The pod as stored now."""
        return self.k.store.find(PODS, self.namespace, self.name)

    def spec_of(self, name: str) -> Obj:
        """The spec of container ``name`` (the stored one: read it, do not change it).

        The probe loop asks for it five times a second per container; a deep copy of the
        whole pod each time was a tenth of the lab's CPU with a few dozen pods.
        """
        pod = self.k.store.peek(PODS, self.namespace, self.name) or {"spec": {"containers": []}}
        return next(c for c in pod["spec"]["containers"] if c["name"] == name)

    def log_file(self, name: str, attempt: int) -> Path:
        """Where attempt ``attempt`` of container ``name`` writes its output."""
        return self.dir / name / f"{attempt}.log"

    def event(
        self, reason: str, message: str, type_: str = "Normal", field_path: str | None = None
    ) -> None:
        """Record an Event about this pod."""
        pod = self.pod()
        if pod is not None:
            events.record(
                self.k.store,
                pod,
                reason,
                message,
                type_=type_,
                host=self.node.name,
                field_path=field_path,
            )

    def publish(self) -> None:
        """Write the pod status if it changed."""
        pod = self.pod()
        if pod is None or pod["metadata"]["uid"] != self.uid:
            return
        status = pod_status(
            pod,
            list(self.states.values()),
            sandbox_ready=self.sandbox_ready,
            pod_ip=self.pod_ip,
            host_ip=self.node.internal_ip,
            started_at=self.started_at,
        )
        if status != pod.get("status"):
            self.k.store.mutate(
                PODS,
                self.namespace,
                self.name,
                lambda o: o.__setitem__("status", status),
                subresource="status",
            )

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        """Sandbox, containers, then probes until cancelled."""
        self.started_at = now()
        self.publish()
        await self._sandbox()
        runners = [asyncio.create_task(self._container_loop(name)) for name in self.states]
        try:
            await self._probe_loop()
        finally:
            await asyncio.gather(*(cancel_until_done(r) for r in runners))

    async def stop(self) -> None:
        """Stop every container and tear the sandbox down."""
        if self.task is not None:
            await cancel_until_done(self.task)
        if not self.host_network:
            await podnet.delete_pod(self.netns)
            cni.release(self.node.root, self.uid)

    async def _sandbox(self) -> None:
        if self.host_network:
            self.sandbox_ready = True
            self.publish()
            return
        delay = 1.0
        while True:
            try:
                lab = self.k.lab
                net = cni.resolve(cni.node_cni(
                    self.node.root, lab.cni_conf_dir, lab.cni_bin_dir,
                    self.k.store.peek(NODES, "", self.node.name), self.node.ipam_range))
                ip = cni.allocate(self.node.root, net, self.uid)
                prefix = net.subnet.prefixlen
                if net.routed:
                    await podnet.add_routed_pod(self.node, self.netns, net.host_prefix, str(ip),
                                                str(net.gateway), net.mtu, self._resolv_conf())
                else:
                    await podnet.ensure_bridge(
                        self.node, net.bridge, f"{net.gateway}/{prefix}", net.mtu
                    )
                    await podnet.add_pod(
                        self.node,
                        self.netns,
                        net.bridge,
                        str(ip),
                        prefix,
                        str(net.gateway),
                        net.mtu,
                        self._resolv_conf(),
                    )
            except Exception as exc:  # any CNI failure is reported the same way
                cni.release(self.node.root, self.uid)
                sandbox = container_id(self.uid, "sandbox", 0).split("//")[1][:64]
                self.event(
                    "FailedCreatePodSandBox",
                    "Failed to create pod sandbox: rpc error: code = Unknown desc = failed "
                    f'to setup network for sandbox "{sandbox}": {exc}',
                    "Warning",
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.pod_ip, self.sandbox_ready = str(ip), True
            self.publish()
            return

    def _resolv_conf(self) -> str:
        pod = self.pod() or {"spec": {}}
        policy = pod["spec"].get("dnsPolicy", "ClusterFirst")
        lab = self.k.lab
        if policy == "Default" or (policy == "ClusterFirst" and self.host_network):
            return f"nameserver {lab.upstream_dns}\n"
        if policy == "None":
            cfg = pod["spec"].get("dnsConfig") or {}
            lines = [f"nameserver {n}" for n in cfg.get("nameservers") or []]
            if cfg.get("searches"):
                lines.append("search " + " ".join(cfg["searches"]))
            return "\n".join(lines) + "\n"
        domain = lab.cluster_domain
        return (
            f"search {self.namespace}.svc.{domain} svc.{domain} {domain}\n"
            f"nameserver {lab.dns_service_ip}\noptions ndots:5\n"
        )

    # -- containers ----------------------------------------------------------------------
    async def _container_loop(self, name: str) -> None:
        state, attempt = self.states[name], 0
        policy = (self.pod() or {"spec": {}})["spec"].get("restartPolicy", "Always")
        while True:
            spec = self.spec_of(name)
            if attempt == 0:
                await self._pull(name, spec["image"])
                self.event(
                    "Pulled",
                    f'Container image "{spec["image"]}" already present on machine',
                    field_path=f"spec.containers{{{name}}}",
                )
            started = now()
            state.container_id = container_id(self.uid, name, attempt)
            state.state = {"running": {"startedAt": started}}
            state.started = True
            state.ready = "readinessProbe" not in spec
            self.event(
                "Created", f"Created container {name}", field_path=f"spec.containers{{{name}}}"
            )
            self.event(
                "Started", f"Started container {name}", field_path=f"spec.containers{{{name}}}"
            )
            self.publish()
            code = await self._attempt(name, spec, attempt)
            terminated = {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": now(),
                "containerID": state.container_id,
            }
            state.ready, state.started = False, False
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                state.state = {"terminated": terminated}
                self.publish()
                return
            state.last_state = {"terminated": terminated}
            delay = min(10.0 * 2 ** min(state.restart_count, 8), MAX_BACKOFF)
            pod_ref = f"{self.name}_{self.namespace}({self.uid})"
            state.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(delay)}s restarting failed container={name} "
                    f"pod={pod_ref}",
                }
            }
            self.event(
                "BackOff",
                f"Back-off restarting failed container {name} in pod {pod_ref}",
                "Warning",
                field_path=f"spec.containers{{{name}}}",
            )
            self.publish()
            await asyncio.sleep(delay * self.k.backoff_scale)
            attempt += 1
            state.restart_count += 1

    async def _pull(self, name: str, image: str) -> None:
        """Return once ``image`` is on the node; until then show what a kubelet shows."""
        state, where = self.states[name], f"spec.containers{{{name}}}"
        bad = parse_error(image)
        if bad is not None:
            message = f'Failed to apply default image tag "{image}": {bad}'
            state.state = {"waiting": {"reason": "InvalidImageName", "message": message}}
            self.event("InspectFailed", message, "Warning", field_path=where)
            self.event("Failed", "Error: InvalidImageName", "Warning", field_path=where)
            self.publish()
            await asyncio.Event().wait()  # a spec that cannot change: wait for deletion
        failures = 0
        while (error := self.k.registry.pull_error(image)) is not None:
            self.event("Pulling", f'Pulling image "{image}"', field_path=where)
            state.state = {"waiting": {"reason": "ErrImagePull", "message": error}}
            self.event("Failed", f'Failed to pull image "{image}": {error}', "Warning",
                       field_path=where)
            self.event("Failed", "Error: ErrImagePull", "Warning", field_path=where)
            self.publish()
            await asyncio.sleep(PULL_ERROR_SECONDS)
            state.state = {"waiting": {"reason": "ImagePullBackOff",
                                       "message": f'Back-off pulling image "{image}"'}}
            self.event("BackOff", f'Back-off pulling image "{image}"', field_path=where)
            self.event("Failed", "Error: ImagePullBackOff", "Warning", field_path=where)
            self.publish()
            await asyncio.sleep(min(10.0 * 2 ** failures, MAX_BACKOFF) * self.k.backoff_scale)
            failures += 1

    async def _attempt(self, name: str, spec: Obj, attempt: int) -> int:
        task = asyncio.create_task(self._execute(name, spec, attempt))
        self.attempts[name] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if name in self.killing and not task.cancelled() and task.done():
                return task.result()
            await cancel_until_done(task)
            raise
        finally:
            self.attempts.pop(name, None)
            self.killing.discard(name)

    async def _execute(self, name: str, spec: Obj, attempt: int) -> int:
        log_file = self.log_file(name, attempt)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        impl = builtin_for(spec["image"])
        pod = self.pod() or {}
        if impl is not None:

            def log(line: str) -> None:
                with log_file.open("a") as f:
                    f.write(line.rstrip("\n") + "\n")

            ctx = ContainerContext(
                pod=pod,
                container=spec,
                node=self.node,
                netns=self.netns,
                pod_ip=self.pod_ip or "",
                store=self.k.store,
                lab=self.k.lab,
                log=log,
            )
            try:
                return await impl.run(ctx)
            except asyncio.CancelledError:
                if name in self.killing:
                    return 137
                raise
            except Exception as exc:  # a crash of the component is an exit of the container
                log(f"panic: {exc!r}")
                return 2
        argv = self.argv(spec, pod)
        proc = await process.spawn(argv, log_file)
        self.procs[name] = proc
        try:
            await proc.wait()
        except asyncio.CancelledError:
            grace = min(float(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30)), 2.0)
            code = await process.terminate(proc, grace)
            if name in self.killing:
                return code
            raise
        finally:
            self.procs.pop(name, None)
        code = proc.returncode if proc.returncode is not None else 1
        return 128 - code if code < 0 else code

    def _env(self, spec: Obj, pod: Obj) -> dict[str, str]:
        env = process.container_env(pod, spec, self.node, self.k.lab)
        image = self.k.registry.config(spec["image"])
        if image is not None and not any(e["name"] == "PATH" for e in spec.get("env") or []):
            env["PATH"] = image.path
        return env

    def _workdir(self, spec: Obj) -> str | None:
        image = self.k.registry.config(spec["image"])
        return spec.get("workingDir") or (image.workdir if image else None)

    def exec_argv(self, spec: Obj, pod: Obj, command: list[str]
                  ) -> tuple[list[str], dict[str, str] | None]:
        """The host argv (and environment, ``None`` for the daemon's) that runs ``command`` in
        the running container ``spec``: joining its process's namespaces when it has one
        (a lab container process is the exec of ``ip netns exec``, ``unshare`` and ``env``),
        else building them as a start does."""
        proc = self.procs.get(spec["name"])
        if proc is not None and proc.returncode is None and \
                process.runs(proc.pid, process.command_of(spec)):
            return (process.join_argv(proc.pid, command, self._workdir(spec)),
                    self._env(spec, pod))
        return self.argv(spec, pod, command), None

    def argv(self, spec: Obj, pod: Obj, command: list[str] | None = None) -> list[str]:
        """The host argv that runs ``command`` (default: the container's own) in the container."""
        env = self._env(spec, pod)
        mounts = process.mounts_for(pod, spec, self.node, self.dir / "volumes")
        token = token_volume(pod, self.k.store, self.dir / "volumes" / "kube-api-access",
                             self.k.lab.ca_file, self.k.token_issuer)
        return process.launch_argv(
            self.netns,
            env,
            command or process.command_of(spec),
            [*mounts, *([token] if token else [])],
            self.k.lab.state_dir / "mountpoints",
            self._workdir(spec),
        )

    def kill(self, name: str) -> None:
        """Kill the running attempt of container ``name`` (a failed liveness probe)."""
        task = self.attempts.get(name)
        if task is not None:
            self.killing.add(name)
            task.cancel()

    # -- probes --------------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        if not any(c.get("readinessProbe") or c.get("livenessProbe")
                   for c in (self.k.store.peek(PODS, self.namespace, self.name) or {})
                   .get("spec", {}).get("containers") or ()):
            await asyncio.Event().wait()  # no probes (containers are immutable): wait to stop
        due: dict[tuple[str, str], float] = {}
        failures: dict[tuple[str, str], int] = {}
        held: dict[tuple[str, str], int] = {}
        scale = self.k.probe_scale
        while True:
            changed = False
            for name, state in self.states.items():
                if not state.running:
                    continue
                spec = self.spec_of(name)
                started = time.monotonic()
                for kind in ("readinessProbe", "livenessProbe"):
                    probe = spec.get(kind)
                    key = (name, kind)
                    if not probe:
                        continue
                    if key not in due:
                        due[key] = started + probe.get("initialDelaySeconds", 0) * scale
                    if time.monotonic() < due[key]:
                        continue
                    due[key] = time.monotonic() + max(probe["periodSeconds"] * scale, 0.3)
                    asked = time.monotonic()
                    error = await self._probe(probe, spec)
                    if error is not None and held.get(key, 0) < HELD_UP_MAX \
                            and _held_up(asked, probe):
                        # The lab's own event loop stalled while this probe waited: the
                        # kubelet and the container share it here, as they never do on a
                        # node, so the timeout says nothing about the container. Ask again.
                        held[key] = held.get(key, 0) + 1
                        due[key] = time.monotonic()
                        continue
                    held.pop(key, None)
                    changed |= self._probe_result(name, kind, probe, error, failures)
            if changed:
                self.publish()
            for key in list(due):
                if not self.states[key[0]].running:
                    due.pop(key)
                    failures.pop(key, None)
            await asyncio.sleep(0.2)

    async def _probe(self, probe: Obj, spec: Obj) -> str | None:
        if "exec" in probe:
            argv, env = self.exec_argv(spec, self.pod() or {}, list(probe["exec"]["command"]))
            from netdoctor.lab.sh import arun

            try:
                res = await arun(argv, timeout=float(probe.get("timeoutSeconds", 1)), check=False,
                                 env=env)
            except TimeoutError:
                return "command timed out"
            return (
                None if res.code == 0 else (res.stdout + res.stderr).strip() or f"exit {res.code}"
            )
        return await run_probe(probe, spec, self.node.netns, self.pod_ip or "")

    def _probe_result(
        self,
        name: str,
        kind: str,
        probe: Obj,
        error: str | None,
        failures: dict[tuple[str, str], int],
    ) -> bool:
        key, state = (name, kind), self.states[name]
        label = "Readiness" if kind == "readinessProbe" else "Liveness"
        if error is None:
            failures[key] = 0
            if kind == "readinessProbe" and not state.ready:
                state.ready = True
                return True
            return False
        failures[key] = failures.get(key, 0) + 1
        self.event(
            "Unhealthy",
            f"{label} probe failed: {error}",
            "Warning",
            field_path=f"spec.containers{{{name}}}",
        )
        if failures[key] < int(probe.get("failureThreshold", 3)):
            return False
        if kind == "livenessProbe":
            self.event(
                "Killing",
                f"Container {name} failed liveness probe, will be restarted",
                field_path=f"spec.containers{{{name}}}",
            )
            failures[key] = 0
            self.kill(name)
            return False
        if state.ready:
            state.ready = False
            return True
        return False
