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
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def netns_path(name: str) -> Path:
    """Where ``ip netns add NAME`` pins a namespace."""
    return NETNS_DIR / name


def call_in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a short-lived thread that has joined namespace ``netns``.

    A fresh thread is used (never a pool thread), so no other code ever runs in the
    changed namespace; sockets ``fn`` creates keep that namespace.

    Raises:
        OSError: the namespace does not exist or cannot be entered.
    """
    out: list[T] = []
    err: list[BaseException] = []

    def enter() -> None:
        try:
            fd = os.open(netns_path(netns), os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns({netns}): {os.strerror(code)}")
            finally:
                os.close(fd)
            out.append(fn())
        except BaseException as exc:  # handed back to the caller's thread
            err.append(exc)

    t = threading.Thread(target=enter, name=f"netns-{netns}")
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def socket_in(netns: str | None, family: int = socket.AF_INET,
              type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A new non-blocking socket in namespace ``netns`` (``None``: the lab's own).

    Raises:
        OSError: the namespace does not exist or cannot be entered.
    """
    def make() -> socket.socket:
        sock = socket.socket(family, type_)
        sock.setblocking(False)
        return sock

    return make() if netns is None else call_in_netns(netns, make)


def listener_in(netns: str | None, host: str, port: int,
                type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A bound (and, for TCP, listening) socket in ``netns``."""
    sock = socket_in(netns, socket.AF_INET, type_)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    if type_ == socket.SOCK_STREAM:
        sock.listen(128)
    return sock
