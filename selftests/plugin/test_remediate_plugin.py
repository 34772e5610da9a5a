"""``--remediate`` wiring: options, policy in a real inner run, exit status, verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netdoctor.model import CheckResult
from netdoctor.plugin.htmlpage import remediation_html
from netdoctor.plugin.options import resolve_settings
from netdoctor.plugin.remediate import (
    EXIT_REFUSED,
    Result,
    failing_functions,
    summary_lines,
    verification_argv,
)
from netdoctor.repair.model import Step
from netdoctor.repair.runner import Outcome
from remediation.coredns import forward_targets, with_forward
from remediation.system import foreign_chains

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inner runs are subprocesses (stdin is then no terminal, as in a pipeline).
    monkeypatch.setenv("PYTHONPATH", str(REPO))
CHECKS = """
import pytest
pytestmark = pytest.mark.diagnose

@pytest.mark.signal("dns_timeouts")
def test_dns():
    assert False, "DNS lookups time out"

@pytest.mark.signal("coredns_crashloop")
def test_coredns():
    assert False, "CoreDNS crash-loops"
"""


def test_option_defaults_and_sources() -> None:
    s = resolve_settings({}, {}, {}, cwd=Path("/r"))
    assert (s.remediate, s.dry_run, s.force, s.non_interactive) == (False,) * 4
    assert (s.max_changes, s.max_changes_per_node, s.allow_control_plane, s.dns_fallback) == (
        12, 4, False, ())
    assert (s.yes, s.fix_selectors, s.retry_failed) == (False,) * 3
    assert s.flannel_manifest is None
    env = {"NETDOCTOR_DNS_FALLBACK": "198.51.100.53, 192.0.2.53", "NETDOCTOR_FORCE": "yes",
           "NETDOCTOR_YES": "1"}
    s = resolve_settings({"max_changes": "0"}, env, {"netdoctor_remediate": "true",
                                                     "netdoctor_max_changes_per_node": "2",
                                                     "netdoctor_fix_selectors": "true"},
                         cwd=Path("/r"))
    assert s.dns_fallback == ("198.51.100.53", "192.0.2.53")
    assert (s.force, s.remediate, s.max_changes, s.yes) == (True, True, 0, True)
    assert (s.max_changes_per_node, s.fix_selectors) == (2, True)
    assert s.sources["remediate"].startswith("ini option netdoctor_remediate")
    assert s.sources["max_changes_per_node"].startswith("ini option")


@pytest.mark.parametrize(("cli", "words"), [
    ({"dns_fallback": ["resolver.example"]}, "--dns-fallback"),
    ({"max_changes": "-1"}, "--max-changes"),
    ({"max_changes_per_node": "many"}, "--max-changes-per-node"),
])
def test_bad_values_name_their_source(cli: dict[str, object], words: str) -> None:
    with pytest.raises(pytest.UsageError, match=words):
        resolve_settings(cli, {}, {}, cwd=Path("/r"))


def test_verification_reuses_connection_options_only() -> None:
    s = resolve_settings({"kubeconfig": "/k", "context": "lab", "offline": True,
                          "remediate": True, "force": True, "dns_fallback": ["192.0.2.53"],
                          "ignore_service": ["shop/web"]}, {}, {}, cwd=Path("/"))
    argv = verification_argv(s, ["tests/a.py::t"], Path("/out"), None)
    assert "--kubeconfig=/k" in argv
    assert "--context=lab" in argv
    assert "--offline" in argv
    assert "--ignore-service=shop/web" in argv
    assert not [a for a in argv if a.startswith(("--remediate", "--force", "--dns-fallback"))]
    assert "--report-dir=/out" in argv
    s = resolve_settings({"kubeconfig": "/k", "yes": True, "max_changes": "3",
                          "fix_selectors": True, "retry_failed": True}, {}, {}, cwd=Path("/"))
    argv = verification_argv(s, ["tests/a.py::t"], Path("/out"), None)
    assert not [a for a in argv if a.startswith(("--yes", "--max-changes", "--fix-", "--retry"))]


def test_failing_functions_drop_parameters() -> None:
    results = [CheckResult("t.py::ping[a->b]", "failed", ()),
               CheckResult("t.py::ping[b->a]", "failed", ()),
               CheckResult("t.py::dns", "passed", ())]
    assert failing_functions(results) == ["t.py::ping"]


@pytest.mark.parametrize(("mode", "after", "failed", "status"), [
    ("applied", 0, False, 0), ("applied", 1, False, 1), ("applied", 0, True, 1),
    ("refused", None, False, EXIT_REFUSED), ("dry-run", None, False, 1),
    ("over-budget", 0, False, 1), ("blocked", 2, True, 1),
])
def test_exit_status(mode: str, after: int | None, failed: bool, status: int) -> None:
    steps = [Step("x", None, "failed" if failed else "applied", "")]
    assert Result(Outcome(mode, "", steps), 2, after).exit_status(1) == status


def test_checks_still_failing_after_repair_fail_the_run() -> None:
    steps = [Step("x", None, "applied", "")]
    result = Result(Outcome("applied", "", steps), 2, 0, "1 check function(s) again",
                    still_failing=["tests/t.py::a[n1]"])
    assert result.exit_status(1) == 1
    assert result.to_json()["still_failing"] == ["tests/t.py::a[n1]"]
    assert "STILL FAILING tests/t.py::a[n1]" in "\n".join(summary_lines(result))
    assert "tests/t.py::a[n1]" in remediation_html(result.to_json())
    assert "still_failing" not in Result(Outcome("dry-run", ""), 2).to_json()


def test_refused_without_force_in_a_pipeline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess(*PLUGIN, "--remediate", "--non-interactive",
                                           "--report-dir=out", "--score-confirmed=3")
    assert result.ret == EXIT_REFUSED
    result.stdout.fnmatch_lines(["*netdoctor remediation*",
                                 "mode: refused (verdict partial: pass --force*"])
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    block = summary["remediation"]
    assert {k: block[k] for k in ("mode", "steps", "score_before", "score_after", "plan")} == {
        "mode": "refused", "steps": [], "score_before": 2, "score_after": None, "plan": []}
    assert "mode=refused" in (pytester.path / "out" / "remediation.log").read_text()


def test_no_plan_without_the_cluster(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess(*PLUGIN, "--remediate", "--force", "--yes",
                                           "--report-dir=out",
                                           f"--kubeconfig={pytester.path / 'missing'}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["mode: skipped (could not read the cluster to plan*"])


def test_without_remediate_no_block(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess(*PLUGIN, "--report-dir=out")
    assert result.ret == 1
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert "remediation" not in summary
    assert not (pytester.path / "out" / "remediation.log").exists()


def test_foreign_chain_and_corefile_helpers() -> None:
    chains = {"nftables": [
        {"chain": {"family": "ip", "table": "filter", "name": "OUTPUT", "type": "route",
                   "hook": "output"}},
        {"chain": {"family": "ip", "table": "mangle", "name": "OUTPUT", "type": "route",
                   "hook": "output"}},
        {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "type": "filter",
                   "hook": "input"}}]}
    assert foreign_chains(json.dumps(chains)) == [("filter", "OUTPUT", "route")]
    corefile = ".:53 {\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n}\n"
    changed = with_forward(corefile, ("198.51.100.53",))
    assert forward_targets(changed) == ["198.51.100.53"]
    assert with_forward(changed, ("198.51.100.53",)) == changed
    assert "max_concurrent 1000" in changed
