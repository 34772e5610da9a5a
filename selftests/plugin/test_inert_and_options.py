"""Inert unless asked, "asked but nothing ran", and option values that pytest read as paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.plugin.activation import EXIT_NOTHING_RAN

# The entry point is blocked so an installed copy is not registered twice.
PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")
# A kubeconfig that fails at once: any connection attempt ends the run with exit status 4.
BROKEN_KUBECONFIG = "x: 1\n"

UNRELATED = """
import pytest

@pytest.fixture
def node():  # the same name as a netdoctor parameter: never parametrized by the cluster
    return "mine"

def test_x(node):
    assert node == "mine"
"""

SKIPPED_CHECKS = """
import pytest
pytestmark = pytest.mark.diagnose

@pytest.mark.skip(reason="needs at least 2 Ready nodes")
def test_a(): pass

def test_b(): pytest.skip("no Ready node")
"""


def netdoctor_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines + result.errlines if "netdoctor" in line.lower()]


def broken_kubeconfig(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "kc"
    path.write_text(BROKEN_KUBECONFIG)
    return path


def test_unrelated_run_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unrelated=UNRELATED)
    result = pytester.runpytest(*PLUGIN, f"--kubeconfig={broken_kubeconfig(pytester)}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert netdoctor_lines(result) == []
    assert "verdict:" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_unrelated_run_with_user_html_gets_no_netdoctor_section(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unrelated=UNRELATED)
    pytester.runpytest(*PLUGIN, "--html=mine.html").assert_outcomes(passed=1)
    html = (pytester.path / "mine.html").read_text()
    assert "netdoctor" not in html
    assert not (pytester.path / "reports").exists()


@pytest.mark.parametrize(
    ("files", "args", "ret", "line"),
    [
        ({"test_unrelated": UNRELATED}, ["-m", "diagnose"], EXIT_NOTHING_RAN,
         "netdoctor: no check ran: none collected; *"),
        ({"test_checks": "import pytest\n@pytest.mark.diagnose\ndef test_a(): pass\n"},
         ["-m", "diagnose", "-k", "nomatch"], EXIT_NOTHING_RAN,
         "netdoctor: no check ran: all 1 deselected by -m/-k; *"),
        ({"test_checks": SKIPPED_CHECKS}, [], EXIT_NOTHING_RAN,
         "netdoctor: no check ran: all 2 skipped (first: needs at least 2 Ready nodes); *"),
        ({"test_checks": "import pytest\npytestmark = pytest.mark.diagnose\ndef test_a(:\n"},
         ["-m", "diagnose"], pytest.ExitCode.INTERRUPTED,
         "netdoctor: no check ran: 1 file(s) failed to collect; *"),
    ],
    ids=["none-collected", "all-deselected", "all-skipped", "collection-error"],
)
def test_asked_but_nothing_ran(pytester: pytest.Pytester, files: dict[str, str],
                               args: list[str], ret: int, line: str) -> None:
    pytester.makepyfile(**files)
    result = pytester.runpytest(*PLUGIN, *args)
    assert result.ret == ret
    assert ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines([line])
    assert len(netdoctor_lines(result)) == 1, netdoctor_lines(result)
    assert "verdict:" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_a_check_that_ran_is_scored(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=SKIPPED_CHECKS + "\ndef test_c(): pass\n")
    result = pytester.runpytest(*PLUGIN)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["verdict: none (score 0/6) run *"])
    assert (pytester.path / "reports" / "summary.json").exists()
    assert (pytester.path / "reports" / "report.html").exists()


def test_checks_needing_the_cluster_stop_before_running(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks="""
        import pytest
        pytestmark = pytest.mark.diagnose
        def test_nodes(cluster, node): pass
    """)
    result = pytester.runpytest(*PLUGIN, f"--kubeconfig={broken_kubeconfig(pytester)}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: netdoctor: kubeconfig * has no current-context*"])
    result.assert_outcomes()  # nothing ran, nothing failed
    assert "no check ran" not in result.stdout.str()
    assert "verdict:" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


@pytest.mark.parametrize("option", ["--kubeconfig", "--report-dir", "--flannel-manifest"])
def test_spaced_path_value_is_one_usage_error(pytester: pytest.Pytester, tmp_path: Path,
                                              option: str) -> None:
    pytester.makepyfile(test_x="def test_x():\n    open('collected', 'w').close()\n")
    value = tmp_path / "somewhere" / "file"
    value.parent.mkdir()
    value.write_text(BROKEN_KUBECONFIG)
    result = pytester.runpytest(*PLUGIN, "-m", "diagnose", option, str(value))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR")]
    assert errors == [f"ERROR: netdoctor: pytest read '{value}' as a test path before "
                      f"netdoctor's options were known; write {option}={value} (with '='), or "
                      "use the netdoctor command, which accepts both forms"]
    assert not (pytester.path / "collected").exists()


def test_spaced_relative_existing_path_is_refused(pytester: pytest.Pytester) -> None:
    broken_kubeconfig(pytester)
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest(*PLUGIN, "--kubeconfig", "kc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*write --kubeconfig=kc (with '=')*"])


def test_spaced_values_that_are_no_paths_work(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="""
        from netdoctor.plugin.state import get_state
        def test_x(request):
            s = get_state(request.config).settings
            assert (s.context, s.probe_timeout, s.ignore_service) == ("prod", 5.0, ("ns/web",))
    """)
    result = pytester.runpytest(*PLUGIN, "--context", "prod", "--probe-timeout", "5",
                                "--ignore-service", "ns/web")
    result.assert_outcomes(passed=1)


def test_lab_followed_by_a_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest(*PLUGIN, "--lab", "test_x.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*write --lab=test_x.py (with '='), or give test paths "
                                 "before --lab*"])
