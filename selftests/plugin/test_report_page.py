"""The report from real inner runs: summary.json's matrix and per-node blocks from node-pair and
node parametrization, the HTML block rendered from them, and JUnit properties."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

CHECKS = """
import pytest
from dataclasses import dataclass
from netdoctor.model import CheckFailed, Evidence

pytestmark = pytest.mark.diagnose

@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    def __str__(self):
        return f"{self.source}->{self.target}"

PAIRS = [Pair(a, b) for a in ("n1", "n2") for b in ("n1", "n2") if a != b]

@pytest.mark.signal("pod_connectivity_failed")
@pytest.mark.parametrize("node_pair", PAIRS, ids=str)
def test_pod_to_pod(node_pair):
    '''A ping from the source node's probe is answered.'''
    if node_pair.target == "n2":
        raise CheckFailed(f"{node_pair}: no reply", [Evidence(
            f"ping {node_pair}", ("100% packet loss <b>",),
            "kubectl exec -n nd probe-n1 -- ping -c 1 10.244.2.3")])

@pytest.mark.signal("dns_timeouts")
@pytest.mark.parametrize("kind", ["replica"])
@pytest.mark.parametrize("node", ["n1", "n2"])
def test_dns(node, kind):
    '''Lookups from the node resolve.'''

def test_plain():
    pass
"""

CAUSES = """
def pytest_netdoctor_summary(summary, config):
    summary["root_causes"] = [{
        "id": "cni-config-shadowed", "node": "n2", "summary": "n2: a stray CNI config wins",
        "evidence": ["/etc/cni/net.d holds 00-bridge.conflist"],
        "explains": ["pod_connectivity_failed",
                     "test_checks.py::test_pod_to_pod[n1->n2]"],
        "confirm": ["kubectl debug node/n2 -- ls /host/etc/cni/net.d"], "fix": ["mv ..."]}]
"""


@pytest.fixture
def run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_checks=CHECKS)
    pytester.makeconftest(CAUSES)
    return pytester.runpytest(*PLUGIN, "--junitxml=junit.xml")


def test_matrix_and_per_node_blocks(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    summary = json.loads((pytester.path / "reports" / "summary.json").read_text())
    matrix = summary["matrix"]
    assert matrix["nodes"] == ["n1", "n2"]
    ping = matrix["kinds"]["pod_to_pod"]
    assert ping["title"] == "A ping from the source node's probe is answered."
    assert ping["cells"]["n1"]["n2"] == {
        "outcome": "failed", "nodeid": "test_checks.py::test_pod_to_pod[n1->n2]",
        "detail": "n1->n2: no reply"}
    assert ping["cells"]["n2"]["n1"]["outcome"] == "passed"
    assert "n1" not in ping["cells"]["n1"]  # never measured: no cell
    per_node = summary["per_node"]
    assert per_node["columns"] == {"dns[replica]": "Lookups from the node resolve."}
    assert per_node["rows"]["n2"]["dns[replica]"]["outcome"] == "passed"


def test_html_renders_the_summary(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    page = (pytester.path / "reports" / "report.html").read_text()
    block = page[page.index('<div id="netdoctor">'):page.index('<p class="run-count">')]
    assert 'data-verdict="none"' in block
    assert 'data-cause="cni-config-shadowed"' in block
    assert "kubectl debug node/n2 -- ls /host/etc/cni/net.d" in block
    assert 'data-signal="pod_connectivity_failed"' in block
    heat = block[block.index('id="nd-heatmaps"'):block.index('class="nd-legend"')]
    assert heat.count('class="nd-c nd-failed"') == 1
    assert heat.count('class="nd-c nd-passed"') == 1
    assert heat.count('class="nd-c nd-not-measured"') == 2
    assert "100% packet loss &lt;b&gt;" in heat  # the cell opens onto its evidence, escaped
    assert "kubectl exec -n nd probe-n1 -- ping -c 1 10.244.2.3" in heat
    assert 'id="nd-node-table"' in block
    # netdoctor's block comes before pytest-html's own run count and results table
    assert page.index('id="nd-verdict"') < page.index('id="results-table"')


def test_html_is_self_contained(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    page = (pytester.path / "reports" / "report.html").read_text()
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|@import|url\(\s*["']?"""
                          r"""(?:https?:)?//""", page)
    # pytest-html's credit line is a plain link, never fetched
    links = re.findall(r'<a href="(https?://[^"]+)"', page)
    assert len(external) == len(links), (external, links)
    assert '<link ' not in page
    assert "<script src" not in page
    assert "@media print" in page


def test_junit_properties(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    suite = ET.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    glob = [(p.get("name"), p.get("value")) for p in suite.find("properties") or []]
    assert ("netdoctor.verdict", "none") in glob
    assert ("netdoctor.score", "1") in glob
    assert ("netdoctor.cause", "cni-config-shadowed (n2): n2: a stray CNI config wins") in glob
    props = {c.get("name"): [(p.get("name"), p.get("value")) for p in c.iter("property")]
             for c in suite.iter("testcase")}
    assert props["test_pod_to_pod[n1->n2]"] == [
        ("netdoctor.check", "test_checks.py::test_pod_to_pod[n1->n2]"),
        ("netdoctor.signal", "pod_connectivity_failed"),
        ("netdoctor.cause", "cni-config-shadowed (n2): n2: a stray CNI config wins")]
    assert ("netdoctor.signal", "dns_timeouts") in props["test_dns[n1-replica]"]
    assert not any(n == "netdoctor.cause" for n, _ in props["test_pod_to_pod[n2->n1]"])
    assert props["test_plain"] == [("netdoctor.check", "test_checks.py::test_plain")]


def test_user_chosen_html_path_is_self_contained_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    # pytest-html picks its report class at configure: the command line must aim at the
    # checks by then (as `netdoctor diagnose` and `pytest -m diagnose` do).
    pytester.runpytest(*PLUGIN, "-m", "diagnose", "--html=out/mine.html")
    page = (pytester.path / "out" / "mine.html").read_text()
    assert 'id="nd-verdict"' in page
    assert not (pytester.path / "out" / "assets").exists()
