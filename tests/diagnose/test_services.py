"""Services: every Service with a selector has at least one ready endpoint where pods are
wanted (a workload scaled to zero on purpose is not a fault)."""

import pytest

from netdoctor.checks import NotObserved, Observations, expect_none, services_without_endpoints

pytestmark = [pytest.mark.diagnose, pytest.mark.services,
              pytest.mark.signal("service_endpoints_missing")]


def test_services_have_endpoints(observations: Observations) -> None:
    """Selector-less Services and --ignore-service entries are not expected to have any."""
    if "services" in observations.errors:
        raise NotObserved(f"Services unreadable: {observations.errors['services']}")
    expect_none(services_without_endpoints(observations.services),
                "Services have no ready endpoints")
