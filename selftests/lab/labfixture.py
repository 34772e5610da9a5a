"""A whole lab brought up through the real CLI, with probe pods, for the end-to-end tier.

``LabCluster`` drives ``python -m netdoctor.cli lab ...`` and kubectl (own discovery
cache per lab, a deadline on every call). ``start_cluster`` adds the probe pods: a
netshoot pod and a hostNetwork pod pinned to every node, a busybox pod, and an agnhost
netexec ``echo`` Deployment (2 replicas on different workers) behind a NodePort Service.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
NETSHOOT = "nicolaka/netshoot:v0.13"
BUSYBOX = "busybox:1.36.1"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
ECHO_NODE_PORT = 30080
NODES = ("control-plane", "worker-1", "worker-2")
UP_TIMEOUT = 120.0
T = TypeVar("T")

Obj = dict[str, Any]


def lab_unavailable() -> str | None:
    """Why this machine cannot host a lab (one line), or ``None``."""
    from netdoctor.lab.cli import LabError, preflight

    try:
        preflight()
    except LabError as exc:
        return " ".join(str(exc).split())
    for tool in ("kubectl",):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                          check=False).returncode != 0:
            return f"{tool} is not installed"
    return None


def wait_until(check: Callable[[], T | None], deadline: float, what: str,
               interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + deadline
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")
        time.sleep(interval)


def loss_percent(ping_output: str) -> float:
    """The packet loss of iputils or busybox ping output, in percent."""
    m = re.search(r"([\d.]+)% packet loss", ping_output)
    if m is None:
        raise AssertionError(f"no packet loss figure in ping output: {ping_output!r}")
    return float(m.group(1))


def cli(state_dir: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``netdoctor lab ARGS --state-dir STATE_DIR`` through the real CLI."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Options go right after the subcommand: ``lab exec NODE ...`` takes the rest verbatim.
    argv = [sys.executable, "-m", "netdoctor.cli", "lab", args[0], "--state-dir", str(state_dir),
            *args[1:]]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=REPO)


@dataclass
class LabCluster:
    """A running lab and helpers to drive it."""

    state_dir: Path
    kubeconfig: Path = field(init=False)
    prefix: str = ""

    def __post_init__(self) -> None:
        self.kubeconfig = self.state_dir / "kubeconfig"

    # -- lifecycle ---------------------------------------------------------------
    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """``lab up``; raises with the CLI's message when it fails."""
        done = cli(self.state_dir, "up", *extra, timeout=UP_TIMEOUT)
        if done.returncode != 0:
            raise AssertionError(f"lab up failed ({done.returncode}): {done.stderr.strip()}")
        assert f"export KUBECONFIG={self.kubeconfig}" in done.stdout
        self.prefix = self.status()["prefix"]
        return done

    def down(self) -> subprocess.CompletedProcess[str]:
        """``lab down`` (idempotent)."""
        return cli(self.state_dir, "down", timeout=60)

    def status(self) -> Obj:
        """``lab status --json``."""
        done = cli(self.state_dir, "status", "--json", timeout=30)
        assert done.returncode == 0, done.stderr
        data: Obj = json.loads(done.stdout)
        return data

    def fault(self, action: str, name: str, node: str | None = None) -> str:
        """``lab fault inject|clear NAME [--node NODE]``; returns the CLI's line."""
        args = ["fault", action, name, *(["--node", node] if node else [])]
        done = cli(self.state_dir, *args, timeout=90)
        assert done.returncode == 0, f"lab {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout.strip()

    # -- kubectl -----------------------------------------------------------------
    def kubectl(self, *args: str, check: bool = True, timeout: float = 20.0,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl against this lab with its own discovery cache; ``timeout`` per call."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.state_dir),
               "KUBECONFIG": str(self.kubeconfig),
               "KUBECACHEDIR": str(self.state_dir / "kube-cache")}
        try:
            done = subprocess.run(["kubectl", *args], env=env, input=stdin, capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"kubectl {' '.join(args)} took over {timeout:.0f}s") from exc
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} -> {done.returncode}: "
                                 f"{done.stderr.strip()}")
        return done

    def get(self, *args: str) -> Obj:
        """``kubectl get ARGS -o json`` as a dict."""
        data: Obj = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return data

    def exec(self, pod: str, *cmd: str, timeout: float = 20.0,
             namespace: str = "default") -> subprocess.CompletedProcess[str]:
        """``kubectl exec POD -- CMD``; never raises on the command's exit code."""
        return self.kubectl("exec", "-n", namespace, pod, "--", *cmd, check=False,
                            timeout=timeout)

    def apply(self, manifest: list[Obj]) -> None:
        """``kubectl apply --validate=false`` of a list of objects."""
        self.kubectl("apply", "--validate=false", "-f", "-",
                     stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifest}))

    def pod(self, name: str, namespace: str = "default") -> Obj:
        """One pod as JSON."""
        return self.get("pod", "-n", namespace, name)

    def pod_ip(self, name: str, namespace: str = "default") -> str:
        """A pod's IP (fails when it has none)."""
        ip = self.pod(name, namespace).get("status", {}).get("podIP")
        assert ip, f"pod {namespace}/{name} has no IP"
        return str(ip)

    def pods(self, namespace: str, selector: str) -> list[Obj]:
        """Pods matching a label selector."""
        items: list[Obj] = self.get("pods", "-n", namespace, "-l", selector)["items"]
        return items

    def wait_ready(self, names: list[str], namespace: str = "default",
                   deadline: float = 60.0) -> None:
        """Wait until every named pod is Ready."""
        def ready() -> bool:
            items = {p["metadata"]["name"]: p for p in
                     self.get("pods", "-n", namespace)["items"]}
            return all(n in items and pod_is_ready(items[n]) for n in names)
        wait_until(ready, deadline, f"pods {', '.join(names)} in {namespace} to be Ready")

    # -- traffic -----------------------------------------------------------------
    def ping(self, pod: str, ip: str, count: int = 2) -> float:
        """Loss (percent) of a ping from ``pod`` to ``ip``."""
        done = self.exec(pod, "ping", "-c", str(count), "-i", "0.2", "-W", "1", ip)
        return loss_percent(done.stdout)

    def http(self, pod: str, url: str, timeout: float = 2.0) -> tuple[int, str]:
        """(curl exit code, body) of ``curl URL`` from ``pod``."""
        done = self.exec(pod, "curl", "-sS", "-m", str(timeout), url, timeout=timeout + 15)
        return done.returncode, done.stdout

    def dig(self, pod: str, name: str, server: str = "10.96.0.10") -> tuple[int, str]:
        """(dig exit code, short answer) from ``pod``, one try of 1 s."""
        done = self.exec(pod, "dig", "+short", "+time=1", "+tries=1", f"@{server}", name)
        return done.returncode, done.stdout.strip()


