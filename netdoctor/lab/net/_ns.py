"""Small helpers shared by the data plane modules: names, namespaces, ``ip`` batches."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netdoctor.lab import sh
from netdoctor.lab.nsock import NETNS_DIR, netns_path

ETC_NETNS = Path("/etc/netns")
IFNAMSIZ = 15  # usable characters in a Linux interface name


def hashed_name(stem: str, key: str) -> str:
    """A stable interface name ``<stem><hex>`` of at most 15 characters for ``key``."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return (stem + digest)[:IFNAMSIZ]


def exists(netns: str) -> bool:
    """Whether namespace ``netns`` is pinned under /run/netns."""
    return netns_path(netns).exists()


def namespaces(prefix: str) -> list[str]:
    """Pinned namespaces named ``<prefix>-*``, sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix + "-"))


def pids_in(netns: str) -> list[int]:
    """Processes whose network namespace is ``netns`` (what ``ip netns pids`` prints)."""
    try:
        st = os.stat(netns_path(netns))
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # the process ended or is not ours to inspect
            continue
        if (ns.st_dev, ns.st_ino) == (st.st_dev, st.st_ino):
            found.append(int(entry))
    return found


def kill(pids: Sequence[int]) -> None:
    """SIGKILL each pid, ignoring ones already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def ip_argv(tool: str, netns: str | None) -> list[str]:
    """``ip``/``bridge`` argv prefix, pinned to ``netns`` when given."""
    return [tool, "-n", netns] if netns else [tool]


async def ip_batch(netns: str | None, lines: Sequence[str], *, tool: str = "ip",
                   force: bool = False, timeout: float = 10.0) -> None:
    """Run ``lines`` through one ``ip -batch -`` (or ``bridge``) process.

    One process for many changes keeps a pod's wiring at a few milliseconds.
    ``force`` keeps going past failing lines (for best-effort removal).

    Raises:
        CommandError: a line failed (without ``force``).
    """
    if not lines:
        return
    argv = [*ip_argv(tool, netns), *(["-force"] if force else []), "-batch", "-"]
    await sh.arun(argv, input="\n".join(lines) + "\n", timeout=timeout, check=not force)


async def ip_json(netns: str | None, *args: str, tool: str = "ip") -> list[dict[str, Any]]:
    """Parsed ``ip -j ...`` output; an empty list when the object does not exist."""
    res = await sh.arun([*ip_argv(tool, netns), "-j", *args], check=False)
    if res.code != 0 or not res.stdout.strip():
        return []
    data: list[dict[str, Any]] = json.loads(res.stdout)
    return data


def sysctl_path(key: str) -> Path:
    """/proc/sys file of a dotted sysctl key."""
    return Path("/proc/sys") / key.replace(".", "/")
