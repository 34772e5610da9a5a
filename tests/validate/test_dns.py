"""DNS end to end from every node: through the cluster DNS, at every CoreDNS replica, an
external name, and a short name through the pod's search path."""

import pytest

from netdoctor.checks import ProbeSet, Settings, Validation, expect_none, need_probe, not_ok

pytestmark = [pytest.mark.validate, pytest.mark.dns, pytest.mark.signal("dns_timeouts"),
              pytest.mark.measures("dns")]


@pytest.mark.parametrize("kind", ["cluster", "service", "replica", "external", "search-path"])
def test_dns(validation: Validation, probes: ProbeSet, node: str, kind: str,
             settings: Settings) -> None:
    """Every lookup of this kind from a pod on ``node`` resolves."""
    if kind == "external" and settings.offline:
        pytest.skip("--offline: no external name is resolved")
    need_probe(probes, node)
    cases = [c for c in validation.dns if c.node == node and c.kind.split()[0] == kind]
    if not cases:
        pytest.skip(f"no {kind} lookup was made from {node}")
    expect_none(not_ok([(f"{c} ({c.kind}) from {node}", validation.dns[c]) for c in cases]),
                f"{kind} DNS from {node} fails")
