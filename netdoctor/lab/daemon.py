"""The lab process: network, API server, controllers and kubelet on one event loop.

Started by ``netdoctor lab up`` in the background; stopped by SIGTERM (``lab down``),
after which it removes everything it made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from netdoctor.lab import certs, faults, nsock, profiles, sh
from netdoctor.lab.api.apifaults import API_FAULTS, ApiFaultState
from netdoctor.lab.api.auth import Access, issue_token
from netdoctor.lab.api.defaults import Defaulter
from netdoctor.lab.api.podsecurity import PodSecurity
from netdoctor.lab.api.rbac import Authorizer, bootstrap_policy
from netdoctor.lab.api.requestcount import REQUESTS
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.server import make_app, serve
from netdoctor.lab.api.store import Obj, Store
from netdoctor.lab.components import load_builtins
from netdoctor.lab.containers import LabInfo, NodeInfo
from netdoctor.lab.controllers import ControllerManager, pod_ready
from netdoctor.lab.kubelet import Kubelet
from netdoctor.lab.kubelet.runtime import LabRuntime
from netdoctor.lab.looplag import LAG
from netdoctor.lab.net import external, topology
from netdoctor.lab.nodeagent import NodeAgents
from netdoctor.lab.profiles import scale_dns
from netdoctor.lab.sh import arun
from netdoctor.lab.state import CONTROL_SOCKET, LabState, prefix_for

log = logging.getLogger("netdoctor.lab")
PODS = resource("", "pods")
STARTUP_DEADLINE = 90.0
AUDIT_FILE = "audit.jsonl"
"""Every RBAC decision on a subject outside system:masters, one JSON object a line."""


def node_names(workers: int) -> list[str]:
    """``control-plane``, ``worker-1`` ... ``worker-N``."""
    return ["control-plane", *(f"worker-{i}" for i in range(1, workers + 1))]


def lab_info(state_dir: Path, workers: int, profile: str = profiles.DEFAULT) -> LabInfo:
    """The lab's fixed layout for ``workers`` workers of ``profile``."""
    prof = profiles.get(profile)
    prefix = prefix_for(state_dir)
    nodes = {}
    for i, name in enumerate(node_names(workers)):
        short = "cp" if i == 0 else f"w{i}"
        nodes[name] = NodeInfo(name=name, netns=f"{prefix}-{short}",
                               internal_ip=topology.node_ip(i),
                               pod_cidr=prof.node_pod_cidr(i),
                               root=state_dir / "nodes" / name, index=i,
                               ipam_range=prof.ipam_range(i) if prof.ipam_range else "")
    return LabInfo(prefix=prefix, nodes=nodes, router_netns=topology.router_netns(prefix),
                   underlay_bridge=topology.UNDERLAY_BRIDGE, ca_file=state_dir / "ca.crt",
                   state_dir=state_dir, profile=prof.name, cluster_cidr=prof.cluster_cidr,
                   service_cidr=prof.service_cidr, api_service_ip=prof.api_service_ip,
                   dns_service_ip=prof.dns_service_ip, cni_conf_dir=prof.cni_conf_dir,
                   cni_bin_dir=prof.cni_bin_dir)


def _pods(store: Store, sel: profiles.Pods) -> list[Obj]:
    return [p for p in store.items(PODS, sel.namespace) if sel.matches(p)]


def system_ready(store: Store, lab: LabInfo, with_dns: bool, dns_replicas: int = 1) -> bool:
    """The per-node agents Ready on every node (and ``dns_replicas`` DNS pods Ready when
    asked)."""
    prof, n = profiles.get(lab.profile), len(lab.nodes)
    for sel in prof.per_node:
        if sum(pod_ready(p) for p in _pods(store, sel)) < n:
            return False
    return not with_dns or sum(pod_ready(p) for p in _pods(store, prof.dns)) >= dns_replicas


def _crashed(pod: Obj) -> bool:
    """A container exited with an error of its own (a kill, exit 137, does not count)."""
    for c in pod.get("status", {}).get("containerStatuses") or []:
        last = (c.get("lastState") or {}).get("terminated") or {}
        if last.get("exitCode") not in (None, 0, 137):
            return True
    return False


def _restarts(pod: Obj) -> int:
    return max((int(c.get("restartCount") or 0) for c in
                pod.get("status", {}).get("containerStatuses") or []), default=0)


