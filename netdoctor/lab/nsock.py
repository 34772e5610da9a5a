"""Sockets that live in another network namespace.

A socket belongs to the namespace of the thread that created it, and keeps it.
Creating it in a short-lived thread that first ``setns``-es into the target lets
the lab's single event loop serve and probe every node and pod namespace without
a process per namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def netns_path(name: str) -> Path:
    """Where ``ip netns add NAME`` pins a namespace."""
    return NETNS_DIR / name


def socket_in(netns: str | None, family: int = socket.AF_INET,
              type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A new non-blocking socket in namespace ``netns`` (``None``: the lab's own).

    Raises:
        OSError: the namespace does not exist or cannot be entered.
    """
    if netns is None:
        sock = socket.socket(family, type_)
        sock.setblocking(False)
        return sock
    result: list[socket.socket | BaseException] = []

    def enter() -> None:
        try:
            fd = os.open(netns_path(netns), os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            s = socket.socket(family, type_)
            s.setblocking(False)
            result.append(s)
        except BaseException as exc:  # handed back to the caller's thread
            result.append(exc)

    # The thread ends right after, so its changed namespace never runs other code.
    t = threading.Thread(target=enter, name=f"netns-{netns}")
    t.start()
    t.join()
    out = result[0]
    if isinstance(out, BaseException):
        raise out
    return out


def listener_in(netns: str | None, host: str, port: int,
                type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A bound (and, for TCP, listening) socket in ``netns``."""
    sock = socket_in(netns, socket.AF_INET, type_)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    if type_ == socket.SOCK_STREAM:
        sock.listen(128)
    return sock
