"""Pure parsers for probe command output: ping, nslookup, dig and curl.

Each parser returns a frozen result with a ``conclusive`` flag. A conclusive result is an
observation, success or failure alike ("100% packet loss", "NXDOMAIN", "connection timed out;
no servers could be reached" are real results and are not retried). Inconclusive output (empty,
truncated, unrecognised) is what a retry loop should try again. Both the iputils/bind9 and the
busybox dialects are understood.

Example:
    >>> r = parse_ping("3 packets transmitted, 0 received, 100% packet loss, time 2042ms")
    >>> r.conclusive, r.ok, r.loss_percent
    (True, False, 100.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

LookupStatus = Literal["ok", "nxdomain", "servfail", "refused", "timeout", "no_answer", "unknown"]

_PING_STATS = re.compile(
    r"(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+(\d+) duplicates)?"
    r"(?:, \+\d+ corrupted)?(?:, \+(\d+) errors)?, ([\d.]+)% packet loss"
)
_PING_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/mdev)? = ([\d.]+)/([\d.]+)/([\d.]+)")
_UNREACHABLE = re.compile(r"Destination (?:Host|Net|Port) Unreachable|Network is unreachable|"
                          r"Network unreachable|No route to host")
_BAD_NAME = re.compile(r"unknown host|bad address|Name or service not known|"
                       r"Temporary failure in name resolution")


@dataclass(frozen=True)
class PingResult:
    """What one ``ping -c N`` run showed.

    Attributes:
        conclusive: The output was understood (see module docstring).
        transmitted: Echo requests sent (0 when sending was impossible).
        received: Echo replies received.
        loss_percent: Packet loss as printed.
        rtt_avg_ms: Average round-trip time, when anything answered.
        unreachable: An ICMP or local "unreachable" was reported.
        error: The unreachable / name error text, when there was one.
    """

    conclusive: bool
    transmitted: int = 0
    received: int = 0
    loss_percent: float = 100.0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    unreachable: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        """At least one reply came back."""
        return self.conclusive and self.received > 0


def parse_ping(stdout: str, stderr: str = "") -> PingResult:
    """Parse iputils or busybox ``ping`` output.

    Example:
        >>> parse_ping("", "ping: sendto: Network is unreachable").error
        'Network is unreachable'
    """
    text = f"{stdout}\n{stderr}"
    unreach = _UNREACHABLE.search(text)
    error = unreach.group(0) if unreach else ""
    stats = _PING_STATS.search(stdout)
    if stats:
        rtt = _PING_RTT.search(stdout)
        return PingResult(
            conclusive=True,
            transmitted=int(stats.group(1)),
            received=int(stats.group(2)),
            loss_percent=float(stats.group(5)),
            rtt_min_ms=float(rtt.group(1)) if rtt else None,
            rtt_avg_ms=float(rtt.group(2)) if rtt else None,
            rtt_max_ms=float(rtt.group(3)) if rtt else None,
            unreachable=bool(unreach),
            error=error,
        )
    if unreach:
        return PingResult(conclusive=True, unreachable=True, error=error)
    bad_name = _BAD_NAME.search(text)
    if bad_name:
        return PingResult(conclusive=True, error=bad_name.group(0))
    return PingResult(conclusive=False)


@dataclass(frozen=True)
class LookupResult:
    """What one ``nslookup`` or ``dig`` run showed.

    Attributes:
        conclusive: The output was understood.
        status: ``ok`` (answers), ``nxdomain``, ``servfail``, ``refused`` (the server refused or
            its port was closed), ``timeout`` (no server answered), ``no_answer`` (the name
            exists but has no record of that type, or ``dig +short`` printed nothing),
            ``unknown`` (inconclusive).
        addresses: Answer data in order (addresses for A/AAAA queries).
        server: The server that answered, when printed.
        rcode: The DNS response code as printed by dig (``NOERROR``...), if any.
        query_time_ms: dig's query time, if printed.
    """

    conclusive: bool
    status: LookupStatus
    addresses: tuple[str, ...] = ()
    server: str = ""
    rcode: str = ""
    query_time_ms: int | None = None

    @property
    def ok(self) -> bool:
        """The name resolved to at least one address."""
        return self.status == "ok"


_RCODE_STATUS: dict[str, LookupStatus] = {
    "NOERROR": "ok", "NXDOMAIN": "nxdomain", "SERVFAIL": "servfail", "REFUSED": "refused",
}
_NO_SERVER = re.compile(r"no servers could be reached")
_REFUSED = re.compile(r"connection refused", re.IGNORECASE)


def _transport_failure(text: str) -> LookupStatus | None:
    # busybox prints "connection timed out" even when its stderr says the port refused
    if _REFUSED.search(text):
        return "refused"
    if _NO_SERVER.search(text) or re.search(r"\btimed out\b", text):
        return "timeout"
    return None


def parse_nslookup(stdout: str, stderr: str = "") -> LookupResult:
    """Parse bind9 or busybox ``nslookup NAME [SERVER]`` output.

    Example:
        >>> parse_nslookup(";; connection timed out; no servers could be reached").status
        'timeout'
    """
    text = f"{stdout}\n{stderr}"
    server_m = re.search(r"^Server:\s+(\S+)", stdout, re.MULTILINE)
    server = server_m.group(1) if server_m else ""
    addresses: list[str] = []
    in_answer = False
    for line in stdout.splitlines():
        if re.match(r"^Name:\s", line):
            in_answer = True
            continue
        m = re.match(r"^Address(?: \d+)?:\s+(\S+)", line)
        if in_answer and m:
            addresses.append(m.group(1))
    if addresses:
        return LookupResult(True, "ok", tuple(addresses), server)
    cant = re.search(r"(?:server )?can't find [^:]+: (\w+)|can't resolve", text, re.IGNORECASE)
    if cant:
        code = (cant.group(1) or "NXDOMAIN").upper()
        status: LookupStatus = _RCODE_STATUS.get(code, "no_answer")
        if code == "NOERROR" or status == "ok":
            status = "no_answer"
        return LookupResult(True, status, (), server, rcode=code)
    failed = _transport_failure(text)
    if failed:
        return LookupResult(True, failed, (), server)
    return LookupResult(False, "unknown", (), server)


def parse_dig(stdout: str, stderr: str = "", exit_code: int | None = None) -> LookupResult:
    """Parse ``dig`` output, full or ``+short``.

    ``+short`` output carries no status: an empty answer with exit code 0 is ``no_answer``
    (NXDOMAIN and NODATA look the same there); without the exit code it is inconclusive.

    Example:
        >>> parse_dig("10.96.0.10\\n", exit_code=0).addresses
        ('10.96.0.10',)
    """
    text = f"{stdout}\n{stderr}"
    header = re.search(r"->>HEADER<<-.*status: (\w+)", stdout)
    if header:
        rcode = header.group(1)
        answers = _dig_answer_section(stdout)
        qtime = re.search(r";; Query time: (\d+) msec", stdout)
        server = re.search(r";; SERVER: ([^#\s]+)", stdout)
        status = _RCODE_STATUS.get(rcode, "unknown")
        if status == "ok" and not answers:
            status = "no_answer"
        return LookupResult(
            conclusive=status != "unknown", status=status, addresses=answers,
            server=server.group(1) if server else "", rcode=rcode,
            query_time_ms=int(qtime.group(1)) if qtime else None,
        )
    failed = _transport_failure(text)
    if failed:
        return LookupResult(True, failed)
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    if lines and not any(ln.startswith(";") for ln in lines):
        return LookupResult(True, "ok", tuple(lines))
    if not lines and exit_code == 0:
        return LookupResult(True, "no_answer")
    return LookupResult(False, "unknown")


def _dig_answer_section(stdout: str) -> tuple[str, ...]:
    section = re.search(r";; ANSWER SECTION:\n(.*?)(?:\n\n|\Z)", stdout, re.DOTALL)
    if not section:
        return ()
    return tuple(line.split()[-1] for line in section.group(1).splitlines() if line.strip())


CURL_WRITE_OUT = (
    "http_code=%{http_code} time_total=%{time_total} exitcode=%{exitcode} "
    "remote_ip=%{remote_ip}\\n"
)
"""The ``-w`` format :func:`parse_curl` reads (``curl -sS -o /dev/null -w "$CURL_WRITE_OUT"``)."""


@dataclass(frozen=True)
class CurlResult:
    """What one ``curl -w CURL_WRITE_OUT`` run showed.

    Attributes:
        conclusive: The write-out line was found.
        http_code: HTTP status, ``None`` when no response arrived (curl prints ``000``).
        time_total: Seconds the transfer took.
        curl_exit: curl's own exit code as written out (7 refused, 28 timeout, ...).
        remote_ip: The address connected to (empty when none).
        error: curl's error message from stderr (``curl: (7) Failed to connect ...``).
    """

    conclusive: bool
    http_code: int | None = None
    time_total: float | None = None
    curl_exit: int | None = None
    remote_ip: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """A 2xx or 3xx response arrived (5xx is never a pass)."""
        return self.http_code is not None and 200 <= self.http_code < 400


def parse_curl(stdout: str, stderr: str = "") -> CurlResult:
    """Parse the write-out line produced with :data:`CURL_WRITE_OUT`.

    Example:
        >>> parse_curl("http_code=000 time_total=2.0 exitcode=28 remote_ip=").curl_exit
        28
    """
    line = next((ln for ln in reversed(stdout.splitlines()) if "http_code=" in ln), None)
    err = re.search(r"curl: \(\d+\) .*", stderr)
    error = err.group(0) if err else ""
    if line is None:
        return CurlResult(conclusive=False, error=error)
    fields = dict(re.findall(r"(\w+)=(\S*)", line))
    try:
        code = int(fields["http_code"])
        total = float(fields["time_total"]) if "time_total" in fields else None
        curl_exit = int(fields["exitcode"]) if fields.get("exitcode") else None
    except (KeyError, ValueError):
        return CurlResult(conclusive=False, error=error)
    return CurlResult(
        conclusive=True, http_code=code or None, time_total=total, curl_exit=curl_exit,
        remote_ip=fields.get("remote_ip", ""), error=error,
    )



CURL_SERIES_WRITE_OUT = (
    "urlnum=%{urlnum} http_code=%{http_code} time_total=%{time_total} exitcode=%{exitcode} "
    "remote_ip=%{remote_ip} errormsg=%{errormsg}\\n"
)
"""The ``-w`` format of one curl run fetching several URLs (:func:`parse_curl_series`): one
line per transfer, in completion order, numbered by ``urlnum`` (curl >= 7.75)."""
_CURL_ERROR = re.compile(r"curl: \((\d+)\) .*")


def parse_curl_series(stdout: str, stderr: str, count: int) -> tuple[CurlResult, ...]:
    """One :class:`CurlResult` per transfer of a curl run with :data:`CURL_SERIES_WRITE_OUT`,
    in URL order; a transfer without its line is inconclusive.

    Example:
        >>> r = parse_curl_series("urlnum=1 http_code=000 time_total=2.0 exitcode=28 "
        ...                       "remote_ip= errormsg=Connection timed out\\n", "", 2)
        >>> r[0].conclusive, r[1].curl_exit, r[1].error
        (False, 28, 'Connection timed out')
    """
    found: dict[int, CurlResult] = {}
    for line in stdout.splitlines():
        head, _, message = line.partition(" errormsg=")
        fields = dict(re.findall(r"(\w+)=(\S*)", head))
        try:
            num = int(fields["urlnum"])
            code = int(fields["http_code"])
            total = float(fields["time_total"]) if fields.get("time_total") else None
            curl_exit = int(fields["exitcode"]) if fields.get("exitcode") else None
        except (KeyError, ValueError):
            continue
        error = message.strip()
        if not error and curl_exit:  # a curl without %{errormsg}: its stderr line, by exit code
            error = next((m.group(0) for m in _CURL_ERROR.finditer(stderr)
                          if int(m.group(1)) == curl_exit), "")
        found[num] = CurlResult(conclusive=True, http_code=code or None, time_total=total,
                                curl_exit=curl_exit, remote_ip=fields.get("remote_ip", ""),
                                error=error)
    return tuple(found.get(i, CurlResult(conclusive=False)) for i in range(count))


@dataclass(frozen=True)
class ResolvConf:
    """A pod's /etc/resolv.conf: the cluster DNS address and search path the kubelet wrote.

    Example:
        >>> r = parse_resolv_conf("search default.svc.k8s.example svc.k8s.example k8s.example\\n"
        ...                       "nameserver 10.43.0.10\\noptions ndots:5\\n")
        >>> r.nameserver, r.cluster_domain
        ('10.43.0.10', 'k8s.example')
    """

    conclusive: bool
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()

    @property
    def nameserver(self) -> str:
        """The first nameserver ("" when none)."""
        return self.nameservers[0] if self.nameservers else ""

    @property
    def cluster_domain(self) -> str:
        """The cluster domain: what follows ``svc.`` in the search path ("" when absent)."""
        return next((s[4:] for s in self.search if s.startswith("svc.") and len(s) > 4), "")


def parse_resolv_conf(text: str) -> ResolvConf:
    """Nameservers and search domains of a resolv.conf (``conclusive`` when it names a
    nameserver)."""
    servers: list[str] = []
    search: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append(words[1])
        elif words and words[0] in ("search", "domain"):
            search = words[1:]
    return ResolvConf(bool(servers), tuple(servers), tuple(search))
