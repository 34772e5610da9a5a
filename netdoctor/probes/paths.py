"""Validate measurements: k-of-n series of pings and HTTP requests, DNS cases, MTU pings.

Every measurement is a command run in a probe pod through :func:`measure` (bounded
retries of inconclusive output, every attempt kept). A :class:`Series` repeats one
measurement ``n`` times so that loss shows as a ratio instead of a coin toss.

Example:
    >>> curl_argv("http://10.96.0.1:443/", 2.0)[:4]
    ('curl', '-sS', '-o', '/dev/null')
    >>> mtu_ping_argv("10.244.1.5", 1450, 2.0)
    ('ping', '-n', '-c', '1', '-w', '2', '-M', 'do', '-s', '1422', '10.244.1.5')
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from netdoctor.cluster.exec import (
    Batcher,
    Conclusive,
    ExecTarget,
    Measured,
    kubectl_exec,
    measure,
)
from netdoctor.model import Attempt
from netdoctor.probes.commands import parse_dns_attempt, parse_ping_attempt, ping_argv
from netdoctor.probes.parsers import (
    CURL_SERIES_WRITE_OUT,
    CURL_WRITE_OUT,
    CurlResult,
    LookupResult,
    PingResult,
    ResolvConf,
    parse_curl,
    parse_curl_series,
    parse_resolv_conf,
)
from netdoctor.rootcause import facts as nodefacts
from netdoctor.rootcause.facts import NodeFacts

R = TypeVar("R", PingResult, CurlResult, LookupResult)
T = TypeVar("T", bound=Conclusive)
IP_ICMP_HEADERS = 28  # IPv4 (20) + ICMP echo (8): ping -s payload = MTU - 28
ROW_TRANSFERS = 60
"""GETs one curl makes at most (all at once; curl itself allows 300 in parallel)."""


@dataclass(frozen=True)
class Series(Generic[R]):
    """The same measurement repeated: how many of ``sent`` passed."""

    runs: tuple[Measured[R], ...]

    @property
    def sent(self) -> int:
        """Measurements made."""
        return len(self.runs)

    @property
    def passed(self) -> int:
        """Measurements whose result is ok."""
        return sum(1 for m in self.runs if m.result.ok)

    @property
    def ratio(self) -> str:
        """``passed/sent``."""
        return f"{self.passed}/{self.sent}"

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt behind the series (once each: runs measured by one command share
        its attempts)."""
        seen: dict[int, Attempt] = {}
        for m in self.runs:
            for a in m.attempts:
                seen.setdefault(id(a), a)
        return tuple(seen.values())


def curl_argv(url: str, seconds: float, *, insecure: bool = False) -> tuple[str, ...]:
    """One HTTP GET, any answer printed with :data:`CURL_WRITE_OUT` (``-k`` for reachability
    checks where the probe has no CA to trust)."""
    wait = str(max(1, int(seconds)))
    return ("curl", "-sS", "-o", "/dev/null", "-w", CURL_WRITE_OUT.replace("\\n", "\n"),
            "--connect-timeout", wait, "--max-time", wait, *(("-k",) if insecure else ()), url)


def curl_series_argv(urls: Sequence[str], seconds: float, n: int, *, insecure: bool = False
                     ) -> tuple[str, ...]:
    """``n`` HTTP GETs of each of ``urls`` by one curl, all side by side, each on its own
    connection (``--parallel-immediate``: none waits to reuse another's) with its own
    timeouts and one :data:`CURL_SERIES_WRITE_OUT` line; transfer ``i * n + k`` is run ``k``
    of ``urls[i]``.

    Example:
        >>> argv = curl_series_argv(["http://10.244.1.5:8080/"], 2.0, 2)
        >>> argv[-6:]
        ('-o', '/dev/null', 'http://10.244.1.5:8080/', '-o', '/dev/null', 'http://10.244.1.5:8080/')
    """
    wait = str(max(1, int(seconds)))
    return ("curl", "-sS", "--no-progress-meter", "--parallel", "--parallel-immediate",
            "--parallel-max", str(n * len(urls)), "-w",
            CURL_SERIES_WRITE_OUT.replace("\\n", "\n"), "--connect-timeout", wait,
            "--max-time", wait, *(("-k",) if insecure else ()),
            *(arg for url in urls for _ in range(n) for arg in ("-o", "/dev/null", url)))


def mtu_ping_argv(ip: str, mtu: int, seconds: float) -> tuple[str, ...]:
    """A don't-fragment ping whose packet is exactly ``mtu`` bytes."""
    wait = str(max(1, int(seconds)))
    return ("ping", "-n", "-c", "1", "-w", wait, "-M", "do", "-s",
            str(mtu - IP_ICMP_HEADERS), ip)


def search_dns_argv(name: str, seconds: float) -> tuple[str, ...]:
    """A lookup through the pod's own resolv.conf, its search path applied."""
    wait = str(max(1, int(seconds)))
    return ("dig", "+search", name, "A", f"+time={wait}", "+tries=1")


def server_dns_argv(name: str, server: str, seconds: float, port: int = 53
                    ) -> tuple[str, ...]:
    """An A lookup of ``name`` asked of ``server`` directly (on ``port``)."""
    wait = str(max(1, int(seconds)))
    return ("dig", f"@{server}", *(("-p", str(port)) if port != 53 else ()), name, "A",
            f"+time={wait}", "+tries=1")


def _curl(attempt: Attempt) -> CurlResult:
    return parse_curl(attempt.stdout, attempt.stderr)


