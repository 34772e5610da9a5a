"""MTU: a don't-fragment ping of exactly the pod MTU crosses every node pair."""

import pytest

from netdoctor.checks import (
    CheckFailed,
    PairId,
    ProbeSet,
    Validation,
    expect_ok,
    make_evidence,
    need_probe,
)

# the small pings of the pod paths tell an MTU blackhole from a path that is down
pytestmark = [pytest.mark.validate, pytest.mark.connectivity,
              pytest.mark.measures("mtu", "pod-paths")]


def test_pod_mtu(validation: Validation, probes: ProbeSet, node_pair: PairId) -> None:
    """Full-size packets pass where small ones do; "small pass, large vanish" is an MTU
    blackhole."""
    for n in (node_pair.source, node_pair.target):
        need_probe(probes, n)
    large = validation.mtu_ping.get(node_pair)
    if large is None or large.result.ok:
        expect_ok(f"MTU ping {node_pair}", large)
        return
    small = validation.pod_ping.get(node_pair)
    mtu, source = validation.mtu.get(node_pair.source, (0, ""))
    if small is None or small.passed == 0:
        pytest.skip(f"{node_pair}: small packets do not pass either (see test_pod_ping)")
    raise CheckFailed(
        f"MTU blackhole {node_pair}: small packets pass, {mtu}-byte packets vanish",
        [make_evidence(f"small packets pass ({small.ratio}), {mtu}-byte don't-fragment "
                       f"packets vanish", [f"pod MTU {mtu} from {source}",
                                           f"result: {large.result.error or 'no reply'}"],
                       command=large.command, attempts=large.attempts)])
