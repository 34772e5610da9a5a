"""Validate building blocks without a cluster: node findings on captured node facts, the
incident's ranking with a deleted Flannel DaemonSet, series judging, commands, echo specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.cluster.echo import Echo, EchoPod, echo_deployment_spec, echo_service_spec
from netdoctor.cluster.exec import Measured
from netdoctor.cluster.probes import ProbeSet
from netdoctor.cluster.profile import NodeInfo
from netdoctor.model import Attempt, CheckFailed, CheckResult, Evidence
from netdoctor.probes import nodechecks
from netdoctor.probes.parsers import PingResult
from netdoctor.probes.pathfindings import judge, need_echo
from netdoctor.probes.paths import Series, curl_argv, mtu_ping_argv, search_dns_argv
from netdoctor.rootcause import facts
from netdoctor.rootcause.collect import failing_by_signal, unmatched_selectors
from netdoctor.rootcause.model import NodeView, Observations, PodView
from netdoctor.rootcause.rules import rank

DATA = Path(__file__).parent.parent / "data" / "nodefacts"
INFO = {n: NodeInfo(n, True, False, (), ip, cidr, True) for n, ip, cidr in (
    ("control-plane", "192.168.4.10", "10.244.0.0/24"),
    ("worker-1", "192.168.4.11", "10.244.1.0/24"),
    ("worker-2", "192.168.4.12", "10.244.2.0/24"))}

PROBES = ProbeSet("netdoctor-run1", "run1")


def load(sample: str, node: str) -> facts.NodeFacts:
    return facts.parse(node, (DATA / f"{sample}.txt").read_text())


def test_healthy_node_has_no_findings() -> None:
    f = load("healthy-worker-1", "worker-1")
    peers = [i for n, i in INFO.items() if n != "worker-1"]
    assert nodechecks.iptables_backends(f, PROBES) == []
    assert nodechecks.cni_winner(f, "flannel", PROBES) == []
    assert nodechecks.bridge_subnet(f, INFO["worker-1"], PROBES) == []
    assert nodechecks.vxlan_peers(f, peers, PROBES) == []
    assert nodechecks.kernel(f, PROBES) == []


@pytest.mark.parametrize(("sample", "node", "finding", "words"), [
    ("mixed-backend-worker-1", "worker-1", "iptables_backends", "both iptables backends"),
    ("cni-shadowed-worker-2", "worker-2", "cni_winner", "00-bridge.conflist"),
    ("sysctls-off-worker-2", "worker-2", "kernel", "kernel prerequisites"),
])
def test_broken_node_findings(sample: str, node: str, finding: str, words: str) -> None:
    f = load(sample, node)
    args = {"iptables_backends": (f, PROBES), "cni_winner": (f, "flannel", PROBES),
            "kernel": (f, PROBES)}[finding]
    found = getattr(nodechecks, finding)(*args)
    assert found
    assert words in found[0].title


def test_bridge_conflict_named() -> None:
    f = load("bridge-conflict-worker-2", "worker-2")
    found = nodechecks.bridge_subnet(f, INFO["worker-2"], PROBES)
    assert found
    assert "cni0" in found[0].text


def test_pods_outside_cidr() -> None:
    found = nodechecks.pods_outside_cidr("worker-2", "10.244.2.0/24",
                                         [("a/x", "10.244.0.7"), ("a/y", "10.244.2.3")])
    assert [e.lines for e in found] == [("a/x 10.244.0.7",)]


def test_incident_blames_the_stray_config_not_the_deleted_daemonset() -> None:
    """CoreDNS on the shadowed worker: its crash loop belongs to that node, even though the
    Flannel DaemonSet is gone too and CoreDNS logs time out."""
    nodes = tuple(NodeView(n, i.internal_ip, i.pod_cidr) for n, i in INFO.items())
    signals = frozenset({"pod_connectivity_failed", "coredns_crashloop", "dns_timeouts",
                         "flannel_missing", "service_endpoints_missing"})
    observed = Observations(
        nodes=nodes, facts={"worker-2": load("cni-shadowed-worker-2", "worker-2")},
        pods=(PodView("kube-system", "coredns-1", "worker-2", "10.244.0.2",
                      component="coredns", crashlooping=True, ready=False),),
        signals=signals,
        failed_tests={s: (f"tests/t.py::t[worker-2-{s}]",) for s in signals},
        broken_pairs=(("worker-1", "worker-2"), ("worker-2", "worker-1")),
        coredns_logs="[ERROR] plugin/errors: read udp 10.244.0.2:1->192.168.4.1:53: i/o timeout",
        flannel_daemonset=False, flannel_expected=True,
        services_without_endpoints=("kube-system/kube-dns",))
    causes = rank(observed)
    assert (causes[0].id, causes[0].node) == ("cni-config-shadowed", "worker-2")
    flannel = next(c for c in causes if c.id == "flannel-missing")
    assert "coredns_crashloop" not in flannel.explains


def test_dns_failures_from_a_node_count_for_its_cause() -> None:
    nodes = tuple(NodeView(n, i.internal_ip, i.pod_cidr) for n, i in INFO.items())
    observed = Observations(
        nodes=nodes, facts={"worker-2": load("sysctls-off-worker-2", "worker-2")},
        signals=frozenset({"pod_connectivity_failed", "dns_timeouts"}),
        failed_tests={"pod_connectivity_failed": ("t::p[worker-1->worker-2]",),
                      "dns_timeouts": ("t::d[worker-2-cluster]", "t::d[worker-1-cluster]")},
        broken_pairs=(("worker-1", "worker-2"),))
    top = rank(observed)[0]
    assert (top.id, top.node) == ("ip-forward-off", "worker-2")
    assert "dns_timeouts" in top.explains
    assert "t::d[worker-1-cluster]" not in top.explains


def _ping(ok: bool) -> Measured[PingResult]:
    return Measured(PingResult(True, 1, int(ok), 0.0 if ok else 100.0),
                    (Attempt(("ping",), 0 if ok else 1),), "kubectl exec ... -- ping")


class _Rec:
    def __init__(self) -> None:
        self.items: list[Evidence] = []
        self.flaky = ""

    def extend(self, items: list[Evidence]) -> None:
        self.items.extend(items)

    def mark_flaky(self, reason: str) -> None:
        self.flaky = reason


def test_series_all_some_none() -> None:
    rec = _Rec()
    judge(rec, "ping a->b", Series((_ping(True),) * 3))
    assert (rec.flaky, rec.items) == ("", [])
    judge(rec, "ping a->b", Series((_ping(True), _ping(False), _ping(True))))
    assert rec.flaky == "ping a->b: 2/3 passed"
    assert rec.items
    with pytest.raises(CheckFailed, match="0/3 passed"):
        judge(rec, "ping a->b", Series((_ping(False),) * 3))


def test_commands() -> None:
    assert mtu_ping_argv("10.0.0.1", 1450, 2)[-3:] == ("-s", "1422", "10.0.0.1")
    assert "-k" in curl_argv("https://x/", 2, insecure=True)
    assert search_dns_argv("kubernetes.default", 2)[:2] == ("dig", "+search")


def test_echo_specs_are_labelled_and_pinned() -> None:
    d = echo_deployment_spec(node="worker-1", namespace="nd", run_id="abc123")
    s = echo_service_spec(namespace="nd", run_id="abc123")
    pod = d["spec"]["template"]
    assert pod["spec"]["nodeName"] == "worker-1"
    assert pod["metadata"]["labels"]["netdoctor.io/run-id"] == "abc123"
    assert s["spec"]["type"] == "NodePort"
    assert s["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert d["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_unmatched_selectors_and_failing_by_signal() -> None:
    pods = [{"metadata": {"namespace": "shop", "labels": {"app": "webapp"}}}]
    svcs = [{"metadata": {"namespace": "shop", "name": "web"},
             "spec": {"selector": {"app": "web"}}},
            {"metadata": {"namespace": "shop", "name": "ok"},
             "spec": {"selector": {"app": "webapp"}}}]
    assert unmatched_selectors(svcs, pods) == ("shop/web",)
    tests = [CheckResult("a", "failed", ("dns_timeouts",)),
             CheckResult("b", "passed", ("dns_timeouts",))]
    assert failing_by_signal(tests) == {"dns_timeouts": ("a",)}


def test_node_fact_commands_name_the_runs_own_node_probe() -> None:
    """In the run's own namespace the node probe is ``nodeprobe-NODE``; in a shared
    ``--probe-namespace`` its name carries the run id, and so does the reproduce command."""
    f = facts.parse("worker-1", "### sysctl\nnet/ipv4/ip_forward=0\n### end\n")
    own = nodechecks.kernel(f, ProbeSet("netdoctor-run1", "run1"))
    shared = nodechecks.kernel(f, ProbeSet("shared", "run1"))
    assert own
    assert own[0].command.startswith(
        "kubectl exec -n netdoctor-run1 nodeprobe-worker-1 -- ")
    assert shared
    assert shared[0].command.startswith(
        "kubectl exec -n shared nodeprobe-run1-worker-1 -- ")


def test_echo_pod_without_a_network_fails_its_paths_and_one_still_starting_skips() -> None:
    # The Event line as the kubelet words it: "SandBox" in the reason, "sandbox" in the text.
    sandbox = ("Warning FailedCreatePodSandBox: Failed to create pod sandbox: rpc error: code = "
               'Unknown desc = failed to setup network for sandbox "0a1b": plugin type="flannel" '
               "failed (add): failed to load flannel 'subnet.env' file")
    echo = Echo("netdoctor-run1", "run1", pods={
        "worker-1": EchoPod("worker-1", "echo-w1", "", False, "ContainerCreating", (sandbox,)),
        "worker-2": EchoPod("worker-2", "echo-w2", "", False, "ContainerCreating"),
        "control-plane": EchoPod("control-plane", "echo-cp", "10.244.0.7", True)})
    assert need_echo(echo, "control-plane") == "10.244.0.7"
    with pytest.raises((CheckFailed, pytest.skip.Exception)) as got:
        need_echo(echo, "worker-1")
    assert got.type is CheckFailed, got.value  # a skip would hide a node without a network
    assert str(got.value) == "no pod network on worker-1"
    with pytest.raises(pytest.skip.Exception, match="echo pod on worker-2 has no address"):
        need_echo(echo, "worker-2")
