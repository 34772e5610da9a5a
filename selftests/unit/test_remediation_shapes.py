"""Remediation never acts on a shape it does not understand: on k3s's embedded Flannel, a
non-Flannel CNI, a Multus config in front of the CNI, or an IPAM that does not use node
podCIDRs, the hooks plan manual steps with the reason, never the change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from remediation._common import HookOptions, evicted
from remediation.cni import FlannelDaemonSet, StrayCniConfig
from remediation.kube_proxy import KubeProxyRestart
from remediation.node_cni_state import PodsOutsidePodCidr
from selftests import shapes as s
from selftests.fakecontext import FakeContext, pod, sample

NODES = {"worker-1": "10.244.1.0/24", "worker-2": "10.244.2.0/24"}
FLANNEL_CONF = {"name": "cbr0", "cniVersion": "0.3.1",
                "plugins": [{"type": "flannel"}, {"type": "portmap"}]}
# k8snetworkplumbingwg/multus-cni: the thick plugin's 00-multus.conf names its delegate.
MULTUS = {"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus-shim",
          "clusterNetwork": "/host/etc/cni/net.d/10-flannel.conflist"}
STRAY = {"cniVersion": "0.3.1", "name": "bridge", "plugins": [
    {"type": "bridge", "bridge": "cbr0", "ipam": {"type": "host-local",
                                                  "subnet": "10.244.0.0/24"}}]}
# projectcalico/calico manifests/calico.yaml: calico-ipam hands out /26 blocks.
CALICO_CONF = {"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": [
    {"type": "calico", "ipam": {"type": "calico-ipam"}}, {"type": "portmap"}]}


def opts(cni: str = "flannel") -> HookOptions:
    return HookOptions(run_id="r1", flannel_manifest=Path("/m/kube-flannel.yml"), cni=cni)


def cni_files(files: dict[str, dict[str, Any]], node: str = "worker-1") -> list[str]:
    lines = sample(f"healthy-{node}")
    start, end = lines.index("### cni-files") + 1, lines.index("### cni-bin")
    body = ["+++ /host/etc/cni/net.d"]
    for name, conf in files.items():
        body += [f"--- {name}", json.dumps(conf)]
    lines[start:end] = body
    return lines


def ctx_with(daemonsets: list[dict[str, Any]], configmaps: list[dict[str, Any]] = (),  # type: ignore[assignment]
             facts: dict[str, list[str]] | None = None) -> FakeContext:
    return FakeContext(nodes_=dict(NODES),
                       objects={"daemonsets": list(daemonsets), "configmaps": list(configmaps),
                                "pods": []},
                       facts=facts or {n: sample(f"healthy-{n}") for n in NODES})


def test_no_flannel_manifest_where_flannel_is_embedded() -> None:
    ctx = ctx_with([s.KUBE_PROXY_DS])  # k3s: no Flannel DaemonSet, no Flannel ConfigMap
    [plan] = FlannelDaemonSet(opts()).plan(ctx)
    assert plan.actions == ()
    assert "runs inside the node agent" in plan.manual
    assert ctx.manifests == []


def test_no_flannel_manifest_where_the_cni_is_another() -> None:
    ctx = ctx_with([s.KUBE_PROXY_DS], [s.FLANNEL_CM])
    [plan] = FlannelDaemonSet(opts("calico")).plan(ctx)
    assert plan.actions == ()
    assert "calico, not Flannel" in plan.manual
    assert FlannelDaemonSet(opts("calico")).plan(ctx_with([s.CALICO_NODE])) == []


def test_flannel_manifest_where_its_daemonset_install_lost_the_daemonset() -> None:
    [plan] = FlannelDaemonSet(opts()).plan(ctx_with([s.KUBE_PROXY_DS], [s.FLANNEL_CM]))
    assert plan.actions[0].command.startswith("kubectl create -f /m/kube-flannel.yml")


def test_multus_delegating_to_the_cni_is_never_moved() -> None:
    facts = {"worker-1": cni_files({"00-multus.conf": MULTUS,
                                    "10-flannel.conflist": FLANNEL_CONF}),
             "worker-2": sample("healthy-worker-2")}
    assert StrayCniConfig(opts()).plan(ctx_with([s.FLANNEL_DS], facts=facts)) == []


def test_multus_delegating_elsewhere_is_a_manual_step() -> None:
    meta = MULTUS | {"clusterNetwork": "bridge"}
    facts = {"worker-1": cni_files({"00-multus.conf": meta, "01-bridge.conflist": STRAY,
                                    "10-flannel.conflist": FLANNEL_CONF}),
             "worker-2": sample("healthy-worker-2")}
    [plan] = StrayCniConfig(opts()).plan(ctx_with([s.FLANNEL_DS], facts=facts))
    assert plan.actions == ()
    assert "00-multus.conf on worker-1 is a meta-plugin" in plan.manual
    assert "/etc/cni/net.d/01-bridge.conflist" in plan.manual


def test_a_stray_before_multus_is_moved_and_multus_stays() -> None:
    facts = {"worker-1": cni_files({"00-bridge.conflist": STRAY, "05-multus.conf": MULTUS,
                                    "10-flannel.conflist": FLANNEL_CONF}),
             "worker-2": sample("healthy-worker-2")}
    ctx = ctx_with([s.FLANNEL_DS], facts=facts)
    [plan] = StrayCniConfig(opts()).plan(ctx)
    assert [a.command.split()[-2] for a in plan.actions] == [
        "/host/etc/cni/net.d/00-bridge.conflist"]
    StrayCniConfig(opts()).apply(ctx, plan)
    assert StrayCniConfig(opts()).verify(ctx, plan) is None


def test_no_pod_deleted_where_ipam_is_not_the_podcidr() -> None:
    facts = {n: cni_files({"10-calico.conflist": CALICO_CONF}, n) for n in NODES}
    ctx = ctx_with([s.CALICO_NODE], facts=facts)
    ctx.objects["pods"] = [pod("shop", "web-1", "worker-1", {"app": "web"}, "192.168.77.5")]
    [plan] = PodsOutsidePodCidr(opts("calico")).plan(ctx)
    assert plan.actions == ()
    assert "calico-ipam" in plan.manual
    assert "no pod is deleted" in plan.manual


def test_pods_outside_podcidr_evicted_where_flannel_allocates_from_it() -> None:
    ctx = ctx_with([s.FLANNEL_DS])
    ctx.objects["pods"] = [pod("shop", "web-1", "worker-1", {"app": "web"}, "10.244.0.5")]
    [plan] = PodsOutsidePodCidr(opts()).plan(ctx)
    assert [evicted(a) for a in plan.actions] == [("shop", "web-1")]


def test_kube_proxy_static_pods_are_not_a_missing_daemonset() -> None:
    ctx = ctx_with([s.RKE2_CANAL])
    ctx.objects["pods"] = [s.mirror_pod("kube-proxy", n, s.RKE2_PROXY_LABELS,
                                        "rancher/hardened-kubernetes:v1.30.4-rke2r1")
                           for n in NODES]
    [plan] = KubeProxyRestart(opts("canal")).plan(ctx)
    assert plan.actions == ()
    assert "static pods (on worker-1, worker-2)" in plan.manual
    assert "kubeadm" not in plan.manual


def test_kube_proxy_replaced_by_cilium_plans_nothing() -> None:
    ctx = ctx_with([s.CILIUM], [s.CILIUM_CONFIG])
    assert KubeProxyRestart(opts("cilium")).plan(ctx) == []


CILIUM_CONF = {"cniVersion": "0.3.1", "name": "cilium", "plugins": [{"type": "cilium-cni"}]}


def test_a_guessed_cni_gives_way_to_the_nodes_config() -> None:
    """The run could not name the CNI (its agent is gone) and guessed Flannel: the nodes'
    configs are Cilium's, so no Flannel manifest, and the stray before Cilium's is moved."""
    facts = {n: cni_files({"00-bridge.conflist": STRAY, "05-cilium.conflist": CILIUM_CONF}, n)
             for n in NODES}
    ctx = ctx_with([s.KUBE_PROXY_DS], facts=facts)
    [manual] = FlannelDaemonSet(opts()).plan(ctx)
    assert "the cluster's CNI is cilium, not Flannel" in manual.manual
    plans = StrayCniConfig(opts()).plan(ctx)
    assert [p.actions[0].command.split()[-2] for p in plans] == [
        "/host/etc/cni/net.d/00-bridge.conflist"] * 2
    ctx.objects["pods"] = [pod("kube-system", "coredns-x", "worker-2", {"k8s-app": "kube-dns"},
                               "10.0.0.5")]
    [kept] = PodsOutsidePodCidr(opts()).plan(ctx)
    assert "cilium does not allocate pod addresses from node podCIDRs" in kept.manual