def pod_is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def probe_name(node: str) -> str:
    """The netshoot probe pod on ``node``."""
    return f"probe-{node}"


def hostnet_name(node: str) -> str:
    """The hostNetwork probe pod on ``node``."""
    return f"hostnet-{node}"


def _pinned_pod(name: str, node: str, image: str, host_network: bool = False) -> Obj:
    spec: Obj = {"nodeName": node, "tolerations": [{"operator": "Exists"}],
                 "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "shell", "image": image,
                                 "command": ["sleep", "infinity"]}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"role": "probe"}},
            "spec": spec}


def echo_objects(name: str = "echo", node_port: int | None = ECHO_NODE_PORT) -> list[Obj]:
    """An agnhost netexec Deployment (2 replicas, one per worker) and its Service."""
    labels = {"app": name}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": name, "namespace": "default"},
              "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                       "template": {"metadata": {"labels": labels}, "spec": {
                           "affinity": {"podAntiAffinity": {
                               "requiredDuringSchedulingIgnoredDuringExecution": [{
                                   "labelSelector": {"matchLabels": labels},
                                   "topologyKey": "kubernetes.io/hostname"}]},
                               # On the workers also where the server takes pods (k3s, RKE2).
                               "nodeAffinity": {
                                   "requiredDuringSchedulingIgnoredDuringExecution": {
                                       "nodeSelectorTerms": [{"matchExpressions": [{
                                           "key": "kubernetes.io/hostname", "operator": "In",
                                           "values": ["worker-1", "worker-2"]}]}]}}},
                           "containers": [{"name": "echo", "image": AGNHOST,
                                           "args": ["netexec", "--http-port=8080"],
                                           "ports": [{"containerPort": 8080}]}]}}}}
    port: Obj = {"port": 80, "targetPort": 8080}
    svc: Obj = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"selector": labels, "ports": [port]}}
    if node_port is not None:
        svc["spec"]["type"] = "NodePort"
        port["nodePort"] = node_port
    return [deploy, svc]


