"""Options, ini twins, environment precedence, markers and signal marker validation."""

from __future__ import annotations

import pytest

# The entry point is blocked so an installed copy is not registered twice.
PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")

SHOW_SETTINGS = """
from netdoctor.plugin.state import get_state

def test_show(request):
    s = get_state(request.config).settings
    print(f"TIMEOUT={s.probe_timeout} SOURCE={s.sources['probe_timeout']}")
    print(f"IMAGE={s.probe_image} IGNORE={','.join(s.ignore_service)}")
    print(f"NS={get_state(request.config).probe_namespace}")
"""


def test_help_lists_group_and_ini_twins(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--help")
    result.stdout.fnmatch_lines([
        "netdoctor: pod network diagnosis:",
        "*--kubeconfig=PATH*",
        "*--lab=*SCENARIO*",
        "*--probe-timeout=SECONDS",
        "*seconds one probe command may take (0.5 to 60)",
        "*--ignore-service=NS/NAME*",
        "*netdoctor_probe_timeout (string):*",
        "*seconds one probe command may take*",
        "*netdoctor_ignore_service (linelist):*",
    ])


@pytest.mark.parametrize(
    ("args", "env", "ini", "expected"),
    [
        (["--probe-timeout=1"], "2", "3", "TIMEOUT=1.0 SOURCE=--probe-timeout"),
        ([], "2", "3", "TIMEOUT=2.0 SOURCE=environment variable NETDOCTOR_PROBE_TIMEOUT"),
        ([], None, "3", "TIMEOUT=3.0 SOURCE=ini option netdoctor_probe_timeout in *tox.ini"),
        ([], None, None, "TIMEOUT=2.0 SOURCE=default"),
    ],
    ids=["cli", "env", "ini", "default"],
)
def test_precedence_cli_env_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
    args: list[str], env: str | None, ini: str | None, expected: str,
) -> None:
    if env:
        monkeypatch.setenv("NETDOCTOR_PROBE_TIMEOUT", env)
    else:
        monkeypatch.delenv("NETDOCTOR_PROBE_TIMEOUT", raising=False)
    pytester.makeini(f"[pytest]\nnetdoctor_probe_timeout = {ini}\n" if ini else "[pytest]\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(*PLUGIN, "-s", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*" + expected])


def test_repeatable_and_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(*PLUGIN, "-s", "--ignore-service=a/b", "--ignore-service", "c/d")
    result.stdout.fnmatch_lines(["*IMAGE=nicolaka/netshoot:v0.13 IGNORE=a/b,c/d",
                                 "NS=netdoctor-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--probe-image=nicolaka/netshoot:latest"], {}, "*from --probe-image: image "
         "'nicolaka/netshoot:latest' uses the 'latest' tag*never trust latest*"),
        ([], {"NETDOCTOR_NODE_PROBE_IMAGE": "busybox"},
         "*from environment variable NETDOCTOR_NODE_PROBE_IMAGE: image 'busybox' has no tag*"),
        (["--probe-timeout=abc"], {}, "*from --probe-timeout: expected a number*'abc'*"),
    ],
    ids=["latest", "untagged-env", "timeout"],
)
def test_usage_errors_name_the_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
    args: list[str], env: dict[str, str], message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest(*PLUGIN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: netdoctor: invalid value {message}"])


def test_ini_usage_error_names_the_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnetdoctor_score_confirmed = many\n")
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest(*PLUGIN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*from ini option netdoctor_score_confirmed in *tox.ini: "
                                 "expected a whole number, got 'many'*"])


def test_markers_listed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--markers")
    result.stdout.fnmatch_lines_random([
        "@pytest.mark.diagnose: read-only symptom check*",
        "@pytest.mark.validate: end-to-end scenario*",
        "@pytest.mark.coredns: *", "@pytest.mark.kube_proxy: *", "@pytest.mark.flannel: *",
        "@pytest.mark.dns: *", "@pytest.mark.connectivity: *", "@pytest.mark.services: *",
        "@pytest.mark.node: *",
        "@pytest.mark.signal(name): failure-pattern signal the check raises when it fails*",
    ])


def test_strict_markers_accept_ours(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.diagnose
        @pytest.mark.dns
        @pytest.mark.signal("dns_timeouts")
        def test_a(): pass
    """)
    pytester.runpytest(*PLUGIN, "--strict-markers").assert_outcomes(passed=1)


def test_unknown_signal_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="""
        import pytest
        @pytest.mark.signal("dns_timeout")
        def test_typo(): pass
        def test_fine(): pass
    """)
    result = pytester.runpytest(*PLUGIN)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*ERROR collecting test_bad.py*",
        "*test_bad.py::test_typo: unknown signal 'dns_timeout'; valid signals: coredns_crashloop, "
        "kube_proxy_restarts, flannel_missing, dns_timeouts, service_endpoints_missing, "
        "pod_connectivity_failed*",
        "*1 error*",
    ])


def test_malformed_signal_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        class TestX:
            @pytest.mark.signal()
            def test_a(self): pass
    """)
    result = pytester.runpytest(*PLUGIN)
    result.stdout.fnmatch_lines(["*signal marker takes exactly one signal name*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_extra_signal_from_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        from netdoctor.plugin.scoring import SignalDefinition
        def pytest_netdoctor_signals(config):
            return [SignalDefinition("mtu_blackhole", "large packets vanish")]
    """)
    pytester.makepyfile("""
        import pytest
        @pytest.mark.signal("mtu_blackhole")
        def test_mtu(): assert False
    """)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["mtu_blackhole:", "  FAILED test_extra_signal_from_hook.py"
                                 "::test_mtu - assert False"])
