"""Node facts parsed from real node-probe output, and the ranking of causes."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.rootcause import facts
from netdoctor.rootcause.model import NodeView, Observations, PodView
from netdoctor.rootcause.rules import rank

DATA = Path(__file__).parent.parent / "data" / "nodefacts"
NODES = (NodeView("control-plane", "192.168.4.10", "10.244.0.0/24"),
         NodeView("worker-1", "192.168.4.11", "10.244.1.0/24"),
         NodeView("worker-2", "192.168.4.12", "10.244.2.0/24"))


def load(sample: str, node: str) -> facts.NodeFacts:
    return facts.parse(node, (DATA / f"{sample}.txt").read_text())


def test_healthy_node_facts() -> None:
    f = load("healthy-worker-1", "worker-1")
    assert f.complete
    assert [c.name for c in f.cni_files] == ["10-flannel.conflist"]
    assert f.active_cni is not None
    assert f.active_cni.plugins == ("flannel", "portmap")
    assert f.flannel_subnet == "10.244.1.1/24"
    assert f.flannel_mtu == 1450
    assert f.addresses["flannel.1"] == ("10.244.1.0/32",)
    assert f.mtus["flannel.1"] == 1450
    assert {r.dst for r in f.routes if r.dev == "flannel.1"} == {"10.244.0.0/24", "10.244.2.0/24"}
    assert set(f.vxlan_neighbors) == {"10.244.0.0", "10.244.2.0"}
    assert sorted(f.vxlan_fdb.values()) == ["192.168.4.10", "192.168.4.12"]
    assert f.sysctls[facts.SYSCTL_IP_FORWARD] == "1"
    assert f.legacy_tables == ()
    assert f.kube_rules("legacy") == ()
    assert len(f.kube_rules("nft")) > 10
    assert not f.nft_incompatible


def test_mixed_backend_facts() -> None:
    f = load("mixed-backend-worker-1", "worker-1")
    assert f.legacy_tables == ("nat",)
    assert any("10.96.0.10" in r for r in f.kube_rules("legacy"))
    assert any("legacy tables present" in w for w in f.nft_warnings)


def test_truncated_output_is_incomplete() -> None:
    text = (DATA / "healthy-worker-1.txt").read_text()
    f = facts.parse("worker-1", text[: len(text) // 3])
    assert not f.complete


def obs(**kw: object) -> Observations:
    base: dict[str, object] = {"nodes": NODES, "facts": {}, "signals": frozenset()}
    base.update(kw)
    return Observations(**base)  # type: ignore[arg-type]


def test_healthy_cluster_has_no_cause() -> None:
    facts_by_node = {n: load(f"healthy-{n}", n) for n in ("worker-1", "worker-2")}
    assert rank(obs(facts=facts_by_node)) == []


@pytest.mark.parametrize(("sample", "node", "cause", "signal"), [
    ("mixed-backend-worker-1", "worker-1", "iptables-mixed-backend", "dns_timeouts"),
    ("netfilter-broken-worker-2", "worker-2", "netfilter-unmanageable", "kube_proxy_restarts"),
    ("bridge-conflict-worker-2", "worker-2", "cni-bridge-conflict", "pod_connectivity_failed"),
    ("sysctls-off-worker-2", "worker-2", "ip-forward-off", "pod_connectivity_failed"),
    ("flannel-missing-worker-2", "worker-2", "vxlan-incomplete", "pod_connectivity_failed"),
], ids=lambda v: str(v))
def test_single_node_fault_is_named_on_its_node(sample: str, node: str, cause: str,
                                                signal: str) -> None:
    f = load(sample, node)
    found = rank(obs(facts={node: f}, signals=frozenset({signal}),
                     failed_tests={signal: (f"tests/test_x.py::t[{node}]",)}))
    assert found, "no cause found"
    assert (found[0].id, found[0].node) == (cause, node)
    assert signal in found[0].explains
    assert f"tests/test_x.py::t[{node}]" in found[0].explains


def test_problem_statement_names_the_shadowing_config_first() -> None:
    shadowed = load("cni-shadowed-worker-2", "worker-2")
    pods = (PodView("kube-system", "coredns-x", "worker-2", "10.244.0.5", component="coredns",
                    crashlooping=True, ready=False),)
    signals = frozenset({"coredns_crashloop", "dns_timeouts", "service_endpoints_missing",
                         "pod_connectivity_failed", "flannel_missing", "kube_proxy_restarts"})
    found = rank(obs(facts={"worker-2": shadowed}, pods=pods, signals=signals,
                     broken_pairs=(("worker-2", "worker-1"),),
                     services_without_endpoints=("kube-system/kube-dns",),
                     coredns_logs="[ERROR] plugin/errors: 2 example.com. A: read udp "
                                  "10.244.0.5:4000->192.168.4.1:53: i/o timeout"))
    top = found[0]
    assert (top.id, top.node) == ("cni-config-shadowed", "worker-2")
    assert {"coredns_crashloop", "pod_connectivity_failed",
            "service_endpoints_missing"} <= set(top.explains)
    assert any("10.244.0.5" in e for e in top.evidence)
    assert any("00-bridge.conflist" in e for e in top.evidence)
