"""The lab's CoreDNS 1.11 as a built-in container.

It reads the Corefile from the ConfigMap kube-system/coredns, waits for the API
through the pod network (TLS to the ``kubernetes`` Service IP, as the real
kubernetes plugin does), then serves DNS on the pod IP: the cluster zone from the
object store, everything else forwarded over UDP from the pod's namespace. So a
broken pod network gives the real symptoms: "waiting for Kubernetes API" and a
crash, upstream i/o timeouts, a readiness probe that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import random
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from dnslib import QTYPE, RCODE, DNSError, DNSRecord

from netdoctor.lab.api.resources import resource
from netdoctor.lab.components._http import serve_http, stop_http
from netdoctor.lab.components.coredns_dns import DnsServer
from netdoctor.lab.components.coredns_zone import answer, in_zone
from netdoctor.lab.containers import ContainerContext, builtin
from netdoctor.lab.looplag import LAG
from netdoctor.lab.nsock import socket_in

__all__ = ["CoreDNS", "Corefile", "parse_corefile"]

CONFIGMAPS = resource("", "configmaps")
VERSION = "CoreDNS-1.11.1"


@dataclass
class Corefile:
    """The parts of a Corefile the lab's CoreDNS honours (the ``.:53`` block)."""

    text: str
    port: int = 53
    cluster_zone: str | None = None
    forward: list[str] = field(default_factory=list)
    log: bool = False
    health_port: int = 8080
    ready_port: int = 8181


def _port(arg: str | None, default: int) -> int:
    match = re.search(r":(\d+)$", arg or "")
    return int(match.group(1)) if match else default


def parse_corefile(text: str) -> Corefile:
    """Read the server block for ``.``: kubernetes zone, forward targets, log/health/ready."""
    cf = Corefile(text)
    depth = 0
    in_root = False
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].replace("{", " { ").replace("}", " } ").split()
        if not words:
            continue
        if depth == 0 and words[0].startswith("."):
            in_root, cf.port = True, _port(words[0], 53)
        elif depth == 1 and in_root and words[0] not in ("{", "}"):
            _directive(cf, [w for w in words if w not in ("{", "}")])
        depth += words.count("{") - words.count("}")
        in_root = in_root and depth > 0
    return cf


def _directive(cf: Corefile, words: list[str]) -> None:
    name, args = words[0], words[1:]
    if name == "kubernetes":
        zones = [z.rstrip(".") for z in args if not z.endswith("arpa")]
        cf.cluster_zone = zones[0] if zones else "cluster.local"
    elif name == "forward" and len(args) >= 2:
        cf.forward = args[1:]
    elif name == "log":
        cf.log = True
    elif name == "health":
        cf.health_port = _port(args[0] if args else None, 8080)
    elif name == "ready":
        cf.ready_port = _port(args[0] if args else None, 8181)


def corefile_of(ctx: ContainerContext) -> str | None:
    """The Corefile in the ConfigMap volume the container mounts at /etc/coredns, if any.

    Every distribution names that ConfigMap its own way (``coredns``,
    ``rke2-coredns-rke2-coredns``, ``openshift-dns/dns-default``); the pod says which.
    """
    mounts = {m.get("name"): m.get("mountPath") for m in ctx.container.get("volumeMounts") or []}
    ns = ctx.pod["metadata"].get("namespace", "kube-system")
    for vol in ctx.pod.get("spec", {}).get("volumes") or []:
        cm_ref = vol.get("configMap") or {}
        if cm_ref.get("name") and mounts.get(vol.get("name")) == "/etc/coredns":
            cm = ctx.store.find(CONFIGMAPS, ns, cm_ref["name"])
            text = ((cm or {}).get("data") or {}).get("Corefile")
            return str(text) if text is not None else None
    return None


async def await_reply(sock: socket.socket, query: bytes, timeout: float, asked: float
                      ) -> bytes | None:
    """The first datagram on ``sock`` answering ``query`` (same message id) within
    ``timeout`` of ``asked`` (monotonic); None when none came.

    A stall of the lab's own loop, which CoreDNS shares here as it never does on a node, can
    hold a reply that already came past the timeout: then the socket is read once more."""
    loop = asyncio.get_running_loop()

    async def reply() -> bytes:
        while True:
            resp = await loop.sock_recv(sock, 65535)
            if resp[:2] == query[:2]:
                return resp

    for _ in range(2):
        try:
            return await asyncio.wait_for(reply(), timeout)
        except TimeoutError:
            if not LAG.held_up(asked, timeout):
                return None
    return None


