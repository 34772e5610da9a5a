"""Discovery by role over the object shapes of real distributions (selftests/shapes.py names
each source): the CNI, kube-proxy and the cluster DNS as each distribution runs them, the
profile completed by node facts, the signals that cannot apply and the checks' requirements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from netdoctor.cluster.applicability import Requirement, not_applicable, refine, unmet
from netdoctor.cluster.profile import ClusterProfile, build_profile
from netdoctor.cluster.roles import cni_family_of, family_of_types, image_name
from netdoctor.probes.components import ComponentState
from netdoctor.probes.findings import kube_proxy_on_node
from netdoctor.rootcause import facts as nodefacts
from selftests import shapes as s
from selftests.fakecontext import sample

NODES = [s.node("server-1", "10.42.0.0/24"), s.node("agent-1", "10.42.1.0/24"),
         s.node("agent-2", "10.42.2.0/24")]


def profile(*, daemonsets: Sequence[dict[str, Any]] = (),
            deployments: Sequence[dict[str, Any]] = (s.COREDNS,),
            services: Sequence[dict[str, Any]] = (), configmaps: Sequence[dict[str, Any]] = (),
            pods: Sequence[dict[str, Any]] = (),
            nodes: Sequence[dict[str, Any]] = tuple(NODES)) -> ClusterProfile:
    return build_profile("https://api", nodes, daemonsets, deployments,
                         services or [s.kube_dns("10.96.0.10")], configmaps, pods)


def facts_of(name: str, node: str = "worker-1", **edits: list[str]) -> nodefacts.NodeFacts:
    """A captured node-facts sample with sections replaced."""
    lines = sample(name)
    for section, body in edits.items():
        start = lines.index(f"### {section.replace('_', '-')}") + 1
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("### "))
        lines[start:end] = body
    return nodefacts.parse(node, "\n".join(lines))


def test_image_names() -> None:
    assert image_name("docker.io/calico/node:v3.28.0") == "node"
    assert image_name("602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1") == \
        "amazon-k8s-cni"


@pytest.mark.parametrize(("ds", "family"), [
    (s.FLANNEL_DS, "flannel"), (s.RKE2_CANAL, "canal"), (s.CALICO_NODE, "calico"),
    (s.CILIUM, "cilium"), (s.AWS_NODE, "aws-vpc-cni"), (s.KINDNET, "kindnet"),
    (s.CILIUM_ENVOY, ""), (s.KUBE_PROXY_DS, ""), (s.MULTUS, ""), (s.OPENSHIFT_DNS, "")],
    ids=lambda x: x if isinstance(x, str) else x["metadata"]["name"])
def test_cni_agents_by_images_labels_and_containers(ds: dict[str, Any], family: str) -> None:
    assert cni_family_of(ds) == family


def test_kubeadm_flannel() -> None:
    p = profile(daemonsets=[s.FLANNEL_DS, s.KUBE_PROXY_DS], configmaps=[s.KUBE_PROXY_CM])
    assert (p.cni, p.cni_embedded, p.kube_proxy_runs, p.kube_proxy_mode) == \
        ("flannel", False, "daemonset", "iptables")
    assert p.flannel is not None
    assert p.flannel.ref == "DaemonSet kube-flannel/kube-flannel-ds"
    assert p.coredns is not None
    assert p.coredns.ref == "Deployment kube-system/coredns"
    assert (p.dns_service, p.dns_service_ip) == ("kube-system/kube-dns", "10.96.0.10")
    assert p.ipam_from_podcidr
    assert not_applicable(p) == {}


def test_kubeadm_flannel_daemonset_deleted_is_missing_not_embedded() -> None:
    """The DaemonSet's own ConfigMap outlives it: Flannel was a DaemonSet, and is gone."""
    annotated = [s.node(f"n{i}", f"10.244.{i}.0/24", s.K3S_FLANNEL_ANNOTATIONS) for i in range(3)]
    p = profile(daemonsets=[s.KUBE_PROXY_DS], configmaps=[s.FLANNEL_CM], nodes=annotated)
    assert (p.cni, p.cni_agent, p.cni_embedded) == ("flannel", None, False)
    assert "kube-flannel/kube-flannel-cfg" in p.cni_reason


