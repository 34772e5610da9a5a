"""The profile machinery without a running lab: registry, CLI refusals, the CNI step's plugins,
scenarios per profile, the --lab-profile option."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from netdoctor.lab import cni, faults, profiles
from netdoctor.lab.components.multus import multus_conf
from netdoctor.lab.net.flannel import FLANNEL_CONFLIST, subnet_env
from netdoctor.plugin.options import resolve_settings

REPO = Path(__file__).resolve().parents[2]
ALL = ("kubeadm-flannel", "calico", "cilium-kpr", "k3s", "multus", "openshift-dns",
       "rke2-canal")


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdoctor.cli", "lab", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def test_profile_list_names_every_profile_default_first() -> None:
    done = lab("profile", "list")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == list(ALL)
    assert "(default)" in done.stdout.splitlines()[0]


@pytest.mark.parametrize(("args", "message"), [
    (("--profile", "nope"), "unknown profile 'nope'; known: kubeadm-flannel, calico"),
    (("--profile", "cilium-kpr", "--scenario", "kube-proxy-crashloop"),
     "scenario kube-proxy-crashloop does not apply to profile cilium-kpr: there is no "
     "kube-proxy"),
], ids=["unknown", "not-applicable"])
def test_lab_up_refuses_in_one_line(tmp_path: Path, args: tuple[str, ...],
                                    message: str) -> None:
    done = lab("up", "--state-dir", str(tmp_path / "lab"), *args)
    assert done.returncode == 1
    assert done.stderr.startswith(f"netdoctor lab: {message}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "lab").exists()  # refused before anything was made


def test_fault_list_shows_where_each_fault_applies() -> None:
    lines = {line.split()[0]: line for line in lab("fault", "list").stdout.splitlines()}
    assert lines["flannel-missing"].endswith("[all profiles]")
    assert "cilium-kpr" not in lines["kube-proxy-crashloop"]
    assert "profiles: kubeadm-flannel, k3s, multus, openshift-dns" in \
        lines["cni-bridge-conflict"]


def test_incident_on_cilium_keeps_every_step_but_kube_proxys() -> None:
    s = faults.scenario("problem-statement", profiles.get("cilium-kpr"))
    assert [st.fault for st in s.steps] == ["flannel-missing", "dns-upstream-timeout"]
    assert [st.fault for st in s.boot] == ["cni-config-shadowed"]
    full = faults.scenario("problem-statement", profiles.get("k3s"))
    assert full == faults.SCENARIOS["problem-statement"]


@pytest.mark.parametrize("name", ALL)
def test_addressing_is_consistent(name: str) -> None:
    p = profiles.get(name)
    cluster, services = ipaddress.ip_network(p.cluster_cidr), ipaddress.ip_network(
        p.service_cidr)
    assert ipaddress.ip_address(p.api_service_ip) == services.network_address + 1
    assert ipaddress.ip_address(p.dns_service_ip) == services.network_address + 10
    ranges = [ipaddress.ip_network(p.ipam_range(i) if p.ipam_range else p.node_pod_cidr(i))
              for i in range(6)]
    assert all(r.subnet_of(cluster) for r in ranges)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1:])
    if p.ipam_range:  # the CNI's own IPAM never hands out the node's spec.podCIDR
        assert all(not ipaddress.ip_network(p.ipam_range(i)).overlaps(
            ipaddress.ip_network(p.node_pod_cidr(i))) for i in range(6))


def _node(tmp_path: Path, files: dict[str, object], plugins: tuple[str, ...]) -> Path:
    root = tmp_path / "node"
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    for plugin in plugins:
        (root / "opt/cni/bin").mkdir(parents=True, exist_ok=True)
        (root / "opt/cni/bin" / plugin).write_text("")
    return root


def test_multus_delegates_to_flannel(tmp_path: Path) -> None:
    root = _node(tmp_path, {
        "etc/cni/net.d/00-multus.conf": multus_conf(FLANNEL_CONFLIST),
        "etc/cni/net.d/10-flannel.conflist": FLANNEL_CONFLIST,
        "run/flannel/subnet.env": subnet_env("10.244.3.0/24"),
    }, ("multus", "flannel", "portmap"))
    net = cni.resolve(root)
    assert (net.config_file, net.plugin, str(net.subnet), net.bridge) == \
        ("00-multus.conf", "flannel", "10.244.3.0/24", "cni0")
    (root / "opt/cni/bin/multus").unlink()
    with pytest.raises(cni.CniError, match='failed to find plugin "multus"'):
        cni.resolve(root)


def test_calico_needs_calico_node_and_takes_its_block(tmp_path: Path) -> None:
    conf = profiles.get("calico").agent_cni
    assert conf is not None
    root = _node(tmp_path, {conf[0]: conf[1]}, ("calico", "calico-ipam", "portmap",
                                                "bandwidth"))
    node = cni.node_cni(root, "etc/cni/net.d", "opt/cni/bin", {"metadata": {"annotations": {
        cni.CALICO_TUNNEL_ANNOTATION: "10.244.101.65"}}, "spec": {"podCIDR": "10.244.1.0/24"}},
        "10.244.101.64/26")
    with pytest.raises(cni.CniError, match="stat /var/lib/calico/nodename"):
        cni.resolve(node)
    (root / "var/lib/calico").mkdir(parents=True)
    (root / "var/lib/calico/nodename").write_text("worker-1")
    net = cni.resolve(node)
    assert (net.plugin, str(net.subnet), str(net.gateway), net.routed, net.host_prefix) == \
        ("calico", "10.244.101.64/26", "169.254.1.1", True, "cali")
    first = cni.allocate(root, net, "uid-1")
    assert str(first) == "10.244.101.66"  # the tunnel address is taken


def test_cilium_needs_its_agents_socket(tmp_path: Path) -> None:
    conf = profiles.get("cilium-kpr").agent_cni
    assert conf is not None
    root = _node(tmp_path, {conf[0]: conf[1]}, ("cilium-cni",))
    node = cni.NodeCni(root, ipam_range="10.0.1.0/24")
    with pytest.raises(cni.CniError, match="unable to connect to Cilium daemon"):
        cni.resolve(node)
    (root / "var/run/cilium").mkdir(parents=True)
    (root / "var/run/cilium/cilium.sock").write_text("")
    net = cni.resolve(node)
    assert (net.plugin, str(net.subnet), str(net.gateway), net.host_prefix) == \
        ("cilium-cni", "10.0.1.0/24", "10.0.1.1", "lxc")


def test_lab_profile_option_and_its_ini_twin(tmp_path: Path) -> None:
    s = resolve_settings({"lab": "healthy"}, {}, {"netdoctor_lab_profile": "k3s"},
                         cwd=tmp_path)
    assert (s.lab_profile, s.sources["lab_profile"]) == ("k3s", "ini option "
                                                         "netdoctor_lab_profile in the ini file")
    cli = resolve_settings({"lab_profile": "rke2-canal"}, {}, {}, cwd=tmp_path)
    assert cli.lab_profile == "rke2-canal"
    with pytest.raises(pytest.UsageError, match="from --lab-profile: expected a lab profile"):
        resolve_settings({"lab_profile": "K3S!"}, {}, {}, cwd=tmp_path)
