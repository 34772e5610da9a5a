"""A DNS listener (UDP and TCP on one address) inside a network namespace."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import cast

from netdoctor.lab.nsock import listener_in

# (query bytes, peer (ip, port), "udp"|"tcp") -> reply bytes, or None to stay silent
Handler = Callable[[bytes, tuple[str, int], str], Awaitable[bytes | None]]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        peer = (str(addr[0]), int(addr[1]))
        self.server.spawn(self._answer(data, peer))

    async def _answer(self, data: bytes, peer: tuple[str, int]) -> None:
        reply = await self.server.handler(data, peer, "udp")
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, peer)


class DnsServer:
    """Serves ``handler`` on ``host:port`` over UDP and TCP (length-prefixed) in ``netns``."""

    def __init__(self, netns: str | None, host: str, port: int, handler: Handler) -> None:
        self.netns, self.host, self.port, self.handler = netns, host, port, handler
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run one query's work; kept so :meth:`close` can cancel what is in flight."""
        async def wrap() -> None:
            await coro
        task = asyncio.ensure_future(wrap())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Bind both sockets.

        Raises:
            OSError: the address cannot be bound in the namespace.
        """
        loop = asyncio.get_running_loop()
        udp_sock = listener_in(self.netns, self.host, self.port, socket.SOCK_DGRAM)
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp_sock)
        tcp_sock = listener_in(self.netns, self.host, self.port, socket.SOCK_STREAM)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername") or ("", 0)
        peer = (str(peername[0]), int(peername[1]))
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                reply = await self.handler(await reader.readexactly(size), peer, "tcp")
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        """Close the sockets and cancel queries in flight."""
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
