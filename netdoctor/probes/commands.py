"""Probe commands per image dialect: busybox applets or iputils/bind9 tools.

Example:
    >>> ping_argv("nicolaka/netshoot:v0.13", "10.244.1.5", 3.0)
    ('ping', '-n', '-c', '1', '-w', '3', '10.244.1.5')
    >>> dns_argv("busybox:1.36", "kubernetes.default.svc.k8s.example", "10.96.0.10", 2.0)
    ('nslookup', '-timeout=2', 'kubernetes.default.svc.k8s.example', '10.96.0.10')
"""

from __future__ import annotations

from netdoctor.model import Attempt
from netdoctor.probes.parsers import (
    LookupResult,
    PingResult,
    parse_dig,
    parse_nslookup,
    parse_ping,
)


def is_busybox(image: str) -> bool:
    """Images named ``busybox`` carry applets, not iputils/bind9."""
    return "busybox" in image.rsplit("/", 1)[-1]


def ping_argv(image: str, ip: str, seconds: float) -> tuple[str, ...]:
    """One echo request, waiting at most ``seconds`` (iputils stops at the first reply)."""
    wait = str(max(1, int(seconds)))
    if is_busybox(image):
        return ("ping", "-c", "1", "-W", wait, ip)
    return ("ping", "-n", "-c", "1", "-w", wait, ip)


def dns_argv(image: str, name: str, server: str, seconds: float) -> tuple[str, ...]:
    """An A lookup of ``name`` at ``server``, one try, ``seconds`` per try."""
    wait = str(max(1, int(seconds)))
    if is_busybox(image):
        return ("nslookup", f"-timeout={wait}", name, server)
    return ("dig", f"@{server}", name, "A", f"+time={wait}", "+tries=1")


def parse_ping_attempt(attempt: Attempt) -> PingResult:
    """:func:`parse_ping` over an attempt."""
    return parse_ping(attempt.stdout, attempt.stderr)


def parse_dns_attempt(attempt: Attempt) -> LookupResult:
    """:func:`parse_dig` or :func:`parse_nslookup`, chosen by the command that ran."""
    if attempt.argv[:1] == ("dig",):
        return parse_dig(attempt.stdout, attempt.stderr, attempt.exit_code)
    return parse_nslookup(attempt.stdout, attempt.stderr)
