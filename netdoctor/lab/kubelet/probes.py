"""Readiness and liveness probes, run from the node's namespace as a kubelet runs them."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

from netdoctor.lab import nsock

Obj = dict[str, Any]
DEADLINE = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"


def _port(probe_port: Any, container: Obj) -> int:
    if isinstance(probe_port, int) or str(probe_port).isdigit():
        return int(probe_port)
    for p in container.get("ports") or []:
        if p.get("name") == probe_port:
            return int(p["containerPort"])
    raise ValueError(f"unknown port {probe_port!r}")


def _dial_error(exc: BaseException, ip: str, port: int) -> str:
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return f"dial tcp {ip}:{port}: connect: connection refused"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"dial tcp {ip}:{port}: connect: no route to host"
    return f"dial tcp {ip}:{port}: {exc}"


async def _connect(netns: str, ip: str, port: int, timeout: float) -> socket.socket:
    sock = nsock.socket_in(netns)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (ip, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock


async def http_get(netns: str, ip: str, port: int, path: str, timeout: float) -> str | None:
    """``None`` on a 2xx/3xx answer, else the kubelet's failure message."""
    url = f"http://{ip}:{port}{path}"
    try:
        sock = await _connect(netns, ip, port, timeout)
    except TimeoutError:
        return f'Get "{url}": {DEADLINE}'
    except OSError as exc:
        return f'Get "{url}": {_dial_error(exc, ip, port)}'
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.29\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        writer.close()
    except (TimeoutError, OSError):
        sock.close()
        return f'Get "{url}": {DEADLINE}'
    parts = line.decode(errors="replace").split()
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return None if 200 <= code < 400 else f"HTTP probe failed with statuscode: {code}"


async def tcp_open(netns: str, ip: str, port: int, timeout: float) -> str | None:
    """``None`` when a TCP connection opens, else the failure message."""
    try:
        sock = await _connect(netns, ip, port, timeout)
    except (TimeoutError, OSError) as exc:
        return _dial_error(exc, ip, port)
    sock.close()
    return None


async def run_probe(probe: Obj, container: Obj, node_netns: str, pod_ip: str) -> str | None:
    """Run an httpGet or tcpSocket probe; ``None`` on success, else why it failed.

    Exec probes are run by the pod worker, which knows how to enter the container.
    """
    timeout = float(probe.get("timeoutSeconds", 1))
    if "httpGet" in probe:
        hg = probe["httpGet"]
        return await http_get(
            node_netns,
            hg.get("host") or pod_ip,
            _port(hg["port"], container),
            hg.get("path", "/"),
            timeout,
        )
    if "tcpSocket" in probe:
        ts = probe["tcpSocket"]
        return await tcp_open(
            node_netns, ts.get("host") or pod_ip, _port(ts["port"], container), timeout
        )
    return None