def test_k3s_embedded_flannel_and_kube_proxy_need_node_facts() -> None:
    annotated = [s.node(f"k3s-{i}", f"10.42.{i}.0/24", s.K3S_FLANNEL_ANNOTATIONS)
                 for i in range(3)]
    p = profile(nodes=annotated, services=[s.kube_dns("10.43.0.10")])
    assert (p.cni, p.cni_agent, p.cni_embedded, p.kube_proxy_runs) == \
        ("flannel", None, None, "undecided")
    healthy = {f"k3s-{i}": facts_of("healthy-worker-1", f"k3s-{i}") for i in range(3)}
    done = refine(p, healthy)
    assert (done.cni_embedded, done.kube_proxy_runs, done.node_facts) == (True, "embedded", "read")
    assert done.kube_proxy_nodes == ("k3s-0", "k3s-1", "k3s-2")
    assert "inside the node agent" in done.cni_reason
    assert not_applicable(done) == {}  # embedded components can still fail, on the nodes
    assert unmet(Requirement(("cni-agent",)), done).startswith("needs cni-agent")
    assert unmet(Requirement(("kube-proxy",)), done) == ""
    # The embedded Flannel stopped on one node: not embedded-and-healthy any more.
    stopped = dict(healthy, **{"k3s-2": facts_of("flannel-missing-worker-2", "k3s-2")})
    broken = refine(p, stopped)
    assert broken.cni_embedded is False
    assert "not on k3s-2" in broken.cni_reason
    # iptables unmanageable on one node: the embedded kube-proxy cannot sync there.
    blocked = refine(p, dict(healthy, **{"k3s-1": facts_of("netfilter-broken-worker-2",
                                                             "k3s-1")}))
    assert blocked.kube_proxy_blocked == ("k3s-1",)
    found = kube_proxy_on_node(blocked, ComponentState(None, (), {}, {}), "k3s-1")
    assert [e.title for e in found] == ["k3s-1: iptables cannot manage the node's tables"]
    assert kube_proxy_on_node(blocked, ComponentState(None, (), {}, {}), "k3s-0") == []


def test_rke2_canal_static_kube_proxy_and_rke2_coredns() -> None:
    pods = [s.mirror_pod("kube-proxy", n["metadata"]["name"], s.RKE2_PROXY_LABELS,
                         "rancher/hardened-kubernetes:v1.30.4-rke2r1") for n in NODES]
    p = profile(daemonsets=[s.RKE2_CANAL], deployments=[s.RKE2_COREDNS],
                services=[s.RKE2_DNS_SVC], pods=pods)
    assert (p.cni, p.kube_proxy_runs) == ("canal", "static")
    assert p.kube_proxy is not None
    assert p.kube_proxy.selector == "component=kube-proxy"
    assert p.kube_proxy.kind == "StaticPod"
    assert p.flannel is None
    assert p.coredns is not None
    assert p.coredns.name == "rke2-coredns-rke2-coredns"
    assert p.dns_service_ip == "10.43.0.10"
    assert p.ipam_from_podcidr


def test_gke_mirror_pods_count_as_static() -> None:
    pods = [s.mirror_pod("kube-proxy", "gke-pool-1", s.GKE_PROXY_LABELS,
                         "gke.gcr.io/kube-proxy-amd64:v1.29.6-gke.1")]
    p = profile(daemonsets=[s.CALICO_NODE], pods=pods)
    assert p.kube_proxy_runs == "static"


def test_calico_routed_ipam_is_not_podcidr() -> None:
    p = profile(daemonsets=[s.CALICO_NODE, s.KUBE_PROXY_DS])
    assert (p.cni, p.ipam_from_podcidr, p.kube_proxy_runs) == ("calico", False, "daemonset")
    assert p.cni_agent is not None
    assert p.cni_agent.namespace == "calico-system"


def test_calico_ebpf_replaces_kube_proxy() -> None:
    ebpf = s.daemonset("calico-system", "calico-node", {"k8s-app": "calico-node"}, [
        {"name": "calico-node", "image": "docker.io/calico/node:v3.28.0",
         "env": [{"name": "FELIX_BPFENABLED", "value": "true"}]}])
    p = profile(daemonsets=[ebpf])
    assert p.kube_proxy_runs == "replaced"
    assert "eBPF" in p.kube_proxy_reason
    assert set(not_applicable(p)) == {"kube_proxy_restarts"}


def test_cilium_kube_proxy_replacement() -> None:
    p = profile(daemonsets=[s.CILIUM_ENVOY, s.CILIUM], configmaps=[s.CILIUM_CONFIG])
    assert (p.cni, p.kube_proxy_runs, p.ipam_from_podcidr) == ("cilium", "replaced", False)
    assert p.cni_agent is not None
    assert p.cni_agent.name == "cilium"
    reasons = not_applicable(p)
    assert "kube-proxy-replacement=true" in reasons["kube_proxy_restarts"]
    assert unmet(Requirement(("kube-proxy",)), p).startswith("needs kube-proxy: kube-proxy is "
                                                             "absent by design")


def test_kube_proxy_gone_with_its_configmap_left_is_missing() -> None:
    p = profile(daemonsets=[s.FLANNEL_DS], configmaps=[s.KUBE_PROXY_CM])
    assert p.kube_proxy_runs == "missing"
    assert "kube-system/kube-proxy" in p.kube_proxy_reason


