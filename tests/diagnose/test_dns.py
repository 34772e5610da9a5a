"""DNS: lookups through the cluster DNS (the DNS Service, or the pods' resolv.conf
nameserver) answer from every node; CoreDNS reaches its upstream."""

import pytest

from netdoctor.checks import (
    ComponentState,
    NotObserved,
    Observations,
    ProbeSet,
    dns_failures,
    expect_none,
    log_timeouts,
    probe_missing,
)

pytestmark = [pytest.mark.diagnose, pytest.mark.dns, pytest.mark.signal("dns_timeouts")]


def test_cluster_dns_answers(observations: Observations, probes: ProbeSet, node: str) -> None:
    """From a pod on ``node``, the cluster name and the external name resolve via the cluster
    DNS."""
    if node not in probes.ready:
        failure = probes.failed.get(node)
        missing = probe_missing(node, failure, probes.skipped_nodes.get(node, ""))
        if failure is None or not failure.network_setup_failed:
            raise NotObserved(missing.title)  # no probe for a reason other than the network
        expect_none([missing], f"cannot look up names from {node}")
    if "probes" in observations.errors and not any(q.node == node for q in observations.dns):
        raise NotObserved(f"lookups from {node} not measured: {observations.errors['probes']}")
    expect_none(dns_failures(observations.dns, node), f"DNS lookups from {node} fail")


def test_coredns_reaches_upstream(coredns: ComponentState) -> None:
    """CoreDNS logs no ``i/o timeout`` towards its upstream or the API."""
    if coredns.error:
        raise NotObserved(coredns.error)
    expect_none(log_timeouts(coredns), "CoreDNS times out")
