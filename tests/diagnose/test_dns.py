"""DNS: lookups through the kube-dns ClusterIP answer from every node; CoreDNS reaches its
upstream."""

import pytest

from netdoctor.cluster.probes import ProbeSet
from netdoctor.probes.components import ComponentState
from netdoctor.probes.findings import dns_failures, expect_none, log_timeouts, probe_missing
from netdoctor.probes.observe import Observations

pytestmark = [pytest.mark.diagnose, pytest.mark.dns, pytest.mark.signal("dns_timeouts")]


def test_cluster_dns_answers(observations: Observations, probes: ProbeSet, node: str) -> None:
    """From a pod on ``node``, the cluster name and the external name resolve via kube-dns."""
    if node not in probes.ready:
        expect_none([probe_missing(node, probes.failed.get(node),
                                   probes.skipped_nodes.get(node, ""))],
                    f"cannot look up names from {node}")
    expect_none(dns_failures(observations.dns, node), f"DNS lookups from {node} fail")


def test_coredns_reaches_upstream(coredns: ComponentState) -> None:
    """CoreDNS logs no ``i/o timeout`` towards its upstream or the API."""
    if coredns.error:
        pytest.skip(coredns.error)
    expect_none(log_timeouts(coredns), "CoreDNS times out")
