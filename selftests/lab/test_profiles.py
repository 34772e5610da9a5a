"""Each lab profile, healthy, 3 nodes: its distribution's object shapes and a working data plane.

One lab per profile (module-scoped, parametrized), probe pods on every node. Shapes are
read through the API with kubectl and the official ``kubernetes`` client (whose strict
models reject incomplete objects); traffic is real: cross-node pod ping, a ClusterIP
Service, DNS through the cluster DNS IP, NodePort on every node.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from selftests.lab.labfixture import (
    ECHO_NODE_PORT,
    NODES,
    LabCluster,
    Probes,
    create_probes,
    hostnet_name,
    lab_unavailable,
    new_state_dir,
    probe_name,
    started_lab,
)
from selftests.lab.profile_shapes import SHAPES, Shape

pytestmark = pytest.mark.lab
Obj = dict[str, Any]


class ProfileLab:
    """A running lab of one profile, its promised shape and its probes."""

    def __init__(self, lab: LabCluster, shape: Shape, probes: Probes) -> None:
        self.lab, self.shape, self.probes = lab, shape, probes
        self.roots = {n: Path(v["root"]) for n, v in lab.status()["nodes"].items()}


# The default profile's shapes and traffic are test_lab_e2e.py's; here, every other one.
@pytest.fixture(scope="module", params=sorted(set(SHAPES) - {"kubeadm-flannel"}))
def plab(request: pytest.FixtureRequest) -> ProfileLab:
    """A healthy 3-node lab of each profile in turn, with probe pods."""
    reason = lab_unavailable()
    if reason is not None:
        pytest.skip(f"profile tests need a machine that can host a lab: {reason}")
    profile: str = request.param
    lab = started_lab(new_state_dir(f"prof-{profile}"), request, profile=profile)
    return ProfileLab(lab, SHAPES[profile], create_probes(lab))


def _names(items: list[Obj]) -> set[tuple[str, str]]:
    return {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items}


# -- shapes -------------------------------------------------------------------------------
def test_status_names_the_profile(plab: ProfileLab) -> None:
    assert plab.lab.status()["profile"] == plab.shape.profile


def test_daemonsets(plab: ProfileLab) -> None:
    assert _names(plab.lab.get("daemonsets", "-A")["items"]) == plab.shape.daemonsets


def test_kube_proxy_shape(plab: ProfileLab) -> None:
    pods = [p for p in plab.lab.get("pods", "-A")["items"] if "kube-proxy" in
            p["metadata"]["name"]]
    kind = plab.shape.kube_proxy
    if kind == "daemonset":
        assert {p["metadata"]["ownerReferences"][0]["kind"] for p in pods} == {"DaemonSet"}
    elif kind == "static":
        assert len(pods) == len(NODES)
        for p in pods:
            meta = p["metadata"]
            assert meta["name"] == f"kube-proxy-{p['spec']['nodeName']}"
            assert meta["annotations"]["kubernetes.io/config.mirror"]
            assert meta["annotations"]["kubernetes.io/config.source"] == "file"
            assert meta["ownerReferences"][0]["kind"] == "Node"
            assert meta["ownerReferences"][0]["name"] == p["spec"]["nodeName"]
            assert meta["labels"] == {"component": "kube-proxy", "tier": "control-plane"}
    else:
        assert pods == []
    # Rules: kube-proxy's chains are there unless nothing plays kube-proxy.
    done = plab.lab.kubectl("exec", hostnet_name("worker-1"), "--", "iptables-nft-save",
                            "-t", "nat")
    assert (":KUBE-SERVICES" in done.stdout) == (kind != "none"), done.stdout[-2000:]


def test_dns_shape(plab: ProfileLab) -> None:
    ns, name, ip = plab.shape.dns_service
    svc = plab.lab.get("service", "-n", ns, name)
    assert svc["spec"]["clusterIP"] == ip
    kind, wns, wname = plab.shape.dns_workload
    workload = plab.lab.get(kind.lower(), "-n", wns, wname)
    # The Service selects the DNS workload's pods.
    assert set(svc["spec"]["selector"].items()) <= \
        set(workload["spec"]["template"]["metadata"]["labels"].items())
    services = _names(plab.lab.get("services", "-A")["items"])
    if ns != "kube-system" or name != "kube-dns":
        assert ("kube-system", "kube-dns") not in services


def test_cni_config_on_every_node(plab: ProfileLab) -> None:
    shape = plab.shape
    for node, root in plab.roots.items():
        conf_dir = (root / shape.cni_conf).parent
        files = sorted(p.name for p in conf_dir.iterdir() if p.suffix in
                       (".conf", ".conflist", ".json"))
        first = conf_dir / files[0]
        conf = json.loads(first.read_text())
        if shape.meta_conf is not None:
            assert first.name == Path(shape.meta_conf).name, (node, files)
            assert conf["type"] == "multus"
            conf = conf["delegates"][0]
        else:
            assert first.name == Path(shape.cni_conf).name, (node, files)
        assert json.loads((root / shape.cni_conf).read_text())["plugins"][0]["type"] == \
            shape.cni_type
        assert (conf.get("plugins") or [conf])[0]["type"] == shape.cni_type


def test_addressing(plab: ProfileLab) -> None:
    shape, cluster = plab.shape, ipaddress.ip_network(plab.shape.cluster_cidr)
    nodes = {n["metadata"]["name"]: n for n in plab.lab.get("nodes")["items"]}
    for i, name in enumerate(NODES):
        cidr = ipaddress.ip_network(nodes[name]["spec"]["podCIDR"])
        step = 2 ** (24 - cidr.prefixlen)  # kube-controller-manager hands out ranges in order
        assert str(cidr.network_address) == f"{shape.node_cidr_prefix}{i * step}.0", name
    for pod in plab.lab.get("pods", "-A")["items"]:
        if pod["spec"].get("hostNetwork"):
            continue
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        assert ip in cluster, pod["metadata"]["name"]
        own = ipaddress.ip_network(nodes[pod["spec"]["nodeName"]]["spec"]["podCIDR"])
        assert (ip in own) == shape.pods_from_node_cidr, (pod["metadata"]["name"], str(ip))
    api = plab.lab.get("service", "-n", "default", "kubernetes")["spec"]["clusterIP"]
    assert api == shape.api_ip
    assert ipaddress.ip_address(plab.probes.echo_cluster_ip) in \
        ipaddress.ip_network(shape.service_cidr)


def test_node_devices(plab: ProfileLab) -> None:
    done = plab.lab.kubectl("exec", hostnet_name("worker-2"), "--", "ip", "-j", "link")
    links = [link["ifname"] for link in json.loads(done.stdout)]
    assert set(plab.shape.devices) <= set(links), links
    pod_links = [n for n in links if n.startswith(plab.shape.veth_prefix)]
    assert pod_links, links
    if plab.shape.routed_via_nodes:
        # No overlay: each other node's pods are reached through that node's address.
        done = plab.lab.kubectl("exec", hostnet_name("worker-2"), "--", "ip", "-j", "route")
        routes = json.loads(done.stdout)
        for node in ("control-plane", "worker-1"):
            pod_ip = ipaddress.ip_address(plab.probes.probe_ips[node])
            via = [r.get("gateway") for r in routes if r["dst"] != "default" and
                   "/" in r["dst"] and pod_ip in ipaddress.ip_network(r["dst"])]
            assert via == [plab.probes.node_ips[node]], (node, routes)


def test_kubernetes_client_reads_everything(plab: ProfileLab) -> None:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(plab.lab.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        pods = core.list_pod_for_all_namespaces(_request_timeout=10).items
        nodes = core.list_node(_request_timeout=10).items
        daemonsets = apps.list_daemon_set_for_all_namespaces(_request_timeout=10).items
        deployments = apps.list_deployment_for_all_namespaces(_request_timeout=10).items
        services = core.list_service_for_all_namespaces(_request_timeout=10).items
    assert {n.metadata.name for n in nodes} == set(NODES)
    assert {(d.metadata.namespace, d.metadata.name) for d in daemonsets} == \
        plab.shape.daemonsets
    assert all(p.status.phase == "Running" for p in pods)
    assert deployments
    assert services


# -- data plane ---------------------------------------------------------------------------
@pytest.mark.parametrize(("src", "dst"), [("worker-1", "worker-2"),
                                          ("worker-2", "control-plane"),
                                          ("control-plane", "worker-1")])
def test_cross_node_pod_ping(plab: ProfileLab, src: str, dst: str) -> None:
    assert plab.lab.ping(probe_name(src), plab.probes.probe_ips[dst], count=2) == 0.0


@pytest.mark.parametrize("node", NODES)
def test_cluster_ip_and_dns(plab: ProfileLab, node: str) -> None:
    pod, dns_ip = probe_name(node), plab.shape.dns_service[2]
    code, body = plab.lab.http(pod, f"http://{plab.probes.echo_cluster_ip}/hostname")
    assert code == 0
    assert body in plab.probes.echo_pods.values()
    assert plab.lab.dig(pod, "kubernetes.default.svc.cluster.local", dns_ip) == \
        (0, plab.shape.api_ip)
    resolv = plab.lab.exec(pod, "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {dns_ip}" in resolv
    assert f"search default.{plab.shape.search}\n" in resolv
    # Through the search path and the pod's own resolver.
    done = plab.lab.exec(pod, "curl", "-sS", "-m", "3", "http://echo/hostname")
    assert done.returncode == 0, done.stderr
    assert done.stdout in plab.probes.echo_pods.values()


@pytest.mark.parametrize(("src", "dst"), [("worker-1", "control-plane"),
                                          ("control-plane", "worker-2")])
def test_node_port(plab: ProfileLab, src: str, dst: str) -> None:
    code, body = plab.lab.http(
        hostnet_name(src), f"http://{plab.probes.node_ips[dst]}:{ECHO_NODE_PORT}/hostname")
    assert code == 0
    assert body in plab.probes.echo_pods.values()
