"""``@pytest.mark.measures(...)``: listed by ``pytest --markers``; a run measures the union of
what its selected checks that use the ``validation`` fixture declare; a check without the
marker gets every measurement; an unknown name fails the collection of its file."""

from __future__ import annotations

import pytest

from netdoctor.plugin.markers import run_measures
from netdoctor.probes.validate import MEASUREMENTS

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

CONFTEST = """
import pytest

@pytest.fixture
def validation():
    return None

@pytest.fixture
def echo(validation):
    return None
"""


def test_measures_listed_with_its_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.measures(*names): what a check reads from the "
                                 "validate pass's measurements*"])


def test_union_of_the_selected_checks(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    items = pytester.getitems("""
        import pytest

        pytestmark = pytest.mark.measures("dns")

        def test_dns(validation): pass

        @pytest.mark.measures("mtu", "pod-paths")
        def test_mtu(echo): pass  # through a fixture that uses validation

        @pytest.mark.measures("egress")
        def test_no_validation(): pass  # reads nothing from the validate pass
    """)
    by_name = {i.name: i for i in items}
    assert run_measures(items) == {"dns", "mtu", "pod-paths"}
    assert run_measures([by_name["test_dns"]]) == {"dns"}
    assert run_measures([by_name["test_no_validation"]]) == frozenset()


def test_node_facts_only_and_the_default(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    items = pytester.getitems("""
        import pytest

        @pytest.mark.measures()
        def test_facts(validation): pass

        def test_undeclared(validation): pass
    """)
    by_name = {i.name: i for i in items}
    assert run_measures([by_name["test_facts"]]) == frozenset()
    assert run_measures(items) == frozenset(MEASUREMENTS)  # undeclared: every measurement


def test_unknown_name_fails_the_collection(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.validate
        @pytest.mark.measures("dnss")
        def test_typo(validation): pass
    """)
    result = pytester.runpytest(*PLUGIN, "--collect-only")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*measures marker takes measurement names*'dnss'*valid names: "
                                 "pod-paths, service-paths, nodeport, dns, egress, mtu*"])


def test_the_suite_declares_what_its_validate_checks_read() -> None:
    """Every validate check module of the suite names what it reads, and only known names."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "tests" / "validate"
    for path in sorted(root.glob("test_*.py")):
        text = path.read_text()
        if "validation: Validation" in text:
            assert "pytest.mark.measures(" in text, path.name


def test_echo_unavailable_to_a_check_that_declared_no_path(pytester: pytest.Pytester) -> None:
    """A check that uses the echo workload but declares only measurements that do not need
    it errors with what to declare (it would otherwise read a workload never deployed)."""
    pytester.makeconftest("""
        import pytest
        from netdoctor.cluster.echo import Echo
        from netdoctor.cluster.probes import ProbeSet
        from netdoctor.plugin.markers import run_measures
        from netdoctor.probes.validate import ValidatePlan, Validation

        @pytest.fixture(scope="session")
        def validation(request):
            plan = ValidatePlan("nd", "r1", "img", "img", 1.0, 1.0,
                                measures=run_measures(request.session.items))
            return Validation(plan, Echo("nd", "r1"), ProbeSet("nd", "r1"))
    """)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.measures("egress")
        def test_wrongly_declared(echo): pass
    """)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the echo workload was not deployed: no selected check "
                                 "declares a measurement that needs it*dns, nodeport, "
                                 "pod-paths, service-paths*"])

    pytester.makepyfile("""
        import pytest

        @pytest.mark.measures("egress", "dns")
        def test_declared(echo): pass
    """)
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)