def test_no_pods_no_rules_no_replacement_is_missing() -> None:
    p = profile(daemonsets=[s.FLANNEL_DS])
    flushed = facts_of("healthy-worker-1", nft_save=["*nat", "COMMIT"])
    done = refine(p, {"worker-1": flushed})
    assert done.kube_proxy_runs == "missing"


def test_multus_is_a_meta_plugin_in_front_of_the_cni() -> None:
    p = profile(daemonsets=[s.MULTUS, s.FLANNEL_DS, s.KUBE_PROXY_DS])
    assert p.cni == "flannel"
    assert [w.name for w in p.cni_meta] == ["kube-multus-ds"]


@pytest.mark.parametrize(("ds", "cni"), [(s.AWS_NODE, "aws-vpc-cni"), (s.KINDNET, "kindnet")])
def test_managed_and_kind_cnis(ds: dict[str, Any], cni: str) -> None:
    p = profile(daemonsets=[ds, s.KUBE_PROXY_DS])
    assert p.cni == cni
    assert p.ipam_from_podcidr == (cni == "kindnet")


def test_openshift_dns_daemonset_behind_dns_default() -> None:
    p = profile(daemonsets=[s.OPENSHIFT_DNS], deployments=[],
                services=[s.OPENSHIFT_DNS_SVC])
    assert p.coredns is not None
    assert p.coredns.ref == "DaemonSet openshift-dns/dns-default"
    assert p.coredns.selector == "dns.operator.openshift.io/daemonset-dns=default"
    assert (p.dns_service, p.dns_service_ip) == ("openshift-dns/dns-default", "172.30.0.10")


def test_unknown_cni_is_not_flannel_and_its_signal_does_not_apply() -> None:
    p = profile(daemonsets=[s.KUBE_PROXY_DS])
    assert p.cni == "unknown"
    assert not p.ipam_from_podcidr
    assert "not identified" in not_applicable(p)["flannel_missing"]
    assert unmet(Requirement(("cni-agent",)), p)


def test_cni_read_from_the_nodes_config_when_no_agent_names_it() -> None:
    calico_conf = ['+++ /host/etc/cni/net.d', "--- 10-calico.conflist",
                   '{"name": "k8s-pod-network", "plugins": [{"type": "calico", "ipam": '
                   '{"type": "calico-ipam"}}, {"type": "portmap"}]}']
    p = profile(daemonsets=[s.KUBE_PROXY_DS])
    done = refine(p, {"worker-1": facts_of("healthy-worker-1", cni_files=calico_conf)})
    assert done.cni == "calico"
    assert done.cni_agent is None
    assert done.cni_embedded is False  # the calico-node DaemonSet is gone, not embedded
    assert "flannel_missing" not in not_applicable(done)


def test_family_of_plugin_types() -> None:
    assert family_of_types(["cilium-cni"]) == "cilium"
    assert family_of_types(["calico", "flannel"]) == "canal"
    assert family_of_types(["ptp", "portmap"]) == "kindnet"
    assert family_of_types(["bridge"]) == ""


def test_one_node_cannot_show_pod_to_pod_failures() -> None:
    p = profile(daemonsets=[s.FLANNEL_DS, s.KUBE_PROXY_DS], nodes=NODES[:1])
    assert "at least 2 Ready nodes" in not_applicable(p)["pod_connectivity_failed"]
    assert unmet(Requirement(nodes=2), p) == "needs at least 2 Ready nodes, found 1"


def test_requirements_parsed_from_the_marker() -> None:
    req = Requirement.from_marker(("cni-agent",), {"cni": "flannel", "node_probes": True})
    assert req == Requirement(("cni-agent",), ("flannel",), 0, True)
    p = profile(daemonsets=[s.CALICO_NODE, s.KUBE_PROXY_DS])
    assert unmet(req, p) == "needs CNI flannel; the cluster's CNI is calico"
    assert unmet(Requirement(node_probes=True), p) == "needs node probes: no node probe ran"
    with pytest.raises(ValueError, match="unknown component"):
        Requirement.from_marker(("etcd",), {})
    with pytest.raises(ValueError, match="unknown keyword"):
        Requirement.from_marker((), {"cnis": "x"})


def test_cni_read_from_the_nodes_interfaces_when_the_config_says_nothing() -> None:
    routes = ['[{"dst": "10.244.64.3", "dev": "cali4d5f0e3a1b2", "scope": "link"}]']
    p = profile(daemonsets=[s.KUBE_PROXY_DS])
    done = refine(p, {"worker-1": facts_of("healthy-worker-1", cni_files=[], route=routes,
                                           addr=["[]"])})
    assert done.cni == "calico"
