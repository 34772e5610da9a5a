"""Parsers against real output captured from iputils, busybox, bind9 dig/nslookup and curl."""

from __future__ import annotations

import pytest

from netdoctor.probes.parsers import parse_curl, parse_dig, parse_nslookup, parse_ping
from selftests.helpers import Sample


@pytest.mark.parametrize(
    ("sample", "transmitted", "received", "loss", "unreachable", "error"),
    [
        ("iputils-ping-ok", 3, 3, 0.0, False, ""),
        ("busybox-ping-ok", 3, 3, 0.0, False, ""),
        ("iputils-ping-host-unreach", 5, 0, 100.0, True, "Destination Host Unreachable"),
        ("busybox-ping-host-unreach", 5, 0, 100.0, False, ""),
        ("iputils-ping-loss", 2, 0, 100.0, False, ""),
        ("busybox-ping-loss", 2, 0, 100.0, False, ""),
        ("iputils-ping-net-unreach", 0, 0, 100.0, True, "Network is unreachable"),
        ("busybox-ping-net-unreach", 0, 0, 100.0, True, "Network is unreachable"),
    ],
    indirect=["sample"],
)
def test_ping_samples(
    sample: Sample, transmitted: int, received: int, loss: float, unreachable: bool, error: str
) -> None:
    result = parse_ping(sample.stdout, sample.stderr)
    assert result.conclusive
    assert (result.transmitted, result.received, result.loss_percent) == (
        transmitted, received, loss)
    assert (result.unreachable, result.error) == (unreachable, error)
    assert result.ok == (received > 0)
    assert result.ok == (sample.exit_code == 0)


@pytest.mark.parametrize("sample", ["iputils-ping-ok", "busybox-ping-ok"], indirect=True)
def test_ping_rtt(sample: Sample) -> None:
    result = parse_ping(sample.stdout)
    assert result.rtt_min_ms is not None
    assert result.rtt_avg_ms is not None
    assert result.rtt_max_ms is not None
    assert 0 < result.rtt_min_ms <= result.rtt_avg_ms <= result.rtt_max_ms


@pytest.mark.parametrize(
    "text",
    ["", "PING 10.244.1.5 (10.244.1.5) 56(84) bytes of data.\n",
     "64 bytes from 10.244.1.5: icmp_seq=1 ttl=64 time=0.1 ms\n", "error: unable to upgrade"],
    ids=["empty", "header-only", "cut-before-stats", "exec-noise"],
)
def test_ping_inconclusive(text: str) -> None:
    assert not parse_ping(text).conclusive


def test_ping_bad_name_is_a_result() -> None:
    result = parse_ping("", "ping: bad address 'nosuch.local'")
    assert result.conclusive
    assert not result.ok
    assert result.error == "bad address"


@pytest.mark.parametrize(
    ("sample", "status", "addresses"),
    [
        ("bind-nslookup-ok", "ok", ("10.96.12.7", "10.96.12.8")),
        ("busybox-nslookup-ok", "ok", ("10.96.12.7", "10.96.12.8")),
        ("bind-nslookup-nxdomain", "nxdomain", ()),
        ("busybox-nslookup-nxdomain", "nxdomain", ()),
        ("bind-nslookup-servfail", "servfail", ()),
        ("busybox-nslookup-servfail", "servfail", ()),
        ("bind-nslookup-timeout", "timeout", ()),
        ("busybox-nslookup-timeout", "timeout", ()),
        ("bind-nslookup-refused", "refused", ()),
        ("busybox-nslookup-refused", "refused", ()),
    ],
    indirect=["sample"],
)
def test_nslookup_samples(sample: Sample, status: str, addresses: tuple[str, ...]) -> None:
    result = parse_nslookup(sample.stdout, sample.stderr)
    assert result.conclusive
    assert result.status == status
    assert result.addresses == addresses
    assert result.ok == (sample.exit_code == 0)


