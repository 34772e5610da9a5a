"""Path fault machinery without a running lab: which rule is the egress masquerade, stale
addresses, DNS replicas, what each profile refuses, and the CLI's one-line refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from netdoctor.cli import main
from netdoctor.lab import faults, profiles
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import Store
from netdoctor.lab.components.cilium import masquerade_rules as cilium_masquerade
from netdoctor.lab.daemon import lab_info
from netdoctor.lab.net.flannel import masquerade_rules as flannel_masquerade
from netdoctor.lab.net.routed import calico_nat_rules
from netdoctor.lab.pathfaults import PATH_FAULTS, _leaving_masquerade, _stale_mac
from netdoctor.lab.profiles import scale_dns

CLUSTER = "10.244.0.0/16"
PAIR = {"vxlan-fdb-stale", "neigh-stale", "route-missing", "firewall-vxlan",
        "underlay-vxlan-drop"}


def _rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A ")]


@pytest.mark.parametrize(("rules", "want"), [
    pytest.param(flannel_masquerade("10.244.1.0/24", CLUSTER),
                 ['-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment '
                  '"flanneld masq" -j MASQUERADE --random-fully'], id="flannel"),
    pytest.param(calico_nat_rules(CLUSTER),
                 ['-A cali-nat-outgoing -s 10.244.0.0/16 ! -d 10.244.0.0/16 -m comment '
                  '--comment "cali:nat-outgoing" -j MASQUERADE --random-fully'], id="calico"),
    pytest.param(cilium_masquerade("10.244.1.0/24", CLUSTER),
                 ['-A CILIUM_POST_nat -s 10.244.1.0/24 ! -d 10.244.0.0/16 ! -o cilium_+ -m '
                  'comment --comment "cilium masquerade non-cluster" -j MASQUERADE'],
                 id="cilium"),
])
def test_only_the_egress_masquerade_is_picked(rules: str, want: list[str]) -> None:
    # Not flanneld's "! -s cluster -d cluster" rule (host to pods), nor kube-proxy's marks.
    kube_proxy = '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic" ' \
                 "-j MASQUERADE --random-fully"
    picked = [r for r in [*_rules(rules), kube_proxy] if _leaving_masquerade(r, CLUSTER)]
    assert picked == want


def test_stale_mac_differs_and_stays_a_mac() -> None:
    mac = "22:34:81:e6:6d:86"
    stale = _stale_mac(mac)
    assert stale != mac
    assert stale[:-2] == mac[:-2]
    assert len(stale.split(":")) == 6


def test_path_faults_are_registered_with_their_scope() -> None:
    names = {f.name for f in PATH_FAULTS}
    assert names <= set(faults.FAULTS)
    assert {f.name for f in PATH_FAULTS if f.pair} == PAIR
    assert all(f.node_scoped for f in PATH_FAULTS)
    listed = {f["name"]: f for f in faults.describe()}
    assert listed["vxlan-fdb-stale"]["pair"] is True
    assert listed["vxlan-fdb-stale"]["default_peer"] == "worker-2"
    assert listed["firewall-dns"]["pair"] is False
    # A scenario per path fault, as for every other fault.
    assert all(name in faults.SCENARIOS for name in names)


@pytest.mark.parametrize(("profile", "refused"), [
    ("calico", {"vxlan-fdb-stale", "neigh-stale", "firewall-vxlan", "underlay-vxlan-drop"}),
    ("cilium-kpr", {"vxlan-fdb-stale", "neigh-stale", "firewall-nodeport"}),
    ("kubeadm-flannel", set()),
    ("k3s", set()),
])
def test_profiles_refuse_what_they_cannot_have(profile: str, refused: set[str]) -> None:
    prof = profiles.get(profile)
    assert {f.name for f in PATH_FAULTS if prof.supports(f.name)} == refused
    for name in refused:
        with pytest.raises(faults.FaultNotApplicable):
            faults.scenario(name, prof)


def test_scale_dns_spreads_replicas(tmp_path: Path) -> None:
    prof = profiles.get("kubeadm-flannel")
    seed = prof.seed(lab_info(tmp_path, 2, prof.name))
    scale_dns(seed, prof.dns, 2)
    deploy = next(o for _, p, o in seed if p == "deployments" and
                  o["metadata"]["name"] == "coredns")
    assert deploy["spec"]["replicas"] == 2
    term = deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term == {"labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    "topologyKey": "kubernetes.io/hostname"}


@pytest.mark.parametrize(("args", "message"), [
    (("--dns-replicas", "4"), "--dns-replicas must be between 1 and the number of nodes (3), "
                              "got 4"),
    (("--dns-replicas", "0"), "--dns-replicas must be between 1 and the number of nodes"),
    (("--scenario", "dns-replica-mute", "--dns-replicas", "1"),
     "scenario dns-replica-mute needs --dns-replicas 2 or more"),
    (("--profile", "openshift-dns", "--dns-replicas", "2"),
     "profile openshift-dns: the cluster DNS openshift-dns/dns-default is a DaemonSet"),
])
def test_lab_up_refuses_bad_dns_replicas(args: tuple[str, ...], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lab", "up", "--state-dir", str(tmp_path / "lab"), *args])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert not (tmp_path / "lab").exists()  # refused before anything was made


def test_peer_only_for_pair_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lab", "fault", "inject", "underlay-mtu", "--peer", "worker-1",
                 "--state-dir", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "netdoctor lab: underlay-mtu is not a pair fault: --peer applies to pair faults only")


def _dns_pod(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-dns"}},
            "spec": {"nodeName": node, "containers": [{"name": "coredns", "image": "coredns",
                                                        "ports": [{"containerPort": 53,
                                                                   "protocol": "UDP"}]}]}}


@pytest.mark.parametrize(("pods", "node", "message"), [
    ([("coredns-a", "worker-1")], "worker-1",
     "dns-replica-mute needs at least 2 DNS replicas, the lab has 1 (lab up --dns-replicas 2)"),
    ([("coredns-a", "worker-1"), ("coredns-b", "control-plane")], "worker-2",
     "no DNS replica runs on worker-2; replicas on control-plane, worker-1"),
])
def test_replica_mute_refuses_in_one_line(pods: list[tuple[str, str]], node: str, message: str,
                                          tmp_path: Path) -> None:
    store = Store()
    store.create(resource("", "namespaces"), {"metadata": {"name": "kube-system"}})
    for name, where in pods:
        store.create(resource("", "pods"), _dns_pod(name, where))
    ctx = faults.LabContext(store, lab_info(tmp_path, 2), pod_netns=lambda pod: "sandbox")
    mute = faults.FAULTS["dns-replica-mute"]
    with pytest.raises(faults.FaultNotApplicable) as err:
        asyncio.run(mute.inject(ctx, node))
    assert str(err.value) == message
