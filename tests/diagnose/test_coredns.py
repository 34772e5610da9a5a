"""CoreDNS: its pods run, are Ready, do not restart, and pass their probes."""

import pytest

from netdoctor.probes.components import ComponentState
from netdoctor.probes.findings import (
    expect_none,
    missing_workload,
    probe_failures_in_events,
    unhealthy_pods,
)

pytestmark = [pytest.mark.diagnose, pytest.mark.coredns, pytest.mark.signal("coredns_crashloop")]

RESTARTS = 3  # a CoreDNS restarting this often is crash-looping, whatever its state now


def test_coredns_pods_ready(coredns: ComponentState) -> None:
    """Every CoreDNS pod is Ready, not in CrashLoopBackOff, and has few restarts."""
    expect_none(missing_workload(coredns, "CoreDNS (k8s-app=kube-dns)")
                + unhealthy_pods(coredns, restart_threshold=RESTARTS),
                "CoreDNS is not healthy")


def test_coredns_probes_pass(coredns: ComponentState) -> None:
    """No readiness or liveness probe failures in the CoreDNS pods' Events."""
    expect_none(probe_failures_in_events(coredns), "CoreDNS fails its health probes")