def _go_dial_error(exc: BaseException) -> str:
    """The tail Go's net package puts on a failed dial."""
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return "connect: " + {
            errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network is unreachable"}.get(exc.errno, exc.strerror or str(exc))
    return str(exc) or type(exc).__name__


class CoreDNS:
    """CoreDNS with the kubeadm Corefile, serving one pod's IP."""

    startup_deadline = 5.0  # seconds to reach the API before giving up (exit 1)
    connect_timeout = 1.0
    request_timeout = 2.0  # TLS handshake and /version answer, after connecting
    forward_timeout = 2.0
    etc_netns = Path("/etc/netns")  # where `ip netns exec` finds a namespace's resolv.conf

    def __init__(self) -> None:
        self.api_reached = False
        self.serving = False
        self.upstreams: list[tuple[str, int]] = []

    async def run(self, ctx: ContainerContext) -> int:
        """Serve DNS until stopped; 1 when the Corefile is unusable or the API unreachable."""
        text = corefile_of(ctx)
        if text is None:
            ctx.log("Error: open /etc/coredns/Corefile: no such file or directory")
            return 1
        cf = parse_corefile(text)
        self.upstreams = self._upstreams(ctx, cf)
        if cf.forward and not self.upstreams:
            ctx.log("[FATAL] plugin/forward: no nameservers found")
            return 1
        ctx.log(f".:{cf.port}")
        ctx.log("[INFO] plugin/reload: Running configuration SHA512 = "
                + hashlib.sha512(text.encode()).hexdigest())
        ctx.log(VERSION)
        ctx.log("linux/amd64, go1.20.7, ae2bbc2")
        runners: list[web.AppRunner] = []
        dns: DnsServer | None = None
        try:
            runners.append(await serve_http(ctx.netns, "0.0.0.0", cf.health_port,
                                            {"/health": self._health}))
            runners.append(await serve_http(ctx.netns, "0.0.0.0", cf.ready_port,
                                            {"/ready": self._ready}))
            if cf.cluster_zone is not None and not await self._wait_for_api(ctx):
                return 1
            dns = DnsServer(ctx.netns, ctx.pod_ip or "0.0.0.0", cf.port,
                            lambda data, peer, proto: self._handle(ctx, cf, data, peer, proto))
            await dns.start()
            self.serving = True
            await asyncio.Event().wait()  # until the container is stopped
            return 0
        finally:
            self.serving = False
            if dns is not None:
                await dns.close()
            for runner in runners:
                await stop_http(runner)

    def _upstreams(self, ctx: ContainerContext, cf: Corefile) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for target in cf.forward:
            if target.startswith("/"):
                # The kubelet bind-mounts the pod's resolv.conf over /etc/resolv.conf.
                path = self.etc_netns / ctx.netns / Path(target).name
                with contextlib.suppress(OSError):
                    for line in path.read_text().splitlines():
                        parts = line.split()
                        if len(parts) >= 2 and parts[0] == "nameserver":
                            out.append((parts[1], 53))
                continue
            host = target.removeprefix("dns://")
            ip, _, port = host.partition(":")
            out.append((ip, int(port or 53)))
        return out

    async def _wait_for_api(self, ctx: ContainerContext) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_deadline
        next_log = loop.time()
        url = f"https://{ctx.lab.api_service_ip}:443/version"
        while True:
            started = loop.time()
            err = await self._probe_api(ctx, max(0.05, deadline - started))
            if err is None:
                self.api_reached = True
                return True
            now = loop.time()
            if now >= next_log:  # about once a second, like the plugin's ticker
                ctx.log("[INFO] plugin/kubernetes: waiting for Kubernetes API before "
                        "starting server")
                next_log = now + 1.0
            if now >= deadline:
                break
            # A refused or unreachable dial fails at once; do not spin on it.
            await asyncio.sleep(min(max(0.0, 0.5 - (now - started)), deadline - now))
        ctx.log(f'[FATAL] plugin/kubernetes: Get "{url}": {err}')
        return False

    async def _probe_api(self, ctx: ContainerContext, budget: float) -> str | None:
        """``None`` when ``GET /version`` answered 200, else the Go-style error.

        ``budget`` caps the connect wait so the startup deadline is kept.
        """
        ip = ctx.lab.api_service_ip
        sock = socket_in(ctx.netns, socket.AF_INET, socket.SOCK_STREAM)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (ip, 443)),
                                   min(self.connect_timeout, budget))
        except (OSError, TimeoutError) as exc:
            sock.close()
            return f"dial tcp {ip}:443: {_go_dial_error(exc)}"
        try:
            tls = ssl.create_default_context(cafile=str(ctx.lab.ca_file))
            return await asyncio.wait_for(self._get_version(sock, tls), self.request_timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return f"net/http: TLS handshake or request failed: {_go_dial_error(exc)}"
        finally:
            sock.close()

    async def _get_version(self, sock: socket.socket, tls: ssl.SSLContext) -> str | None:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname="kubernetes.default.svc")
        try:
            writer.write(b"GET /version HTTP/1.1\r\nHost: kubernetes.default.svc\r\n"
                         b"User-Agent: coredns/1.11.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            status = (await reader.readline()).decode(errors="replace").split()
            if len(status) >= 2 and status[1] == "200":
                return None
            return f"unexpected status {' '.join(status[1:]) or 'none'}"
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, ctx: ContainerContext, cf: Corefile, data: bytes,
                      peer: tuple[str, int], proto: str) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except (DNSError, IndexError, ValueError):
            return None
        qname = str(request.q.qname)
        start = asyncio.get_running_loop().time()
        if cf.cluster_zone and in_zone(qname, cf.cluster_zone):
            reply = bytes(answer(ctx.store, cf.cluster_zone, request).pack())
        else:
            reply = await self._forward(ctx, request, data)
        if cf.log:
            self._log_query(ctx, request, reply, peer, proto, start)
        return reply

    async def _forward(self, ctx: ContainerContext, request: DNSRecord, data: bytes) -> bytes:
        qname, qtype = str(request.q.qname), QTYPE.get(request.q.qtype)
        if not self.upstreams:
            return self._servfail(request)
        ip, port = random.choice(self.upstreams)  # the forward plugin's default "random" policy
        sock = socket_in(ctx.netns, socket.AF_INET, socket.SOCK_DGRAM)
        loop = asyncio.get_running_loop()
        src = f"{ctx.pod_ip}:0"
        try:
            sock.connect((ip, port))  # UDP: only picks the source and filters replies
            src = "{}:{}".format(*sock.getsockname())
            await loop.sock_sendall(sock, data)
            resp = await await_reply(sock, data, self.forward_timeout, time.monotonic())
            if resp is not None:
                return resp
            err = f"read udp {src}->{ip}:{port}: i/o timeout"
        except OSError as exc:
            reason = _go_dial_error(exc).replace("connect: ", "read: ")
            err = f"read udp {src}->{ip}:{port}: {reason}"
        finally:
            sock.close()
        ctx.log(f"[ERROR] plugin/errors: 2 {qname} {qtype}: {err}")
        return self._servfail(request)

    @staticmethod
    def _servfail(request: DNSRecord) -> bytes:
        reply = request.reply()
        reply.header.aa = 0
        reply.header.rcode = RCODE.SERVFAIL
        return bytes(reply.pack())

    @staticmethod
    def _log_query(ctx: ContainerContext, request: DNSRecord, reply: bytes,
                   peer: tuple[str, int], proto: str, start: float) -> None:
        rcode = "NOERROR"
        with contextlib.suppress(DNSError, IndexError, ValueError):
            rcode = RCODE.get(DNSRecord.parse(reply).header.rcode)
        took = asyncio.get_running_loop().time() - start
        ctx.log(f'[INFO] {peer[0]}:{peer[1]} - {request.header.id} "{QTYPE.get(request.q.qtype)} '
                f'IN {request.q.qname} {proto} {len(request.pack())} false 512" {rcode} '
                f"qr,rd {len(reply)} {took:.9f}s")

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _ready(self, request: web.Request) -> web.Response:
        if self.api_reached and self.serving:
            return web.Response(text="OK")
        return web.Response(status=503, text="kubernetes")


# kubeadm's image, k3s's mirror, RKE2's hardened build, OKD's operand image.
@builtin(r"coredns[/-]coredns:|hardened-coredns:|origin-coredns:")
def _factory() -> CoreDNS:
    return CoreDNS()
