"""An agnhost-style test server (``agnhost netexec``) as a built-in container.

Container args as for the real image, e.g. ``["netexec", "--http-port=8080",
"--udp-port=8081"]`` (``--flag value`` works too; a leading ``/agnhost`` command is
skipped). HTTP: ``/`` (``NOW: <time>``), ``/hostname``, ``/clientip``
(``ip:port`` of the caller), ``/echo?msg=x``, ``/healthz``. UDP: ``hostname``,
``echo <text>`` and ``clientip`` requests, as netexec answers them. Other
subcommands fail like an unknown agnhost command.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import cast

from aiohttp import web

from netdoctor.lab.components._http import serve_http, stop_http
from netdoctor.lab.containers import ContainerContext, builtin
from netdoctor.lab.nsock import listener_in

__all__ = ["Echo", "parse_args"]


def parse_args(argv: list[str]) -> tuple[str, dict[str, str]]:
    """Subcommand and ``--flag`` values from an agnhost command line."""
    args = [str(a) for a in argv]
    if args and args[0].endswith("agnhost"):
        args = args[1:]
    sub = args[0] if args else ""
    flags: dict[str, str] = {}
    rest = args[1:]
    i = 0
    while i < len(rest):
        arg = rest[i].lstrip("-")
        if "=" in arg:
            key, value = arg.split("=", 1)
        elif i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            key, value = arg, rest[i + 1]
            i += 1
        else:
            key, value = arg, "true"
        flags[key] = value
        i += 1
    return sub, flags


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        text = data.decode(errors="replace").strip()
        if text == "hostname":
            reply = self.hostname
        elif text.startswith("echo "):
            reply = text[5:]
        elif text == "clientip":
            reply = f"{addr[0]}:{addr[1]}"
        else:
            return
        if self.transport is not None:
            self.transport.sendto(reply.encode(), addr)


class Echo:
    """``agnhost netexec``: answers who it is and who asked, over HTTP and UDP."""

    def __init__(self) -> None:
        self.hostname = ""

    async def run(self, ctx: ContainerContext) -> int:
        """Serve until stopped; 1 for a subcommand the lab does not implement."""
        argv = [*(ctx.container.get("command") or []), *(ctx.container.get("args") or [])]
        sub, flags = parse_args(argv)
        if sub != "netexec":
            ctx.log(f'Error: unknown command "{sub}" for "agnhost"')
            ctx.log("Run 'agnhost --help' for usage.")
            return 1
        spec = ctx.pod.get("spec") or {}
        # The pod's hostname is what os.Hostname() returns inside it.
        self.hostname = ctx.node.name if ctx.host_network else \
            str(spec.get("hostname") or ctx.pod["metadata"]["name"])
        host = ctx.pod_ip or "0.0.0.0"
        http_port, udp_port = int(flags.get("http-port", 8080)), int(flags.get("udp-port", 8081))
        runner: web.AppRunner | None = None
        udp: asyncio.DatagramTransport | None = None
        try:
            runner = await serve_http(ctx.netns, host, http_port, {
                "/": self._root, "/hostname": self._hostname, "/clientip": self._clientip,
                "/echo": self._echo, "/healthz": self._healthz})
            ctx.log(f"Started HTTP server on port {http_port}")
            if udp_port > 0:
                sock = listener_in(ctx.netns, host, udp_port, socket.SOCK_DGRAM)
                udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _Udp(self.hostname), sock=sock)
                ctx.log(f"Started UDP server on port {udp_port}")
            await asyncio.Event().wait()  # until the container is stopped
            return 0
        finally:
            if udp is not None:
                udp.close()
            await stop_http(runner)

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text=f"NOW: {datetime.now(UTC).isoformat()}")

    async def _hostname(self, request: web.Request) -> web.Response:
        return web.Response(text=self.hostname)

    async def _clientip(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return web.Response(text=f"{peer[0]}:{peer[1]}" if peer else "")

    async def _echo(self, request: web.Request) -> web.Response:
        return web.Response(text=request.query.get("msg", ""))

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="")


@builtin(r"agnhost:")
def _factory() -> Echo:
    return Echo()
