"""Service endpoints for validation: every Service with a selector selects pods, and some are
ready (a selector matching no pod at all is named as such)."""

import pytest

from netdoctor.model import make_evidence
from netdoctor.probes.findings import expect_none, services_without_endpoints
from netdoctor.probes.observe import Observations
from netdoctor.probes.validate import Validation
from netdoctor.rootcause.collect import unmatched_selectors

pytestmark = [pytest.mark.validate, pytest.mark.services,
              pytest.mark.signal("service_endpoints_missing")]


def test_services_select_ready_pods(observations: Observations, validation: Validation) -> None:
    """No Service with a selector is left without a ready endpoint."""
    if "services" in observations.errors:
        pytest.skip(f"Services unreadable: {observations.errors['services']}")
    unmatched = set(unmatched_selectors(validation.services, validation.pods))
    found = [make_evidence(f"{ref}: its selector matches no pod", "label typo or pods gone",
                           command=f"kubectl get svc -n {ref.split('/')[0]} "
                                   f"{ref.split('/')[1]} -o yaml") for ref in sorted(unmatched)]
    found += [e for e in services_without_endpoints(observations.services)
              if e.title.split(":")[0] not in unmatched]
    expect_none(found, "Services without ready endpoints")
