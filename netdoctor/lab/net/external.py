"""The lab's "outside world", hosted by the router namespace.

An upstream resolver (dnsmasq) on the router's underlay address and on an extra
documentation address, and a web server on documentation addresses. Only
documentation ranges (RFC 5737) are used, so nothing here can reach or shadow a
real Internet host.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from dnslib import DNSRecord

from netdoctor.lab import nsock
from netdoctor.lab.net import _ns

ROUTER_IP = "192.168.4.1"
WEB_IP = "192.0.2.10"
ORG_IP = "198.51.100.10"
EXTRA_DNS_IP = "198.51.100.53"
EXTERNAL_ADDRESSES = (WEB_IP, ORG_IP, EXTRA_DNS_IP)
RESOLVER_IPS = (ROUTER_IP, EXTRA_DNS_IP)
# The names the upstream resolver answers; any other name outside these zones is REFUSED,
# as by a resolver with no upstream of its own.
DNS_RECORDS: dict[str, str] = {
    "example.com": WEB_IP,
    "www.example.com": WEB_IP,
    "example.org": ORG_IP,
    "www.example.org": ORG_IP,
}
LOCAL_ZONES = ("example.com", "example.org")
WEB_BODY = "netdoctor lab web: ok\n"
DNSMASQ_CONF = "dnsmasq.conf"
DNSMASQ_PID = "dnsmasq.pid"
DNSMASQ_LOG = "dnsmasq.log"

# dnsmasq runs in the foreground as our child; kept here so destroy() can reap it.
_children: dict[int, subprocess.Popen[bytes]] = {}


def dnsmasq_config(state_dir: Path) -> str:
    """The upstream resolver's configuration file text."""
    lines = [
        "no-resolv", "no-hosts", "bind-interfaces", "user=root",
        f"listen-address={','.join(RESOLVER_IPS)}",
        f"pid-file={state_dir / DNSMASQ_PID}",
        f"log-facility={state_dir / DNSMASQ_LOG}", "log-queries",
        # Local zones answer AAAA with NODATA instead of REFUSED.
        *(f"local=/{zone}/" for zone in LOCAL_ZONES),
        *(f"host-record={name},{ip}" for name, ip in DNS_RECORDS.items()),
    ]
    return "\n".join(lines) + "\n"


async def start_dnsmasq(netns: str, state_dir: Path, timeout: float = 5.0) -> int:
    """Start dnsmasq in ``netns`` and wait until it answers; return its pid.

    Raises:
        TimeoutError: it did not answer within ``timeout`` seconds (its log is quoted).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir / DNSMASQ_CONF
    conf.write_text(dnsmasq_config(state_dir))
    # A plain Popen (not an asyncio child) so the resolver outlives the event loop
    # that started it; destroy() kills it by pid file and reaps it.
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, "dnsmasq", "--keep-in-foreground",
         f"--conf-file={conf}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    _children[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while not await _answers(netns, ROUTER_IP):
        if proc.poll() is not None or time.monotonic() > deadline:
            log = (state_dir / DNSMASQ_LOG)
            tail = log.read_text()[-500:] if log.exists() else ""
            raise TimeoutError(f"dnsmasq in {netns} did not answer (exit {proc.poll()}): {tail}")
        await asyncio.sleep(0.02)
    return proc.pid


async def _answers(netns: str, server: str) -> bool:
    """Whether a DNS server in ``netns`` answers one query within 0.2 s."""
    sock = nsock.socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, (server, 53))
        await loop.sock_sendall(sock, DNSRecord.question("example.com").pack())
        await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.2)
        return True
    except (OSError, TimeoutError):
        return False
    finally:
        sock.close()


def stop_dnsmasq(state_dir: Path) -> None:
    """Kill the dnsmasq recorded in ``state_dir``'s pid file, if it still runs."""
    pid_file = state_dir / DNSMASQ_PID
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = 0
    # Check the name so a recycled pid never kills an unrelated process.
    if pid and _comm(pid) == "dnsmasq":
        _ns.kill([pid])
        child = _children.pop(pid, None)
        if child is not None:
            child.wait(timeout=5)  # SIGKILL is prompt; reaping leaves no zombie
    pid_file.unlink(missing_ok=True)
    reap()


def reap(killed: Collection[int] = ()) -> None:
    """Collect exited dnsmasq children so none stays a zombie.

    Args:
        killed: pids just sent SIGKILL; those children are waited for (briefly).
    """
    for pid, proc in list(_children.items()):
        if pid in killed:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.poll() is not None:
            del _children[pid]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclass
class WebServers:
    """The router's HTTP (and optionally HTTPS) servers on the caller's event loop."""

    runner: web.AppRunner
    addresses: list[tuple[str, int, bool]] = field(default_factory=list)
    # Source address of each request: shows whether pod traffic arrived masqueraded.
    clients: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        """Close every listener. Needed before destroy(): open sockets pin a namespace."""
        await self.runner.cleanup()


CLIENTS = web.AppKey("clients", list[str])


async def _hello(request: web.Request) -> web.Response:
    request.app[CLIENTS].append(request.remote or "")
    return web.Response(text=WEB_BODY)


async def start_web(netns: str, cert_file: Path | None = None,
                    key_file: Path | None = None) -> WebServers:
    """Serve HTTP on WEB_IP:80 and ORG_IP:80, and HTTPS on WEB_IP:443 when given a cert.

    ``cert_file`` holds the serving certificate chain (signed by the lab CA) and
    ``key_file`` its private key (``None``: the key is in ``cert_file``).
    Every path answers 200 with :data:`WEB_BODY`.
    """
    app = web.Application()
    app.router.add_get("/{tail:.*}", _hello)
    clients: list[str] = []
    app[CLIENTS] = clients  # must be set before setup() freezes the app
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    servers = WebServers(runner, clients=clients)
    try:
        for ip in (WEB_IP, ORG_IP):
            await web.SockSite(runner, nsock.listener_in(netns, ip, 80)).start()
            servers.addresses.append((ip, 80, False))
        if cert_file is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(cert_file, key_file)
            site = web.SockSite(runner, nsock.listener_in(netns, WEB_IP, 443), ssl_context=tls)
            await site.start()
            servers.addresses.append((WEB_IP, 443, True))
    except BaseException:
        await runner.cleanup()
        raise
    return servers