@dataclass(frozen=True)
class FactsResult:
    """Node facts parsed from one run of the facts script."""

    conclusive: bool
    facts: NodeFacts


@dataclass(frozen=True)
class CurlRuns:
    """The transfers of one :func:`curl_series_argv` run."""

    runs: tuple[CurlResult, ...]

    @property
    def conclusive(self) -> bool:
        """Every transfer reported its result."""
        return all(r.conclusive for r in self.runs)


@dataclass(frozen=True)
class MtuResult:
    """An interface MTU read in a pod."""

    conclusive: bool
    mtu: int = 0


class Runner:
    """Runs measurements with one concurrency limit and one per-command timeout."""

    def __init__(self, image: str, timeout: float, concurrency: int = 32) -> None:
        self.image = image
        self.timeout = timeout
        # The limit counts execs, not commands: commands for one pod share an exec.
        self._batcher = Batcher(asyncio.Semaphore(max(concurrency // 4, 1)))

    async def _run(self, target: ExecTarget, argv: Sequence[str],
                   parse: Callable[[Attempt], T], deadline: float | None = None) -> Measured[T]:
        return await measure(target, argv, parse, deadline=deadline or self.timeout + 5,
                             run=self._batcher.exec)

    def ping(self, target: ExecTarget, ip: str) -> Awaitable[Measured[PingResult]]:
        """One echo request."""
        return self._run(target, ping_argv(self.image, ip, self.timeout), parse_ping_attempt)

    def mtu_ping(self, target: ExecTarget, ip: str, mtu: int) -> Awaitable[Measured[PingResult]]:
        """One don't-fragment echo request of ``mtu`` bytes."""
        return self._run(target, mtu_ping_argv(ip, mtu, self.timeout), parse_ping_attempt)

    def http(self, target: ExecTarget, url: str, *, insecure: bool = False
             ) -> Awaitable[Measured[CurlResult]]:
        """One HTTP GET."""
        return self._run(target, curl_argv(url, self.timeout, insecure=insecure), _curl)

    async def http_series(self, target: ExecTarget, url: str, n: int, *,
                          insecure: bool = False) -> Series[CurlResult]:
        """``n`` HTTP GETs, measured by one curl (a retry repeats all ``n``)."""
        return (await self.http_rows(target, [url], n, insecure=insecure))[0]

    async def http_rows(self, target: ExecTarget, urls: Sequence[str], n: int, *,
                        insecure: bool = False) -> list[Series[CurlResult]]:
        """A series of ``n`` GETs for each of ``urls`` (a row of the matrix), measured by as
        few curls as :data:`ROW_TRANSFERS` allows: curl's start-up, not the GETs, is what
        a probe pod spends its CPU on. Each series' command is its own reproduction; its
        attempts are the curl runs that measured it."""
        per = max(1, ROW_TRANSFERS // max(n, 1))
        chunks = [list(urls[i:i + per]) for i in range(0, len(urls), per)]
        done = await asyncio.gather(*(self._http_chunk(target, c, n, insecure)
                                      for c in chunks))
        return [s for chunk in done for s in chunk]

    async def _http_chunk(self, target: ExecTarget, urls: list[str], n: int,
                          insecure: bool) -> list[Series[CurlResult]]:
        def parse(attempt: Attempt) -> CurlRuns:
            return CurlRuns(parse_curl_series(attempt.stdout, attempt.stderr, n * len(urls)))
        m = await self._run(target, curl_series_argv(urls, self.timeout, n, insecure=insecure),
                            parse)
        out = []
        for i, url in enumerate(urls):
            command = kubectl_exec(target.namespace, target.name,
                                   curl_series_argv([url], self.timeout, n, insecure=insecure))
            out.append(Series(tuple(Measured(r, m.attempts, command)
                                    for r in m.result.runs[i * n:(i + 1) * n])))
        return out

    def dns(self, target: ExecTarget, name: str, server: str | None, port: int = 53
            ) -> Awaitable[Measured[LookupResult]]:
        """A lookup at ``server`` (on ``port``), or through the pod's resolv.conf when
        ``None``."""
        argv = (search_dns_argv(name, self.timeout) if server is None
                else server_dns_argv(name, server, self.timeout, port))
        return self._run(target, argv, parse_dns_attempt)

    async def series(self, make: Callable[[], Awaitable[Measured[R]]], n: int) -> Series[R]:
        """``n`` runs of the same measurement, concurrently."""
        return Series(tuple(await asyncio.gather(*(make() for _ in range(n)))))

    def facts(self, target: ExecTarget) -> Awaitable[Measured[FactsResult]]:
        """The node facts script in a node probe."""
        def parse(attempt: Attempt) -> FactsResult:
            f = nodefacts.parse(target.node, attempt.stdout)
            return FactsResult(f.complete, f)
        return self._run(target, ("sh", "-c", nodefacts.script()), parse,
                         deadline=self.timeout + 15)

    def resolv_conf(self, target: ExecTarget) -> Awaitable[Measured[ResolvConf]]:
        """The pod's /etc/resolv.conf as the kubelet wrote it."""
        return self._run(target, ("cat", "/etc/resolv.conf"),
                         lambda attempt: parse_resolv_conf(attempt.stdout))

    def eth0_mtu(self, target: ExecTarget) -> Awaitable[Measured[MtuResult]]:
        """The pod's eth0 MTU."""
        def parse(attempt: Attempt) -> MtuResult:
            text = attempt.stdout.strip()
            return MtuResult(text.isdigit(), int(text) if text.isdigit() else 0)
        return self._run(target, ("cat", "/sys/class/net/eth0/mtu"), parse)
