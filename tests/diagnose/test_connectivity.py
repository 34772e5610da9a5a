"""Pod-to-pod connectivity: a probe pod on each node reaches the probe on every other node."""

import pytest

from netdoctor.checks import (
    NotObserved,
    Observations,
    PairId,
    ProbeSet,
    expect_none,
    ping_failure,
    probe_missing,
)

pytestmark = [pytest.mark.diagnose, pytest.mark.connectivity,
              pytest.mark.signal("pod_connectivity_failed"), pytest.mark.requires(nodes=2)]


def test_pod_to_pod(observations: Observations, probes: ProbeSet, node_pair: PairId) -> None:
    """A ping from the probe on the source node to the probe on the target node is answered."""
    missing = [probe_missing(n, probes.failed.get(n), probes.skipped_nodes.get(n, ""))
               for n in (node_pair.source, node_pair.target) if n not in probes.ready]
    if missing and not any(f.network_setup_failed for f in probes.failed.values()
                           if f.node in (node_pair.source, node_pair.target)):
        raise NotObserved("; ".join(e.title for e in missing))  # not a network finding
    expect_none(missing, f"no pod network on {node_pair}")
    src, dst = probes.ready[node_pair.source], probes.ready[node_pair.target]
    measured = observations.pings.get(node_pair)
    if measured is None:
        raise NotObserved(f"ping {node_pair} not measured: "
                          + observations.errors.get("probes", "the pass ended early"))
    expect_none(ping_failure(node_pair, measured, observations.profile, src.ip, dst.ip),
                f"{node_pair}: no reply")