@dataclass
class Probes:
    """Where the probe pods ended up."""

    echo_pods: dict[str, str]  # node -> echo pod name
    echo_ips: dict[str, str]  # node -> echo pod IP
    probe_ips: dict[str, str]  # node -> netshoot probe IP
    echo_cluster_ip: str
    node_ips: dict[str, str]


def create_probes(lab: LabCluster, nodes: tuple[str, ...] = NODES) -> Probes:
    """Create the probe pods and the echo service; wait until all are Ready."""
    # The echo Deployment first: the lab's scheduler spreads by load, so on an empty
    # cluster its two replicas land on the two workers.
    lab.apply(echo_objects())
    pods = [_pinned_pod(probe_name(n), n, NETSHOOT) for n in nodes]
    pods += [_pinned_pod(hostnet_name(n), n, NETSHOOT, host_network=True) for n in nodes]
    pods.append(_pinned_pod("busybox", "worker-1", BUSYBOX))
    lab.apply(pods)
    names = [p["metadata"]["name"] for p in pods]
    lab.wait_ready(names)

    def echo_ready() -> list[Obj] | None:
        items = [p for p in lab.pods("default", "app=echo") if pod_is_ready(p)]
        return items if len(items) == 2 else None
    echo = wait_until(echo_ready, 60, "2 Ready echo pods")
    echo_pods = {p["spec"]["nodeName"]: p["metadata"]["name"] for p in echo}
    assert sorted(echo_pods) == ["worker-1", "worker-2"], f"echo pods on {sorted(echo_pods)}"
    nodes_json = lab.get("nodes")["items"]
    node_ips = {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"]
                                            if a["type"] == "InternalIP") for n in nodes_json}
    return Probes(echo_pods=echo_pods,
                  echo_ips={p["spec"]["nodeName"]: p["status"]["podIP"] for p in echo},
                  probe_ips={n: lab.pod_ip(probe_name(n)) for n in nodes},
                  echo_cluster_ip=lab.get("service", "echo")["spec"]["clusterIP"],
                  node_ips=node_ips)


@dataclass
class Cluster:
    """The session's healthy lab with its probes."""

    lab: LabCluster
    probes: Probes


def parallel(calls: dict[str, Callable[[], T]], workers: int = 8) -> dict[str, T]:
    """Run independent checks concurrently (each has its own deadline)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {k: pool.submit(f) for k, f in calls.items()}
        return {k: f.result() for k, f in futures.items()}


def started_lab(state_dir: Path, request: pytest.FixtureRequest, *extra: str,
                profile: str | None = None) -> LabCluster:
    """``lab up`` in ``state_dir`` (of ``profile`` when given); ``lab down`` is registered as
    a finalizer first."""
    lab = LabCluster(state_dir)

    def teardown() -> None:
        done = lab.down()
        if done.returncode != 0:
            print(f"lab down {state_dir} failed: {done.stderr}", file=sys.stderr)
    request.addfinalizer(teardown)
    lab.up(*extra, *(["--profile", profile] if profile else []))
    return lab


def new_state_dir(tag: str) -> Path:
    """A fresh state dir under /tmp/ndle-* (the lab removes it on ``down``)."""
    return Path(f"/tmp/ndle-{tag}-{os.getpid()}-{time.monotonic_ns() % 10**6}")


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """A healthy 3-node lab with probe pods, for the whole session."""
    reason = lab_unavailable()
    if reason is not None:
        pytest.skip(f"lab e2e tier needs a machine that can host a lab: {reason}")
    lab = started_lab(new_state_dir("e2e"), request)
    return Cluster(lab, create_probes(lab))


@pytest.fixture(scope="session")
def cluster_kubectl(cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """kubectl bound to the session's lab."""
    return cluster.lab.kubectl
