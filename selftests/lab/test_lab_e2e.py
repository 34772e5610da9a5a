"""The healthy lab end to end: real traffic between real namespaces, kubectl, the CLI."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from selftests.lab.labfixture import (
    ECHO_NODE_PORT,
    NODES,
    Cluster,
    cli,
    hostnet_name,
    loss_percent,
    new_state_dir,
    probe_name,
    started_lab,
    wait_until,
)

pytestmark = pytest.mark.lab
WORKERS = ("worker-1", "worker-2")
PAIRS = list(itertools.permutations(NODES, 2))


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}->{pair[1]}"


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_cross_node_pod_ping(cluster: Cluster, pair: tuple[str, str]) -> None:
    src, dst = pair
    assert cluster.lab.ping(probe_name(src), cluster.probes.probe_ips[dst], count=3) == 0.0


@pytest.mark.parametrize("node", WORKERS)
def test_same_node_pod_ping(cluster: Cluster, node: str) -> None:
    assert cluster.lab.ping(probe_name(node), cluster.probes.echo_ips[node], count=3) == 0.0


@pytest.mark.parametrize("pair", list(itertools.product(NODES, WORKERS)), ids=_pair_id)
def test_http_to_echo_pod(cluster: Cluster, pair: tuple[str, str]) -> None:
    src, dst = pair
    code, body = cluster.lab.http(probe_name(src),
                                  f"http://{cluster.probes.echo_ips[dst]}:8080/hostname")
    assert (code, body) == (0, cluster.probes.echo_pods[dst])


@pytest.mark.parametrize("node", NODES)
def test_cluster_ip_reaches_both_backends(cluster: Cluster, node: str) -> None:
    seen: set[str] = set()
    for _ in range(12):
        code, body = cluster.lab.http(probe_name(node),
                                      f"http://{cluster.probes.echo_cluster_ip}/hostname")
        assert code == 0
        seen.add(body)
        if len(seen) == 2:
            break
    assert seen == set(cluster.probes.echo_pods.values())


@pytest.mark.parametrize("node", NODES)
def test_api_service_from_pod(cluster: Cluster, node: str) -> None:
    ca = cluster.lab.state_dir / "ca.crt"
    done = cluster.lab.exec(probe_name(node), "curl", "-sS", "-m", "3", "--cacert", str(ca),
                            "https://10.96.0.1:443/version")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["major"] == "1"


@pytest.mark.parametrize("pair", [(s, d) for s in NODES for d in NODES], ids=_pair_id)
@pytest.mark.parametrize("client", ["pod", "hostNetwork"])
def test_node_port(cluster: Cluster, pair: tuple[str, str], client: str) -> None:
    src, dst = pair
    pod = probe_name(src) if client == "pod" else hostnet_name(src)
    code, body = cluster.lab.http(
        pod, f"http://{cluster.probes.node_ips[dst]}:{ECHO_NODE_PORT}/hostname")
    assert code == 0
    assert body in cluster.probes.echo_pods.values()


@pytest.mark.parametrize("node", NODES)
def test_dns(cluster: Cluster, node: str) -> None:
    pod = probe_name(node)
    assert cluster.lab.dig(pod, "kubernetes.default.svc.cluster.local") == (0, "10.96.0.1")
    assert cluster.lab.dig(pod, "echo.default.svc.cluster.local") == \
        (0, cluster.probes.echo_cluster_ip)
    assert cluster.lab.dig(pod, "example.com") == (0, "192.0.2.10")
    # The pod's resolv.conf points at the cluster DNS with the search path.
    done = cluster.lab.exec(pod, "curl", "-sS", "-m", "3", "http://echo/hostname")
    assert done.returncode == 0
    assert done.stdout in cluster.probes.echo_pods.values()


def test_busybox_tools(cluster: Cluster) -> None:
    done = cluster.lab.exec("busybox", "ping", "-c", "2", cluster.probes.probe_ips["worker-2"])
    assert "packets transmitted" in done.stdout  # busybox wording, not iputils'
    assert loss_percent(done.stdout) == 0.0
    done = cluster.lab.exec("busybox", "nslookup", "echo.default.svc.cluster.local",
                            "10.96.0.10")
    assert done.returncode == 0, done.stderr
    assert f"Address: {cluster.probes.echo_cluster_ip}" in done.stdout


def test_kubectl_views(cluster: Cluster) -> None:
    k = cluster.lab.kubectl
    wide = k("get", "pods", "-o", "wide").stdout
    assert "NODE" in wide.splitlines()[0]
    assert f"{probe_name('worker-2')} " in wide
    assert cluster.probes.probe_ips["worker-2"] in wide
    described = k("describe", "pod", probe_name("worker-1")).stdout
    assert "Node:" in described
    assert "worker-1" in described
    assert "Started" in described  # events
    logs = k("logs", cluster.probes.echo_pods["worker-1"]).stdout
    assert "Started HTTP server on port 8080" in logs


@pytest.mark.parametrize("pod", [probe_name("worker-1"), hostnet_name("worker-1"), "busybox"])
def test_exec_joins_the_container(cluster: Cluster, pod: str) -> None:
    # As a runtime's exec: commands run in the container's own mount and network namespaces
    # (two execs at once share them; namespaces built per exec would differ), with its token
    # volume, resolv.conf and PATH.
    script = ("readlink /proc/self/ns/mnt; readlink /proc/self/ns/net; "
              "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; "
              "grep -c nameserver /etc/resolv.conf; echo $PATH; sleep 2")
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: cluster.lab.exec(pod, "sh", "-c", script), range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    mnt, net, namespace, nameservers, path = first.stdout.splitlines()
    assert mnt != os.readlink("/proc/self/ns/mnt")
    assert net != os.readlink("/proc/self/ns/net")
    assert (namespace, nameservers) == ("default", "1")
    assert path.startswith("/")


@pytest.mark.parametrize("code", [0, 3])
def test_kubectl_exec_exit_code(cluster: Cluster, code: int) -> None:
    done = cluster.lab.exec(probe_name("worker-1"), "sh", "-c", f"echo out; exit {code}")
    assert done.returncode == code
    assert done.stdout == "out\n"


def test_apply_and_rollout_restart(cluster: Cluster) -> None:
    k = cluster.lab.kubectl
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "roll", "namespace": "default"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "roll"}},
                       "template": {"metadata": {"labels": {"app": "roll"}}, "spec": {
                           "terminationGracePeriodSeconds": 1,
                           "containers": [{"name": "c", "image": "busybox:1.36.1",
                                           "command": ["sleep", "infinity"]}]}}}}
    out = k("apply", "--validate=false", "-f", "-", stdin=json.dumps(deploy)).stdout
    assert "deployment.apps/roll created" in out

    def ready_names() -> set[str]:
        return {p["metadata"]["name"] for p in cluster.lab.pods("default", "app=roll")
                if any(c["type"] == "Ready" and c["status"] == "True"
                       for c in p["status"].get("conditions") or [])}
    try:
        before = wait_until(ready_names, 30, "the roll deployment's pod to be Ready")
        k("rollout", "restart", "deployment/roll")
        wait_until(lambda: (n := {p["metadata"]["name"] for p in
                                  cluster.lab.pods("default", "app=roll")})
                   and not (n & before) and ready_names() == n,
                   45, "a new roll pod Ready and the old one gone")
        again = k("apply", "--validate=false", "-f", "-", stdin=json.dumps(deploy)).stdout
        assert "unchanged" in again or "configured" in again
    finally:
        k("delete", "deployment", "roll", "--wait=false", check=False)


def test_lab_status_json(cluster: Cluster) -> None:
    data = cluster.lab.status()
    assert data["phase"] == "ready"
    assert data["faults"] == []
    assert {n: v["podCIDR"] for n, v in data["nodes"].items()} == {
        "control-plane": "10.244.0.0/24", "worker-1": "10.244.1.0/24",
        "worker-2": "10.244.2.0/24"}
    pods = {p["name"]: p for p in data["pods"]}
    assert pods[probe_name("worker-2")]["ip"] == cluster.probes.probe_ips["worker-2"]
    assert pods[probe_name("worker-2")]["ready"] is True


def test_lab_exec_passes_stdout_and_exit_code(cluster: Cluster) -> None:
    done = cli(cluster.lab.state_dir, "exec", "worker-1", "--", "sh", "-c",
               "echo $NODE_ROOT; ip -br addr; exit 4")
    assert done.returncode == 4
    lines = done.stdout.splitlines()
    assert lines[0] == str(cluster.lab.state_dir / "nodes" / "worker-1")
    assert any(line.startswith("eth0") and "192.168.4.11/24" in line for line in lines)
    assert any(line.startswith("cni0") and "10.244.1.1/24" in line for line in lines)


def test_up_on_running_state_dir_fails(cluster: Cluster) -> None:
    done = cli(cluster.lab.state_dir, "up", timeout=30)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "already running" in done.stderr
    assert cluster.lab.status()["phase"] == "ready"  # the running lab is untouched


@pytest.mark.parametrize("args", [
    ["up", "--scenario", "no-such-scenario"],
    ["fault", "inject", "no-such-fault"],
    ["fault", "inject", "ip-forward-off", "--node", "no-such-node"],
    ["exec", "no-such-node", "--", "true"],
], ids=["unknown-scenario", "unknown-fault", "unknown-node-fault", "unknown-node-exec"])
def test_bad_names_give_one_line(cluster: Cluster, args: list[str]) -> None:
    done = cli(cluster.lab.state_dir, *args, timeout=30)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert "no-such" in done.stderr
    assert "Traceback" not in done.stderr


def _lab_processes(state_dir: Path) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(state_dir).encode() in cmdline:
            out.append(int(proc.name))
    return out


def _netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_second_lab_side_by_side_and_clean_down(cluster: Cluster,
                                                request: pytest.FixtureRequest) -> None:
    other = started_lab(new_state_dir("e2e-second"), request, "--workers", "1")
    assert other.prefix != cluster.lab.prefix
    assert [n["metadata"]["name"] for n in other.get("nodes")["items"]] == \
        ["control-plane", "worker-1"]
    # Both answer, each with its own namespaces.
    for lab in (cluster.lab, other):
        done = cli(lab.state_dir, "exec", "worker-1", "--", "ip", "-br", "addr", "show", "eth0")
        assert done.returncode == 0
        assert "192.168.4.11/24" in done.stdout
    assert any(n.startswith(other.prefix) for n in _netns_names())
    daemon_pid = json.loads((other.state_dir / "state.json").read_text())["pid"]

    done = other.down()
    assert done.returncode == 0, done.stderr
    assert not [n for n in _netns_names() if n.startswith(other.prefix)]
    assert not list(Path("/etc/netns").glob(f"{other.prefix}*"))
    assert not os.path.exists(f"/proc/{daemon_pid}") or \
        "zombie" in Path(f"/proc/{daemon_pid}/status").read_text()
    assert _lab_processes(other.state_dir) == []
    assert not other.state_dir.exists()
    # The first lab is untouched.
    assert cluster.lab.ping(probe_name("worker-1"), cluster.probes.probe_ips["worker-2"]) == 0.0
