"""Every lab fault breaks what it should and nothing else, and clears again; scenarios.

One healthy lab serves all fault tests: each injects, checks a traffic matrix (which
checks must fail, all others must pass), checks the API state that follows, clears,
and waits until the whole matrix passes again, so the next test starts healthy.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from netdoctor.lab import faults
from netdoctor.lab.pathfaults import PATH_FAULTS
from selftests.lab.labfixture import (
    NODES,
    Cluster,
    LabCluster,
    create_probes,
    new_state_dir,
    parallel,
    probe_name,
    started_lab,
    wait_until,
)

pytestmark = pytest.mark.lab
SHORT = {"control-plane": "cp", "worker-1": "w1", "worker-2": "w2"}
RECOVERY = 45.0


def _pinger(lab: LabCluster, pod: str, ip: str) -> Callable[[], bool]:
    return lambda: lab.ping(pod, ip) == 0.0


def _api(lab: LabCluster, pod: str) -> Callable[[], bool]:
    return lambda: lab.exec(pod, "curl", "-sk", "-m", "2",
                            "https://10.96.0.1/version").returncode == 0


def _resolves(lab: LabCluster, pod: str, name: str, want: str) -> Callable[[], bool]:
    return lambda: lab.dig(pod, name) == (0, want)


def matrix(c: Cluster) -> dict[str, Callable[[], bool]]:
    """Named traffic checks: True when the path works."""
    lab, p = c.lab, c.probes
    checks: dict[str, Callable[[], bool]] = {}
    for src, dst in itertools.permutations(NODES, 2):
        checks[f"ping:{SHORT[src]}->{SHORT[dst]}"] = _pinger(lab, probe_name(src),
                                                             p.probe_ips[dst])
    for node in ("worker-1", "worker-2"):
        checks[f"ping:{SHORT[node]}->{SHORT[node]}"] = _pinger(lab, probe_name(node),
                                                               p.echo_ips[node])
    for node in NODES:
        s, pod = SHORT[node], probe_name(node)
        checks[f"api:{s}"] = _api(lab, pod)
        checks[f"dns:{s}"] = _resolves(lab, pod, "kubernetes.default.svc.cluster.local",
                                       "10.96.0.1")
        checks[f"ext:{s}"] = _resolves(lab, pod, "example.com", "192.0.2.10")
    return checks


def run_matrix(c: Cluster) -> dict[str, bool]:
    return parallel(matrix(c))


def wait_healthy(c: Cluster, what: str) -> None:
    def healthy() -> bool:
        return all(run_matrix(c).values())
    wait_until(healthy, RECOVERY, what, interval=0.5)


@dataclass
class Expect:
    """What a fault breaks (everything else in the matrix must keep working)."""

    node: str | None
    breaks: set[str]
    tolerated: set[str] = field(default_factory=set)  # depends on load balancing
    check: Callable[[Cluster], None] | None = None
    settle: float = 20.0


def _new_pod(c: Cluster, name: str, node: str) -> None:
    c.lab.kubectl("run", name, "--image=nicolaka/netshoot:v0.13", "--restart=Never",
                  f"--overrides={{\"spec\":{{\"nodeName\":\"{node}\"}}}}", "--", "sleep",
                  "infinity")


def _delete_pod(c: Cluster, name: str) -> None:
    c.lab.kubectl("delete", "pod", name, "--wait=false", "--ignore-not-found", check=False)


def _logs(c: Cluster, ns: str, pod: str, previous: bool = False) -> str:
    args = ["logs", "-n", ns, pod, *(["--previous"] if previous else [])]
    return c.lab.kubectl(*args, check=False).stdout


def _flannel_gone(c: Cluster) -> None:
    done = c.lab.kubectl("get", "ds", "-n", "kube-flannel", "kube-flannel-ds", check=False)
    assert done.returncode != 0
    assert "NotFound" in done.stderr
    assert c.lab.pods("kube-flannel", "app=flannel") == []


def _coredns_crashing(c: Cluster) -> None:
    def crashed() -> dict[str, Any] | None:
        pods = c.lab.pods("kube-system", "k8s-app=kube-dns")
        for pod in pods:
            for cs in pod["status"].get("containerStatuses") or []:
                last = (cs.get("lastState") or {}).get("terminated") or {}
                if cs.get("restartCount", 0) >= 1 and last.get("exitCode") == 1:
                    return pod
        return None
    pod = wait_until(crashed, 30, "CoreDNS to exit with an error and restart")
    name = str(pod["metadata"]["name"])
    assert "i/o timeout" in _logs(c, "kube-system", name, previous=True)
    eps = c.lab.get("endpoints", "-n", "kube-system", "kube-dns")
    assert not any(s.get("addresses") for s in eps.get("subsets") or [])


def _kube_proxy_crashing(c: Cluster) -> None:
    def states() -> dict[str, dict[str, Any]] | None:
        out = {p["spec"]["nodeName"]: p for p in c.lab.pods("kube-system", "k8s-app=kube-proxy")}
        workers_down = all(
            (out[n]["status"]["containerStatuses"][0].get("state") or {}).get("waiting", {})
            .get("reason") == "CrashLoopBackOff" for n in ("worker-1", "worker-2"))
        return out if workers_down else None
    pods = wait_until(states, 30, "kube-proxy CrashLoopBackOff on both workers")
    cp = pods["control-plane"]["status"]
    assert cp["containerStatuses"][0]["restartCount"] == 0
    assert "running" in cp["containerStatuses"][0]["state"]
    name = str(pods["worker-1"]["metadata"]["name"])
    logs = _logs(c, "kube-system", name) + _logs(c, "kube-system", name, previous=True)
    assert "Failed to execute iptables-restore" in logs


def _upstream_timeouts(c: Cluster) -> None:
    pod = c.lab.pods("kube-system", "k8s-app=kube-dns")[0]["metadata"]["name"]
    wait_until(lambda: "192.168.4.1:53: i/o timeout" in _logs(c, "kube-system", pod), 10,
               "CoreDNS to log an upstream i/o timeout")


def _no_endpoints(c: Cluster) -> None:
    eps = wait_until(lambda: c.lab.get("endpoints", "-n", "shop", "web"), 10,
                     "endpoints shop/web")
    assert not any(s.get("addresses") for s in eps.get("subsets") or [])
    c.lab.wait_ready([p["metadata"]["name"] for p in c.lab.pods("shop", "app=webapp")],
                     namespace="shop")
    code, _ = c.lab.http(probe_name("worker-1"), "http://web.shop.svc.cluster.local/")
    assert code == 7  # connection refused: kube-proxy rejects a Service with no endpoints


def _bridge_conflict(c: Cluster) -> None:
    _new_pod(c, "fault-bridge", "worker-2")
    try:
        def event() -> bool:
            evs = c.lab.get("events", "--field-selector", "involvedObject.name=fault-bridge")
            return any('"cni0" already has an IP address different from 10.244.2.1/24'
                       in e.get("message", "") for e in evs["items"])
        wait_until(event, 15, "the bridge-address FailedCreatePodSandBox event")
        status = c.lab.pod("fault-bridge")["status"]
        assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == \
            "ContainerCreating"
        assert not status.get("podIP")
    finally:
        _delete_pod(c, "fault-bridge")


def _shadowed(c: Cluster) -> None:
    _new_pod(c, "fault-shadow", "worker-2")
    try:
        c.lab.wait_ready(["fault-shadow"])
        ip = c.lab.pod_ip("fault-shadow")
        assert not ip.startswith("10.244.2."), f"{ip} is inside worker-2's podCIDR"
        assert c.lab.ping("fault-shadow", c.probes.probe_ips["worker-1"]) == 100.0
    finally:
        _delete_pod(c, "fault-shadow")


CROSS = {f"ping:{SHORT[a]}->{SHORT[b]}" for a, b in itertools.permutations(NODES, 2)}
ALL_DNS = {f"{k}:{n}" for k in ("dns", "ext") for n in ("cp", "w1", "w2")}

EXPECT: dict[str, Expect] = {
    # Forwarding state and flanneld's masquerade rules go: pods leave only within their node.
    "flannel-missing": Expect(None, CROSS | {"api:w1", "api:w2", "dns:w1", "dns:w2",
                                             "ext:cp", "ext:w1", "ext:w2"},
                              check=_flannel_gone),
    # CoreDNS (on the control plane) cannot reach the API: it crash-loops, DNS is gone.
    "coredns-crashloop": Expect(None, ALL_DNS | {"api:cp"}, check=_coredns_crashing,
                                settle=30),
    # kube-proxy crashes on the workers, but its stale rules keep Services working.
    "kube-proxy-crashloop": Expect(None, set(), check=_kube_proxy_crashing),
    "dns-upstream-timeout": Expect(None, {"ext:cp", "ext:w1", "ext:w2"},
                                   check=_upstream_timeouts),
    "service-no-endpoints": Expect(None, set(), check=_no_endpoints),
    "iptables-mixed-backend": Expect("worker-1", {"dns:w1", "ext:w1"}),
    "cni-bridge-conflict": Expect("worker-2", {"ping:w2->cp", "ping:w2->w1", "ping:cp->w2",
                                               "ping:w1->w2", "dns:w2", "ext:w2", "api:w2"},
                                  check=_bridge_conflict),
    "ip-forward-off": Expect("worker-1", {"ping:w1->cp", "ping:w1->w2", "ping:cp->w1",
                                          "ping:w2->w1", "dns:w1", "ext:w1", "api:w1"}),
    # Same-node client -> ClusterIP -> same-node backend: only DNS from CoreDNS's node.
    "br-netfilter-off": Expect("control-plane", {"dns:cp", "ext:cp"}),
    "cni-config-shadowed": Expect("worker-2", set(), check=_shadowed),
}


# Path faults have their own module (test_path_faults.py) with a lab that has two DNS replicas.
NODE_FAULTS = [n for n in faults.FAULTS if n not in {f.name for f in PATH_FAULTS}]


def test_every_fault_has_expectations() -> None:
    assert set(EXPECT) == set(NODE_FAULTS)


@pytest.mark.parametrize("name", NODE_FAULTS)
def test_fault(cluster: Cluster, name: str) -> None:
    expect = EXPECT[name]
    line = cluster.lab.fault("inject", name, expect.node)
    assert line.startswith(f"injected {name} on ")
    try:
        assert {"name": name, "node": expect.node} in cluster.lab.status()["faults"] or \
            expect.node is None
        checks = list(matrix(cluster))
        assert expect.breaks <= set(checks), expect.breaks - set(checks)

        def as_expected() -> dict[str, bool] | None:
            got = run_matrix(cluster)
            broken = {k for k, ok in got.items() if not ok} - expect.tolerated
            return got if broken == expect.breaks else None
        try:
            wait_until(as_expected, expect.settle, f"{name} to break exactly "
                       f"{sorted(expect.breaks)}", interval=0.5)
        except AssertionError:
            got = run_matrix(cluster)
            broken = {k for k, ok in got.items() if not ok}
            raise AssertionError(f"{name}: broken {sorted(broken)}, expected "
                                 f"{sorted(expect.breaks)}") from None
        if expect.check is not None:
            expect.check(cluster)
    finally:
        cluster.lab.fault("clear", name, expect.node)
    assert cluster.lab.status()["faults"] == []
    wait_healthy(cluster, f"every path to work again after clearing {name}")
    if name == "service-no-endpoints":
        code, body = cluster.lab.http(probe_name("worker-1"),
                                      "http://web.shop.svc.cluster.local/hostname")
        assert code == 0
        assert body.startswith("web-")


# -- scenarios ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def incident(request: pytest.FixtureRequest, cluster: Cluster) -> Cluster:
    """A lab started with ``--scenario problem-statement``, with probe pods."""
    lab = started_lab(new_state_dir("e2e-incident"), request, "--scenario", "problem-statement")
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": probe_name(n), "namespace": "default"},
             "spec": {"nodeName": n, "tolerations": [{"operator": "Exists"}],
                      "terminationGracePeriodSeconds": 1,
                      "containers": [{"name": "shell", "image": "nicolaka/netshoot:v0.13",
                                      "command": ["sleep", "infinity"]}]}} for n in NODES]
    lab.apply(pods)
    lab.wait_ready([probe_name(n) for n in NODES])
    return Cluster(lab, cluster.probes)  # probes: only the names are used below


def _dig_code(lab: LabCluster, pod: str, name: str, server: str | None) -> float:
    return float(lab.dig(pod, name, server or "10.96.0.10")[0])


def test_problem_statement(incident: Cluster) -> None:
    lab: LabCluster = incident.lab
    # CoreDNS, pinned to worker-2, crash-loops on i/o timeouts.
    def dns_state() -> dict[str, Any] | None:
        pods = lab.pods("kube-system", "k8s-app=kube-dns")
        cs = pods[0]["status"]["containerStatuses"][0] if pods else {}
        waiting = (cs.get("state") or {}).get("waiting", {}).get("reason")
        return pods[0] if waiting == "CrashLoopBackOff" and cs.get("restartCount", 0) >= 1 \
            else None
    coredns = wait_until(dns_state, 30, "CoreDNS in CrashLoopBackOff")
    assert coredns["spec"]["nodeName"] == "worker-2"
    name = str(coredns["metadata"]["name"])
    logs = _logs(incident, "kube-system", name, previous=True) + \
        _logs(incident, "kube-system", name)
    assert "i/o timeout" in logs
    assert "waiting for Kubernetes API before starting server" in logs
    # kube-proxy crash-loops on the workers.
    _kube_proxy_crashing(incident)
    # No Flannel DaemonSet (the wrong lookup and the right one both come up empty).
    _flannel_gone(incident)
    # A Service without endpoints: kube-dns, CoreDNS never being ready.
    for ns, svc in (("kube-system", "kube-dns"),):
        eps = lab.get("endpoints", "-n", ns, svc)
        assert not any(s.get("addresses") for s in eps.get("subsets") or []), f"{ns}/{svc}"
    # Pod IPs on worker-2 outside its podCIDR.
    cidr = lab.get("node", "worker-2")["spec"]["podCIDR"]
    assert cidr == "10.244.2.0/24"
    w2_ips = [p["status"]["podIP"] for p in lab.get("pods", "-A")["items"]
              if p["spec"].get("nodeName") == "worker-2" and not p["spec"].get("hostNetwork")
              and p["status"].get("podIP")]
    assert w2_ips
    assert all(not ip.startswith("10.244.2.") for ip in w2_ips), w2_ips
    # Traffic: cross-node pod pings fail, DNS (cluster and external) is unreachable.
    ips = {n: lab.pod_ip(probe_name(n)) for n in NODES}
    calls: dict[str, Callable[[], float]] = {}
    for a, b in itertools.permutations(NODES, 2):
        calls[f"ping:{a}->{b}"] = functools.partial(lab.ping, probe_name(a), ips[b])
    for n in NODES:
        calls[f"dns:{n}"] = functools.partial(_dig_code, lab, probe_name(n),
                                              "kubernetes.default.svc.cluster.local", None)
        calls[f"ext:{n}"] = functools.partial(_dig_code, lab, probe_name(n), "example.com",
                                              "192.168.4.1")
    results = parallel(calls)
    # A worker-2 pod pinging a control-plane pod's address may be answered by the
    # worker-2 pod holding the same address (both nodes hand out 10.244.0.0/24): that is
    # the incident too, so such a pair counts as failing to reach the other node.
    on_w2 = set(w2_ips)
    reached = {k for k, v in results.items() if k.startswith("ping:") and v != 100.0
               and not (k.startswith("ping:worker-2->") and ips[k.split("->")[1]] in on_w2)}
    assert reached == set()
    assert {k: v for k, v in results.items() if not k.startswith("ping:")} == \
        {k: 9 for k in results if not k.startswith("ping:")}  # dig: no servers reached
    assert {f["name"] for f in lab.status()["faults"]} == {
        "cni-config-shadowed", "flannel-missing", "kube-proxy-crashloop",
        "dns-upstream-timeout"}


def test_healthy_scenario_is_green(cluster: Cluster) -> None:
    """``--scenario healthy`` is the default the session lab was started with."""
    assert cluster.lab.status()["faults"] == []
    assert all(run_matrix(cluster).values())
    assert create_probes is not None  # the session lab's probes came up Ready
