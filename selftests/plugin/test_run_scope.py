"""What a selection of checks reads by node and by path (:func:`run_scope`): the nodes and
pairs its checks are parametrized by, everything as soon as one of them names neither."""

from __future__ import annotations

import pytest

from netdoctor.plugin.markers import run_scope
from netdoctor.probes.network import PairId, Scope
from netdoctor.probes.validate import ValidatePlan, planned_pairs, scope_statement

CONFTEST = """
import pytest
from netdoctor.probes.network import PairId

@pytest.fixture
def validation():
    return None

def pytest_generate_tests(metafunc):
    if "node" in metafunc.fixturenames:
        metafunc.parametrize("node", ["a", "b", pytest.param(None, marks=pytest.mark.skip)])
    if "node_path" in metafunc.fixturenames:
        metafunc.parametrize("node_path", [PairId("a", "a"), PairId("a", "b"), PairId("b", "a")],
                             ids=str)
"""


def _items(pytester: pytest.Pytester) -> dict[str, pytest.Item]:
    pytester.makeconftest(CONFTEST)
    items = pytester.getitems("""
        def test_dns(validation, node): pass

        def test_path(validation, node_path): pass

        def test_whole_cluster(validation): pass

        def test_reads_nothing_measured(node): pass
    """)
    return {i.name: i for i in items}


def test_nodes_and_pairs_of_the_selected_checks(pytester: pytest.Pytester) -> None:
    items = _items(pytester)
    chosen = [items["test_dns[a]"], items["test_path[b->a]"], items["test_dns[None]"],
              items["test_reads_nothing_measured[b]"]]
    assert run_scope(chosen) == Scope(frozenset({"a"}), frozenset({PairId("b", "a")}))
    assert run_scope([items["test_reads_nothing_measured[a]"]]) == Scope()


def test_the_diagnose_pass_is_scoped_by_its_own_checks(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST + """
@pytest.fixture
def observations():
    return None
""")
    items = {i.name: i for i in pytester.getitems("""
        def test_lookups(observations, node): pass

        def test_component(observations): pass

        def test_validate_path(validation, node_path): pass
    """)}
    chosen = [items["test_lookups[b]"], items["test_validate_path[a->b]"]]
    assert run_scope(chosen, "observations") == Scope(frozenset({"b"}))
    assert run_scope(chosen) == Scope(pairs=frozenset({PairId("a", "b")}))
    assert run_scope([*chosen, items["test_component"]], "observations") is None


def test_a_check_without_a_node_parameter_reads_everything(pytester: pytest.Pytester) -> None:
    items = _items(pytester)
    assert run_scope([items["test_dns[a]"], items["test_whole_cluster"]]) is None


def test_the_statement_says_what_was_left_out() -> None:
    plan = ValidatePlan("ns", "r", "img", "img", 2.0, 60.0,
                        scope=Scope(frozenset({"a"}), frozenset({PairId("b", "a")})))
    assert planned_pairs(plan, ["a", "b"]) == [PairId("b", "a")]
    assert plan.keeps_node("a")
    assert not plan.keeps_node("b")
    assert scope_statement(plan, ["a", "b"]) == ("per-node measurements from 1 of 2 nodes, "
                                                 "pair measurements for 1 of 4 node pairs")
    dns_only = ValidatePlan("ns", "r", "img", "img", 2.0, 60.0, measures=frozenset({"dns"}),
                            scope=Scope(frozenset({"a", "b"})))
    assert scope_statement(dns_only, ["a", "b"]) == ""  # every node's lookups: nothing left out
    paths_only = ValidatePlan("ns", "r", "img", "img", 2.0, 60.0,
                              measures=frozenset({"pod-paths"}),
                              scope=Scope(pairs=frozenset({PairId("a", "b")})))
    assert scope_statement(paths_only, ["a", "b"]) == "pair measurements for 1 of 4 node pairs"
    whole = ValidatePlan("ns", "r", "img", "img", 2.0, 60.0)
    assert scope_statement(whole, ["a", "b"]) == ""
    assert whole.keeps_pair(PairId("a", "b"))