def settled_check(name: str, prof: profiles.Profile) -> Callable[[Store], bool] | None:
    """What must be visible in the API before fault ``name`` counts as having struck."""
    agent = prof.per_node[0] if prof.cni_daemonset and prof.per_node else None
    if name == "flannel-missing" and agent is not None:
        return lambda s: not _pods(s, agent)
    if name == "coredns-crashloop":
        # It exits on its own (no API), or its liveness probe keeps killing it (the node
        # cannot reach a pod that got an address from the wrong range).
        return lambda s: any(_crashed(p) or _restarts(p) >= 2 for p in _pods(s, prof.dns))
    kube_proxy = prof.kube_proxy
    if name == "kube-proxy-crashloop" and kube_proxy is not None:
        return lambda s: any(_crashed(p) for p in _pods(s, kube_proxy))
    return None


async def wait_for(check: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll ``check`` until true; raise naming ``what`` after ``deadline`` seconds."""
    async def ask() -> bool:
        return check()
    await wait_async(ask, deadline, what)


async def agents_settled(lab: LabInfo) -> bool:
    """Every node has its CNI agent's files, the Service proxy's first nat chain and, where
    the agent routes the other nodes' pods, those routes (a scenario that stops the agent
    must not catch it before it has learnt every peer)."""
    prof = profiles.get(lab.profile)
    for node in lab.nodes.values():
        if not all((node.root / f).exists() for f in prof.settled_files):
            return False
    checks = await asyncio.gather(*(
        arun(["ip", "netns", "exec", n.netns, "iptables-nft", "-w", "-t", "nat", "-S",
              prof.service_chain], check=False) for n in lab.nodes.values()))
    if not all(c.code == 0 for c in checks):
        return False
    return not prof.peer_routes or all(await asyncio.gather(*(
        topology.routes_to(n, [m.pod_range for m in lab.nodes.values() if m is not n])
        for n in lab.nodes.values())))


async def wait_async(check: Callable[[], Awaitable[bool]], deadline: float, what: str) -> None:
    """Poll an async ``check`` (one that runs commands) until true, within ``deadline``."""
    end = time.monotonic() + deadline
    while not await check():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {deadline:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


class Lab:
    """One running lab."""

    def __init__(self, state: LabState, images: tuple[str, ...] = (),
                 pod_security: str = "privileged") -> None:
        self.state = state
        self.pod_security = pod_security
        self.dir = Path(state.state_dir)
        self.profile = profiles.get(state.profile)
        self.info = lab_info(self.dir, state.workers, state.profile)
        self.store = Store()
        self.store.admission.append(Defaulter(self.store, self.info.service_cidr,
                                              (self.info.api_service_ip,
                                               self.info.dns_service_ip)))
        self.kubelet = Kubelet(self.store, self.info)
        self.kubelet.registry.add(images)
        self.agents = NodeAgents(self.store, self.info, self.profile.node_tasks)
        self.ctx = faults.LabContext(self.store, self.info, self._kill_containers, self.agents,
                                     pod_netns=self._pod_netns)
        self.api_faults = ApiFaultState()
        self.requests: Counter[str] = Counter()
        """API requests served, by ``verb resource`` (``lab status --json``)."""
        self.tasks: list[asyncio.Task[None]] = []
        self.lag = LAG
        self.runners: list[web.AppRunner] = []
        self.web: external.WebServers | None = None
        self.stop = asyncio.Event()

    def _kill_containers(self, sel: profiles.Pods) -> int:
        killed = 0
        for worker in list(self.kubelet.workers.values()):
            pod = worker.pod()
            if pod is not None and sel.matches(pod):
                for name in worker.states:
                    worker.kill(name)
                    killed += 1
        return killed

    def _pod_netns(self, pod: Obj) -> str | None:
        worker = self.kubelet.workers.get(pod["metadata"].get("uid", ""))
        return worker.netns if worker is not None and worker.sandbox_ready else None

    async def start(self) -> None:
        """Build the network, serve the API, seed the cluster, apply the scenario."""
        load_builtins()
        lab_certs = certs.make(self.dir, (self.info.api_service_ip,))
        router = await topology.create_router(self.info.prefix, self.dir)
        dirs = (self.info.cni_conf_dir, self.info.cni_bin_dir)
        await asyncio.gather(*(topology.create_node(router, n, dirs, self.profile.cni_plugins)
                               for n in self.info.nodes.values()))
        self.web = await external.start_web(router.netns, lab_certs.web_cert)
        scenario = faults.scenario(self.state.scenario, self.profile)
        self._seed(scenario.coredns_node)
        # The system namespaces are exempt, as clusters that enforce a default exempt them.
        system = [n["metadata"]["name"] for n in self.store.items(resource("", "namespaces"))
                  if n["metadata"]["name"] != "default"]
        self.store.admission.append(PodSecurity(self.store, self.pod_security, exempt=system))
        for step in scenario.boot:
            await self.inject(step.fault, step.node, peer=step.peer)
        await self._serve(lab_certs)
        self.tasks += [asyncio.create_task(self.lag.watch()),
                       asyncio.create_task(ControllerManager(self.store).run()),
                       asyncio.create_task(self.kubelet.run())]
        self.agents.start_all()
        await wait_for(lambda: system_ready(self.store, self.info, not scenario.boot,
                                            self.state.dns_replicas),
                       STARTUP_DEADLINE, "the system pods to become Ready")
        if scenario.steps:
            # A Ready agent pod has not necessarily done its first work yet; a fault that
            # strikes a cluster that has been up for a while must find it done.
            await wait_async(lambda: agents_settled(self.info), STARTUP_DEADLINE,
                             "Flannel's node files and kube-proxy's first rules on every node")
        for step in scenario.steps:
            await self.inject(step.fault, step.node, peer=step.peer)
        for name in dict.fromkeys(s.fault for s in (*scenario.boot, *scenario.steps)):
            await self._settled(name)
        if scenario.coredns_node and scenario.steps:
            # CoreDNS checks the API only when it starts; in the incident it restarted after
            # the network broke (its liveness probe cannot reach it). Restart it once the
            # faults above have fully struck (a stopping Flannel agent still forwards for a
            # moment): whether it then crashes follows from the network alone.
            self._kill_containers(self.profile.dns)
            await self._settled("coredns-crashloop")
        self.state.phase = "ready"
        self.state.save()

    async def _settled(self, name: str) -> None:
        """Wait until fault ``name`` shows in the API (when it has a visible mark)."""
        check = settled_check(name, self.profile)
        if check is None:
            return
        try:
            await wait_for(functools.partial(check, self.store), STARTUP_DEADLINE,
                           f"fault {name} to show")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; system pods: {self._describe()}") from None

    def _describe(self) -> str:
        """One line per system pod: where it runs and what its containers do."""
        out = []
        for p in self.store.items(PODS):
            if p["metadata"]["namespace"] == "default":
                continue
            states = [f"{c['name']}:{next(iter(c.get('state') or {'?': 0}))}"
                      f"/restarts={c.get('restartCount')}/last="
                      f"{(c.get('lastState') or {}).get('terminated', {}).get('exitCode')}"
                      for c in p.get("status", {}).get("containerStatuses") or []]
            out.append(f"{p['metadata']['name']}@{p['spec'].get('nodeName')} "
                       f"{p.get('status', {}).get('phase')} ip={p.get('status', {}).get('podIP')} "
                       f"{' '.join(states)}")
        return "; ".join(out)

    def _seed(self, coredns_node: str | None) -> None:
        dns = self.profile.dns
        seed = self.profile.seed(self.info)
        if self.state.dns_replicas != 1:
            scale_dns(seed, dns, self.state.dns_replicas)
        for group, plural, obj in [*seed, *bootstrap_policy()]:
            labels = obj["metadata"].get("labels") or {}
            if coredns_node and plural == "deployments" and \
                    obj["metadata"].get("namespace") == dns.namespace and \
                    labels.get(dns.key) == dns.value:
                obj["spec"]["template"]["spec"].setdefault("nodeSelector", {})[
                    "kubernetes.io/hostname"] = coredns_node
            for ref in obj["metadata"].get("ownerReferences") or []:
                # A mirror pod belongs to its Node, whose uid exists only once it is stored.
                if ref.get("kind") == "Node" and not ref.get("uid"):
                    ref["uid"] = self.store.get(resource("", "nodes"), "", ref["name"])[
                        "metadata"]["uid"]
            self.store.create(resource(group, plural), obj)

    async def _serve(self, lab_certs: certs.LabCerts) -> None:
        admin, viewer = certs.new_token(), certs.new_token()
        tokens = {admin: Access.admin(),
                  viewer: Access("netdoctor-viewer", allowed_verbs=frozenset({"get", "list",
                                                                               "watch"}))}
        self.kubelet.token_issuer = lambda ns, name: str(issue_token(
            tokens, self.store, ns, name, None)["status"]["token"])
        app = make_app(self.store, LabRuntime(self.kubelet), tokens,
                       Authorizer(self.store, audit=self.dir / AUDIT_FILE),
                       faults=self.api_faults)
        self.requests = app[REQUESTS]
        cp = next(n for n in self.info.nodes.values() if n.index == 0)
        local = nsock.listener_in(None, "127.0.0.1", 0)
        inner = nsock.listener_in(cp.netns, self.info.apiserver_ip, self.info.apiserver_port)
        self.runners.append(await serve(app, [local, inner], lab_certs.api_context))
        self.state.api_port = local.getsockname()[1]
        server = f"https://127.0.0.1:{self.state.api_port}"
        certs.write_kubeconfig(self.dir / "kubeconfig", server, lab_certs.ca_file, admin, "admin")
        certs.write_kubeconfig(self.dir / "kubeconfig-viewer", server, lab_certs.ca_file, viewer,
                               "viewer")
        self.state.save()
        control = web.Application()
        control.router.add_get("/status", self._status)
        control.router.add_post("/faults/{name}", self._fault)
        control.router.add_delete("/faults/{name}", self._fault)
        control.router.add_post("/shutdown", self._shutdown)
        runner = web.AppRunner(control, access_log=None)
        await runner.setup()
        await web.UnixSite(runner, str(self.dir / CONTROL_SOCKET)).start()
        self.runners.append(runner)

    async def inject(self, name: str, node: str | None, clear: bool = False,
                     peer: str | None = None) -> list[tuple[str | None, str | None]]:
        """Inject (or clear) fault ``name`` on ``node`` (default targets when None); a pair
        fault's other node is ``peer`` (its default when None). A clear without a node
        clears what is in force of that fault, wherever it was injected.

        Returns:
            (node, peer) of each target; peer ``None`` unless a pair fault.
        """
        fault = faults.FAULTS[name]
        reason = self.profile.supports(name)
        if reason is not None:
            raise faults.FaultNotApplicable(f"fault {name} does not apply to profile "
                                            f"{self.profile.name}: {reason}")
        if peer is not None and not fault.pair:
            raise ValueError(f"{name} is not a pair fault: --peer applies to pair faults")
        active = [(f["node"], f.get("peer")) for f in self.state.faults if f["name"] == name]
        if clear and node is None and peer is None and active:
            pairs = active
        else:
            other = (peer or fault.default_peer) if fault.pair else None
            pairs = [(t, other) for t in fault.targets(self.ctx, node)]
        for target, other in pairs:
            ctx = dataclasses.replace(self.ctx, peer=other)
            await (fault.clear if clear else fault.inject)(ctx, target)
            entry: dict[str, str | None] = {"name": name, "node": target}
            if fault.pair:
                entry["peer"] = other
            if clear:
                self.state.faults = [f for f in self.state.faults if f != entry]
            elif entry not in self.state.faults:
                self.state.faults.append(entry)
        self.state.save()
        return pairs

    def api_fault(self, name: str, seconds: float | None, clear: bool = False) -> None:
        """Put the API server's fault ``name`` in force (for ``seconds``), or clear it."""
        entry = {"name": name, "node": None}
        self.state.faults = [f for f in self.state.faults if f["name"] not in API_FAULTS]
        if clear:
            self.api_faults.clear()
        else:
            self.api_faults.set(name, seconds)
            self.state.faults.append(entry)
            if seconds:
                asyncio.get_running_loop().call_later(seconds, self._api_fault_over, name)
        self.state.save()

    def _api_fault_over(self, name: str) -> None:
        if self.api_faults.active() != name:
            self.state.faults = [f for f in self.state.faults if f["name"] != name]
            self.state.save()

    async def _fault(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.json() if request.can_read_body else {}
        if name in API_FAULTS:
            seconds = body.get("seconds")
            if body.get("node") is not None:
                return web.json_response({"error": f"{name} is a fault of the API server, "
                                                   "not of a node"}, status=400)
            if seconds is not None and not (isinstance(seconds, int | float) and seconds > 0):
                return web.json_response({"error": f"--seconds must be > 0, got {seconds!r}"},
                                         status=400)
            self.api_fault(name, seconds, clear=request.method == "DELETE")
            return web.json_response({"fault": name, "nodes": [None], "seconds": seconds})
        if name not in faults.FAULTS:
            return web.json_response({"error": f"unknown fault {name!r}"}, status=404)
        node, peer = body.get("node"), body.get("peer")
        for what, value in (("node", node), ("peer", peer)):
            if value is not None and value not in self.info.nodes:
                return web.json_response({"error": f"unknown {what} {value!r}; nodes: "
                                                   f"{', '.join(self.info.nodes)}"}, status=404)
        try:
            pairs = await self.inject(name, node, clear=request.method == "DELETE", peer=peer)
        except faults.FaultNotApplicable as exc:
            return web.json_response({"error": str(exc)}, status=409)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except Exception as exc:  # reported to the CLI, the lab keeps running
            return web.json_response({"error": str(exc)}, status=500)
        peers = sorted({p for _, p in pairs if p is not None})
        return web.json_response({"fault": name, "nodes": [t for t, _ in pairs],
                                  "peer": ", ".join(peers) or None})

    async def _status(self, request: web.Request) -> web.Response:
        pods = [{"namespace": p["metadata"]["namespace"], "name": p["metadata"]["name"],
                 "node": p["spec"].get("nodeName"), "phase": p.get("status", {}).get("phase"),
                 "ready": pod_ready(p), "ip": p.get("status", {}).get("podIP")}
                for p in self.store.items(PODS)]
        return web.json_response({"phase": self.state.phase, "prefix": self.info.prefix,
                                  "profile": self.profile.name,
                                  "dns_replicas": self.state.dns_replicas,
                                  "nodes": {n: {"netns": i.netns, "ip": i.internal_ip,
                                                "podCIDR": i.pod_cidr, "root": str(i.root)}
                                            for n, i in self.info.nodes.items()},
                                  "faults": self.state.faults, "pods": pods,
                                  "requests": dict(sorted(self.requests.items())),
                                  "stalls": self.lag.as_json()})

    async def _shutdown(self, request: web.Request) -> web.Response:
        self.stop.set()
        return web.json_response({"stopping": True})

    async def close(self) -> None:
        """Stop everything and remove what the lab made on this machine."""
        self.api_faults.clear()  # held requests must not hold up the server's shutdown
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.agents.shutdown(), 15)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.kubelet.shutdown(), 15)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for runner in self.runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        if self.web is not None:
            with contextlib.suppress(Exception):
                await self.web.stop()
        await topology.destroy(self.info.prefix, self.dir)


