"""Services: every Service with a selector has at least one ready endpoint."""

import pytest

from netdoctor.model import NotObserved
from netdoctor.probes.findings import expect_none, services_without_endpoints
from netdoctor.probes.observe import Observations

pytestmark = [pytest.mark.diagnose, pytest.mark.services,
              pytest.mark.signal("service_endpoints_missing")]


def test_services_have_endpoints(observations: Observations) -> None:
    """Selector-less Services and --ignore-service entries are not expected to have any."""
    if "services" in observations.errors:
        raise NotObserved(f"Services unreadable: {observations.errors['services']}")
    expect_none(services_without_endpoints(observations.services),
                "Services have no ready endpoints")