@pytest.mark.parametrize("sample", ["bind-nslookup-ok", "busybox-nslookup-ok"], indirect=True)
def test_nslookup_server_is_not_an_answer(sample: Sample) -> None:
    result = parse_nslookup(sample.stdout)
    assert result.server == "127.0.0.53"
    assert "127.0.0.53" not in result.addresses


@pytest.mark.parametrize(
    ("text", "status"),
    [
        # Older busybox (1.28-1.31) answer layout, as printed by busybox-based images.
        ("Server:    10.96.0.10\n"
         "Address 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local\n\n"
         "Name:      kubernetes.default\n"
         "Address 1: 10.96.0.1 kubernetes.default.svc.cluster.local\n",
         "ok"),
        ("Server:    10.96.0.10\nAddress 1: 10.96.0.10\n\n"
         "nslookup: can't resolve 'nosuch.default'\n", "nxdomain"),
        # bind9 before 9.18.
        (";; connection timed out; no servers could be reached\n\n", "timeout"),
    ],
    ids=["busybox-old-ok", "busybox-old-cant-resolve", "bind-old-timeout"],
)
def test_nslookup_older_formats(text: str, status: str) -> None:
    result = parse_nslookup(text)
    assert result.conclusive
    assert result.status == status


@pytest.mark.parametrize("text", ["", "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n"],
                         ids=["empty", "cut-after-server"])
def test_nslookup_inconclusive(text: str) -> None:
    result = parse_nslookup(text)
    assert not result.conclusive
    assert result.status == "unknown"


@pytest.mark.parametrize(
    ("sample", "status", "rcode", "addresses"),
    [
        ("dig-ok", "ok", "NOERROR", ("10.96.12.7", "10.96.12.8")),
        ("dig-short-ok", "ok", "", ("10.96.12.7", "10.96.12.8")),
        ("dig-nxdomain", "nxdomain", "NXDOMAIN", ()),
        ("dig-short-nxdomain", "no_answer", "", ()),
        ("dig-servfail", "servfail", "SERVFAIL", ()),
        ("dig-timeout", "timeout", "", ()),
        ("dig-short-timeout", "timeout", "", ()),
        ("dig-refused", "refused", "", ()),
    ],
    indirect=["sample"],
)
def test_dig_samples(
    sample: Sample, status: str, rcode: str, addresses: tuple[str, ...]
) -> None:
    result = parse_dig(sample.stdout, sample.stderr, sample.exit_code)
    assert result.conclusive
    assert (result.status, result.rcode, result.addresses) == (status, rcode, addresses)


@pytest.mark.parametrize("sample", ["dig-ok"], indirect=True)
def test_dig_full_output_details(sample: Sample) -> None:
    result = parse_dig(sample.stdout)
    assert result.server == "127.0.0.53"
    assert result.query_time_ms is not None


def test_dig_short_empty_needs_exit_code() -> None:
    assert not parse_dig("", exit_code=None).conclusive
    assert not parse_dig("", exit_code=137).conclusive


@pytest.mark.parametrize(
    ("sample", "code", "curl_exit", "ok"),
    [
        ("curl-ok", 200, 0, True),
        ("curl-404", 404, 0, False),
        ("curl-refused", None, 7, False),
        ("curl-timeout", None, 28, False),
    ],
    indirect=["sample"],
)
def test_curl_samples(sample: Sample, code: int | None, curl_exit: int, ok: bool) -> None:
    result = parse_curl(sample.stdout, sample.stderr)
    assert result.conclusive
    assert (result.http_code, result.curl_exit, result.ok) == (code, curl_exit, ok)
    assert result.time_total is not None
    assert result.time_total >= 0
    assert bool(result.error) == (curl_exit != 0)


def test_curl_5xx_is_not_ok() -> None:
    assert not parse_curl("http_code=503 time_total=0.1 exitcode=0 remote_ip=10.96.0.5").ok


@pytest.mark.parametrize("text", ["", "<html>body leaked</html>", "http_code=abc time_total=x"],
                         ids=["empty", "no-write-out", "garbled"])
def test_curl_inconclusive(text: str) -> None:
    assert not parse_curl(text).conclusive