async def amain(state: LabState, images: tuple[str, ...] = (),
                pod_security: str = "privileged") -> int:
    """Run the lab until SIGTERM/SIGINT or a shutdown request."""
    lab = Lab(state, images, pod_security)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lab.stop.set)
    code = 0
    try:
        starting = asyncio.create_task(lab.start())
        stopped = asyncio.create_task(lab.stop.wait())
        done, _ = await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()
            await lab.stop.wait()
        else:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    except Exception as exc:
        state.phase, state.error = "failed", f"{type(exc).__name__}: {exc}"
        state.save()
        traceback.print_exc()
        code = 1
    finally:
        if state.phase != "failed":
            state.phase = "stopping"
            state.save()
        await lab.close()
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the background lab process."""
    parser = argparse.ArgumentParser(prog="netdoctor-lab-daemon")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenario", default="healthy")
    parser.add_argument("--image", action="append", default=[])
    parser.add_argument("--pod-security", default="privileged",
                        choices=("privileged", "baseline", "restricted"))
    parser.add_argument("--profile", default=profiles.DEFAULT)
    parser.add_argument("--dns-replicas", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state = LabState(state_dir=str(args.state_dir.resolve()), prefix=prefix_for(args.state_dir),
                     workers=args.workers, scenario=args.scenario, pid=os.getpid(),
                     profile=args.profile, dns_replicas=args.dns_replicas)
    state.save()
    sh.use_pidfd_watcher()
    return asyncio.run(amain(state, tuple(args.image), args.pod_security))


if __name__ == "__main__":
    sys.exit(main())
