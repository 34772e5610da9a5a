"""Option resolution: precedence, parsing, and errors that name their source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netdoctor.plugin.options import OPTIONS, BadValue, parse_image, resolve_settings

CWD = Path("/work/repo")


def resolve(cli: dict[str, Any] | None = None, env: dict[str, str] | None = None,
            ini: dict[str, Any] | None = None) -> Any:
    return resolve_settings(cli or {}, env or {}, ini or {}, cwd=CWD,
                            ini_path=Path("/work/repo/pytest.ini"))


def test_defaults() -> None:
    s = resolve()
    assert s.probe_image == s.node_probe_image == "nicolaka/netshoot:v0.13"
    assert (s.external_dns, s.external_url) == ("1.1.1.1", "https://example.com")
    assert (s.probe_timeout, s.setup_timeout) == (2.0, 120.0)
    assert (s.score_confirmed, s.score_partial, s.kube_proxy_restart_threshold) == (4, 2, 3)
    assert s.report_dir == CWD / "reports"
    assert s.probe_namespace is None
    assert s.lab is None
    assert (s.offline, s.overwrite_report, s.cleanup_only) == (False, False, False)
    assert s.ignore_service == ()
    assert set(s.sources.values()) == {"default"}


def test_every_option_has_flag_ini_and_env() -> None:
    for spec in OPTIONS:
        assert spec.flag.startswith("--")
        assert spec.ini == "netdoctor_" + spec.name
        assert spec.env == "NETDOCTOR_" + spec.name.upper()
        assert spec.help


@pytest.mark.parametrize(
    ("cli", "env", "ini", "expected", "source"),
    [
        ("1", "2", "3", 1.0, "--probe-timeout"),
        (None, "2", "3", 2.0, "environment variable NETDOCTOR_PROBE_TIMEOUT"),
        (None, None, "3", 3.0, "ini option netdoctor_probe_timeout in /work/repo/pytest.ini"),
        (None, None, None, 2.0, "default"),
    ],
    ids=["cli-wins", "env-over-ini", "ini", "default"],
)
def test_precedence(cli: str | None, env: str | None, ini: str | None, expected: float,
                    source: str) -> None:
    s = resolve({"probe_timeout": cli}, {"NETDOCTOR_PROBE_TIMEOUT": env} if env else {},
                {"netdoctor_probe_timeout": ini or ""})
    assert s.probe_timeout == expected
    assert s.sources["probe_timeout"] == source


def test_paths_relative_to_their_source() -> None:
    assert resolve(ini={"netdoctor_report_dir": "out"}).report_dir == Path("/work/repo/out")
    assert resolve(cli={"report_dir": "/tmp/r"}).report_dir == Path("/tmp/r")


def test_lists_from_each_source() -> None:
    assert resolve(cli={"ignore_service": ["a/b", "c/d"]}).ignore_service == ("a/b", "c/d")
    assert resolve(env={"NETDOCTOR_IGNORE_SERVICE": "a/b, c/d"}).ignore_service == ("a/b", "c/d")
    assert resolve(ini={"netdoctor_ignore_service": ["a/b", "c/d"]}).ignore_service == (
        "a/b", "c/d")


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("off", False)])
def test_flags_from_env(raw: str, value: bool) -> None:
    assert resolve(env={"NETDOCTOR_OFFLINE": raw}).offline is value


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cli": {"probe_timeout": "soon"}}, "from --probe-timeout: expected a number"),
        ({"env": {"NETDOCTOR_SETUP_TIMEOUT": "-1"}},
         "from environment variable NETDOCTOR_SETUP_TIMEOUT: expected a positive"),
        ({"ini": {"netdoctor_score_partial": "0"}},
         "from ini option netdoctor_score_partial in /work/repo/pytest.ini"),
        ({"cli": {"probe_image": "nicolaka/netshoot:latest"}}, "never trust latest"),
        ({"env": {"NETDOCTOR_NODE_PROBE_IMAGE": "busybox"}}, "has no tag"),
        ({"cli": {"external_dns": "dns.google"}}, "expected an IP address"),
        ({"cli": {"external_url": "example.com"}}, "expected an http(s) URL"),
        ({"cli": {"ignore_service": ["default"]}}, "expected namespace/name"),
        ({"cli": {"probe_namespace": "Bad_NS"}}, "DNS-1123"),
        ({"env": {"NETDOCTOR_OFFLINE": "maybe"}}, "NETDOCTOR_OFFLINE"),
        ({"cli": {"score_partial": "5"}}, "must not exceed score_confirmed (4, from default)"),
    ],
    ids=["float", "positive", "ini-int", "latest", "untagged", "ip", "url", "service", "ns",
         "bool", "thresholds"],
)
def test_bad_values_name_their_source(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(pytest.UsageError) as excinfo:
        resolve(**kwargs)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    "image",
    ["nicolaka/netshoot:v0.13", "registry.local:5000/netshoot:v1",
     "busybox@sha256:" + "a" * 64, "ghcr.io/o/busybox:1.36@sha256:" + "b" * 64],
)
def test_pinned_images_accepted(image: str) -> None:
    assert parse_image(image) == image


@pytest.mark.parametrize(
    "image",
    ["busybox", "busybox:latest", "registry.local:5000/netshoot", "x@sha256:short", "", "a b:1"],
)
def test_unpinned_images_rejected(image: str) -> None:
    with pytest.raises(BadValue):
        parse_image(image)
