"""``pods/exec`` over a websocket with the ``v5``/``v4.channel.k8s.io`` protocols.

Every frame starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final
Status (JSON), 4 terminal resize. In v5 the client closes stdin with ``0xFF 0x00``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from netdoctor.lab.api.runtime import PodRuntime
from netdoctor.lab.api.store import ApiError

Obj = dict[str, Any]

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, CLOSE = 0, 1, 2, 3, 255


@dataclass(frozen=True)
class ExecRequest:
    """The parsed ``pods/exec`` query."""

    container: str
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def exit_status(command: list[str], code: int) -> Obj:
    """The channel 3 Status the kubelet writes when a command ends with ``code``."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
                   f"[{' '.join(command)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def choose_protocol(request: web.Request) -> str:
    """The channel protocol to speak, in the client's order of preference.

    Raises:
        ApiError: 400 when the request is no websocket upgrade or offers no known protocol.
    """
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(400, "BadRequest", "Upgrade request required")
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    for proto in offered:
        if proto in PROTOCOLS:
            return proto
    raise ApiError(400, "BadRequest", f"no supported subprotocol among {offered}; "
                   f"supported: {', '.join(PROTOCOLS)}")


async def serve(request: web.Request, runtime: PodRuntime, pod: Obj,
                req: ExecRequest) -> web.WebSocketResponse:
    """Start the command, upgrade the connection and relay until the command ends.

    Errors from the runtime surface before the upgrade, as a plain Status response.
    """
    protocol = choose_protocol(request)
    proc = await runtime.exec(pod, req.container, req.command, stdin=req.stdin, tty=req.tty)
    ws = web.WebSocketResponse(protocols=(protocol,))
    try:
        await ws.prepare(request)
        await _relay(ws, proc, protocol, req)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return ws


async def _relay(ws: web.WebSocketResponse, proc: asyncio.subprocess.Process, protocol: str,
                 req: ExecRequest) -> None:
    if proc.stdin is not None and not req.stdin:
        proc.stdin.close()
    reader = asyncio.create_task(_client_to_stdin(ws, proc, protocol))
    outputs: asyncio.Future[tuple[None, None]] = asyncio.gather(
        _pump(ws, proc.stdout, STDOUT, req.stdout), _pump(ws, proc.stderr, STDERR, req.stderr))
    try:
        waiting: list[asyncio.Future[None] | asyncio.Future[tuple[None, None]]] = [reader, outputs]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not outputs.done():  # the client went away first
            outputs.cancel()
            return
        code = await proc.wait()
        # A command killed by a signal reports 128 + signal, as a shell would.
        code = 128 - code if code < 0 else code
        status = json.dumps(exit_status(req.command, code)).encode()
        await ws.send_bytes(bytes([ERROR]) + status)
        await ws.close()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await outputs


async def _pump(ws: web.WebSocketResponse, stream: asyncio.StreamReader | None, channel: int,
                wanted: bool) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        if wanted and not ws.closed:
            await ws.send_bytes(bytes([channel]) + chunk)


async def _client_to_stdin(ws: web.WebSocketResponse, proc: asyncio.subprocess.Process,
                           protocol: str) -> None:
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            data = msg.data.encode()  # the Python client sends str stdin as text frames
        elif msg.type == WSMsgType.BINARY:
            data = msg.data
        else:
            break
        if not data:
            continue
        if data[0] == STDIN and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(data[1:])
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
        elif (data[0] == CLOSE and protocol == V5 and data[1:2] == bytes([STDIN])
              and proc.stdin is not None):
            proc.stdin.close()
