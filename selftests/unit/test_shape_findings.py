"""What the suite concludes on each cluster shape: CNI configs where each distribution keeps
them, meta-plugins followed to their delegate, pod IPs judged only where IPAM uses podCIDRs,
Services scaled to zero, restarts in a window, the cluster domain from resolv.conf."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from netdoctor.cluster.probes import ProbeSet
from netdoctor.cluster.profile import Workload, build_profile
from netdoctor.probes.components import (
    ComponentState,
    events_by_pod,
    pod_state,
    service_endpoints,
)
from netdoctor.probes.findings import (
    TIMEOUT_LINES,
    log_timeouts,
    probe_failures_in_events,
    services_without_endpoints,
    unhealthy_pods,
)
from netdoctor.probes.nodechecks import cni_winner
from netdoctor.probes.parsers import parse_resolv_conf
from netdoctor.probes.paths import server_dns_argv
from netdoctor.probes.validate import Validation, replica_port
from netdoctor.rootcause import facts as nodefacts
from netdoctor.rootcause.model import NodeView, Observations, PodView
from netdoctor.rootcause.rules import rank
from selftests import shapes as s
from selftests.fakecontext import sample

PROBES = ProbeSet("netdoctor-run1", "run1")

FLANNEL_CONF = {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [
    {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
    {"type": "portmap", "capabilities": {"portMappings": True}}]}
# k8snetworkplumbingwg/multus-cni docs/how-to-use.md: the thin plugin's generated
# 00-multus.conf carries the first config inline in "delegates"; the thick plugin's names it
# with "clusterNetwork".
MULTUS_THIN = {"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus",
               "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
               "delegates": [FLANNEL_CONF]}
MULTUS_THICK = {"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus-shim",
                "clusterNetwork": "/host/etc/cni/net.d/10-flannel.conflist"}
# projectcalico/calico manifests/calico.yaml (cni_network_config): calico-ipam, not podCIDR.
CALICO_CONF = {"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": [
    {"type": "calico", "ipam": {"type": "calico-ipam"}}, {"type": "portmap"}]}
# cilium/cilium cilium-configmap.yaml: write-cni-conf-when-ready .../05-cilium.conflist.
CILIUM_CONF = {"cniVersion": "0.3.1", "name": "cilium", "plugins": [
    {"type": "cilium-cni", "enable-debug": False}]}


def conf_lines(files: dict[str, dict[str, Any]], where: str = "/host/etc/cni/net.d"
               ) -> list[str]:
    out = [f"+++ {where}"]
    for name, body in files.items():
        out += [f"--- {name}", json.dumps(body)]
    return out


def with_cni(lines: list[str], node: str = "worker-1") -> nodefacts.NodeFacts:
    base = sample("healthy-worker-1")
    start = base.index("### cni-files") + 1
    end = base.index("### cni-bin")
    base[start:end] = lines
    return nodefacts.parse(node, "\n".join(base))


def test_k3s_keeps_its_cni_config_in_its_own_directory() -> None:
    k3s_dir = "/host/var/lib/rancher/k3s/agent/etc/cni/net.d"
    f = with_cni(["+++ /host/etc/cni/net.d",
                  *conf_lines({"10-flannel.conflist": FLANNEL_CONF}, k3s_dir)])
    assert f.cni_dir == "/var/lib/rancher/k3s/agent/etc/cni/net.d"
    assert f.active_cni is not None
    assert f.active_cni.name == "10-flannel.conflist"
    assert f.serves("flannel")
    assert cni_winner(f, "flannel", PROBES) == []


@pytest.mark.parametrize("meta", [MULTUS_THIN, MULTUS_THICK], ids=["thin", "thick"])
def test_multus_first_delegating_to_the_cni_is_not_a_shadow(meta: dict[str, Any]) -> None:
    f = with_cni(conf_lines({"00-multus.conf": meta, "10-flannel.conflist": FLANNEL_CONF}))
    active = f.active_cni
    assert active is not None
    assert active.meta
    assert f.effective_types() == ("flannel", "portmap")
    assert f.owns(active, "flannel")
    assert cni_winner(f, "flannel", PROBES) == []
    causes = rank(Observations(nodes=(NodeView("worker-1", "192.168.4.11", "10.244.1.0/24"),),
                               facts={"worker-1": f},
                               signals=frozenset({"pod_connectivity_failed"})))
    assert "cni-config-shadowed" not in [c.id for c in causes]


def test_multus_delegating_to_a_stray_config_is_a_shadow() -> None:
    stray = {"cniVersion": "0.3.1", "name": "bridge", "plugins": [
        {"type": "bridge", "bridge": "cbr0", "ipam": {"type": "host-local",
                                                      "subnet": "10.244.0.0/24"}}]}
    f = with_cni(conf_lines({"00-multus.conf": MULTUS_THICK | {"clusterNetwork": "bridge"},
                             "01-bridge.conflist": stray, "10-flannel.conflist": FLANNEL_CONF}))
    found = cni_winner(f, "flannel", PROBES)
    assert found
    assert "meta-plugin delegating to 01-bridge.conflist" in found[0].lines[1]


@pytest.mark.parametrize(("files", "cni"), [
    ({"10-calico.conflist": CALICO_CONF}, "calico"),
    ({"05-cilium.conflist": CILIUM_CONF}, "cilium"),
    ({"10-canal.conflist": {"name": "k8s-pod-network", "plugins": [
        {"type": "calico", "ipam": {"type": "host-local", "subnet": "usePodCidr"}},
        {"type": "portmap"}]}}, "canal")], ids=["calico", "cilium", "canal"])
def test_each_cni_knows_its_plugin_type(files: dict[str, dict[str, Any]], cni: str) -> None:
    f = with_cni(conf_lines(files))
    assert cni_winner(f, cni, PROBES) == []
    assert cni_winner(f, "flannel", PROBES)  # and it is not Flannel's


def _pods_outside(ipam_from_podcidr: bool, cni: str) -> list[str]:
    f = with_cni(conf_lines({"10-calico.conflist": CALICO_CONF}))
    obs = Observations(
        nodes=(NodeView("worker-1", "192.168.4.11", "10.244.1.0/24"),),
        pods=(PodView("default", "web-1", "worker-1", "192.168.77.5"),),
        facts={"worker-1": f}, signals=frozenset({"pod_connectivity_failed"}),
        broken_pairs=(("worker-1", "worker-2"),), cni=cni,
        ipam_from_podcidr=ipam_from_podcidr)
    return [c.id for c in rank(obs)]


def test_calico_ipam_blocks_outside_podcidr_are_not_a_fault() -> None:
    assert _pods_outside(False, "calico") == []
    assert _pods_outside(True, "flannel")[0] == "cni-config-shadowed"  # calico wins on Flannel


def test_unknown_cni_is_not_ranked_as_flannel() -> None:
    assert _pods_outside(False, "unknown") == []


def test_missing_calico_agent_is_its_own_cause() -> None:
    obs = Observations(nodes=(NodeView("worker-1", "192.168.4.11", "10.244.1.0/24"),),
                       signals=frozenset({"flannel_missing", "pod_connectivity_failed"}),
                       cni="calico", cni_agent=False, ipam_from_podcidr=False)
    top = rank(obs)[0]
    assert top.id == "cni-agent-missing"
    assert "calico" in top.summary


def test_embedded_flannel_is_not_missing() -> None:
    healthy = nodefacts.parse("worker-1", "\n".join(sample("healthy-worker-1")))
    obs = Observations(nodes=(NodeView("worker-1", "192.168.4.11", "10.244.1.0/24"),),
                       facts={"worker-1": healthy}, signals=frozenset({"flannel_missing"}),
                       flannel_daemonset=False, flannel_expected=True, cni_agent=False,
                       cni_embedded=True)
    assert [c.id for c in rank(obs)] == []


def _svc(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return s.service("shop", name, selector, "10.96.40.1", port=80)


def test_service_of_a_workload_scaled_to_zero_is_not_a_fault() -> None:
    zero = s.deployment("shop", "web", {"app": "web"}, [{"name": "web"}], replicas=0)
    wanted = s.deployment("shop", "api", {"app": "api"}, [{"name": "api"}], replicas=2)
    found = service_endpoints(
        [_svc("web", {"app": "web"}), _svc("api", {"app": "api"}),
         _svc("typo", {"app": "wbe"})], [],
        workloads=[("Deployment", zero), ("Deployment", wanted)], pods=[])
    by = {f.name: f for f in found}
    assert (by["web"].wanted, by["web"].hurts) == (0, False)
    assert (by["api"].wanted, by["api"].hurts) == (2, True)
    assert by["typo"].matches_nothing
    assert by["typo"].hurts
    titles = [e.title for e in services_without_endpoints(found)]
    assert titles == ["shop/api: no ready endpoints", "shop/typo: no ready endpoints"]


def test_services_of_any_netdoctor_run_are_not_a_users_fault() -> None:
    # A concurrent run's echo Service before its pods are Ready, or a killed run's leftover
    # whose pods are gone: netdoctor's own, named by the leftovers report, not this check.
    own = s.service("netdoctor-e3d98b", "echo", {"netdoctor.io/echo": "yes"}, "10.96.0.2",
                    port=80)
    own["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "netdoctor",
                                 "netdoctor.io/run-id": "e3d98b"}
    found = service_endpoints([own, _svc("typo", {"app": "wbe"})], [], workloads=[], pods=[])
    assert [f.name for f in found] == ["typo"]


def _crashed(minutes_ago: float, waiting: str = "") -> dict[str, Any]:
    finished = f"2026-01-01T11:{60 - int(minutes_ago):02d}:00Z" if minutes_ago < 60 else \
        "2025-12-31T00:00:00Z"
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"namespace": "kube-system", "name": "coredns-x"},
            "spec": {"nodeName": "worker-1"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"restartCount": 7, "state": state,
                                              "lastState": {"terminated": {
                                                  "finishedAt": finished}}}]}}


NOON = 1767268800.0  # 2026-01-01T12:00:00Z


@pytest.mark.parametrize(("minutes_ago", "waiting", "flagged"), [
    (5, "", True), (600, "", False), (600, "CrashLoopBackOff", True)],
    ids=["recent", "old", "backing-off"])
def test_restarts_count_in_a_window_and_by_the_current_back_off(
        minutes_ago: float, waiting: str, flagged: bool) -> None:
    pod = pod_state(_crashed(minutes_ago, waiting))
    state = ComponentState(Workload("Deployment", "kube-system", "coredns", "k8s-app=kube-dns",
                                    ()), (pod,), {}, {})
    found = unhealthy_pods(state, restart_threshold=3, window=15 * 60, now=NOON)
    assert bool(found) == flagged


def test_cluster_domain_from_resolv_conf() -> None:
    r = parse_resolv_conf("search kube-system.svc.cluster.corp svc.cluster.corp cluster.corp\n"
                          "nameserver 172.30.0.10\noptions ndots:5\n")
    assert (r.nameserver, r.cluster_domain) == ("172.30.0.10", "cluster.corp")
    assert not parse_resolv_conf("# empty\n").conclusive


def test_component_events_only_from_the_window() -> None:
    events = [{"involvedObject": {"name": "coredns-x"}, "type": "Warning", "reason": "Unhealthy",
               "message": "Readiness probe failed: old", "lastTimestamp": "2025-12-31T00:00:00Z"},
              {"involvedObject": {"name": "coredns-x"}, "type": "Warning", "reason": "Unhealthy",
               "message": "Readiness probe failed: now", "lastTimestamp": "2026-01-01T11:58:00Z"}]
    recent = events_by_pod(events, {"coredns-x"}, NOON - 15 * 60)
    assert [line.split(": ", 2)[-1] for line in recent["coredns-x"]] == ["now"]
    assert len(events_by_pod(events, {"coredns-x"})["coredns-x"]) == 2


def test_probe_failures_while_starting_are_no_finding_once_ready() -> None:
    raw = _crashed(600)
    raw["status"]["conditions"] = [{"type": "Ready", "status": "True",
                                    "lastTransitionTime": "2026-01-01T11:50:00Z"}]
    pod = pod_state(raw)
    events = [{"involvedObject": {"name": "coredns-x"}, "type": "Warning", "reason": "Unhealthy",
               "message": "Readiness probe failed: starting",
               "lastTimestamp": "2026-01-01T11:50:00Z"}]
    started = ComponentState(None, (pod,), events_by_pod(events, {"coredns-x"}), {},
                             since_ready={"coredns-x": events_by_pod(
                                 events, {"coredns-x"}, (pod.ready_since or 0) + 1).get(
                                 "coredns-x", ())})
    assert probe_failures_in_events(started) == []
    later = [{**events[0], "lastTimestamp": "2026-01-01T11:55:00Z"}]
    blip = ComponentState(None, (pod,), {}, {}, since_ready=events_by_pod(
        later, {"coredns-x"}, (pod.ready_since or 0) + 1))
    assert probe_failures_in_events(blip) == []  # once, still Ready: a busy node, no finding
    flapping = ComponentState(None, (pod,), {}, {}, since_ready=events_by_pod(
        [{**later[0], "count": 3}], {"coredns-x"}, (pod.ready_since or 0) + 1))
    assert [e.title for e in probe_failures_in_events(flapping)] == [
        "kube-system/coredns-x: probe failures in Events"]
    unready = dataclasses.replace(pod, ready=False)
    failing = ComponentState(None, (unready,), {}, {}, since_ready=blip.since_ready)
    assert [e.title for e in probe_failures_in_events(failing)] == [
        "kube-system/coredns-x: probe failures in Events"]


def test_a_lost_upstream_packet_is_no_timeout_finding() -> None:
    line = "[ERROR] plugin/errors: 2 example.com. A: read udp 10.244.0.2:5->192.0.2.53:53: " \
           "i/o timeout"
    few = ComponentState(None, (), {}, {"coredns-x": (line,) * (TIMEOUT_LINES - 1)})
    assert log_timeouts(few) == []
    many = ComponentState(None, (), {}, {"coredns-x": (line,) * TIMEOUT_LINES})
    assert [e.title for e in log_timeouts(many)] == [
        f"coredns-x: {TIMEOUT_LINES} 'i/o timeout' log lines"]


def test_dns_replicas_asked_on_the_service_target_port() -> None:
    """openshift/cluster-dns-operator assets/dns/service.yaml: port 53 -> targetPort "dns";
    daemonset.yaml: the CoreDNS container's port named dns is 5353."""
    svc = {**s.OPENSHIFT_DNS_SVC, "spec": {**s.OPENSHIFT_DNS_SVC["spec"], "ports": [
        {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"}]}}
    p = build_profile("https://api", [s.node("n1", "10.128.0.0/23")], [s.OPENSHIFT_DNS], [],
                      [svc], [])
    replica = {"metadata": {"namespace": "openshift-dns", "name": "dns-default-a",
                            "labels": {"dns.operator.openshift.io/daemonset-dns": "default"}},
               "spec": {"containers": [{"name": "dns", "ports": [
                   {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]},
               "status": {"podIP": "10.128.0.3"}}
    v = Validation(plan=None, echo=None, node_probes=None,  # type: ignore[arg-type]
                   pods=[replica], services=[svc])
    assert replica_port(v, p) == 5353
    assert server_dns_argv("kubernetes.default.svc.cluster.local", "10.128.0.3", 2, 5353)[:4] \
        == ("dig", "@10.128.0.3", "-p", "5353")
