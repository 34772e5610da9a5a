"""Size the host's neighbour (ARP) table for the labs running on it.

The kernel keeps one IPv4 neighbour table for every network namespace of the host, bounded by
``net.ipv4.neigh.default.gc_thresh1/2/3`` (defaults 128/512/1024), which exist only in the
host's own namespace. A lab node resolves every other node's underlay address (the VXLAN
destination) and every local pod, so a lab of n nodes needs about n*(n-1) entries: 50 nodes
already exceed the default hard limit of 1024, the kernel logs ``neighbor table overflow`` and
drops packets between nodes while each pair answers when tried alone.

``reserve`` records what one lab needs in a host-wide registry and raises the thresholds to the
sum of every registered lab's needs (never below the values found before the first lab raised
them); ``release`` removes the record and restores the original values when no lab needs more.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REGISTRY = Path("/run/netdoctor-lab/neigh")
KEYS = ("net.ipv4.neigh.default.gc_thresh1", "net.ipv4.neigh.default.gc_thresh2",
        "net.ipv4.neigh.default.gc_thresh3")
# Neighbour entries per pod: the node's entry for the pod and the pod's entry for its gateway.
ENTRIES_PER_POD = 2
# Pods a node may hold during a run (system pods, probes, test workloads), generously.
PODS_PER_NODE = 8
SLACK = 256  # the host's own entries


@dataclass(frozen=True)
class Thresholds:
    """The three garbage-collection thresholds of the host's IPv4 neighbour table."""

    gc1: int
    gc2: int
    gc3: int

    def text(self) -> str:
        """``128/512/1024``."""
        return f"{self.gc1}/{self.gc2}/{self.gc3}"


@dataclass(frozen=True)
class Change:
    """What ``reserve`` or ``release`` did: ``before`` and ``after`` differ when it changed them,
    ``error`` says why it could not."""

    before: Thresholds
    after: Thresholds
    needed: int
    error: str = ""

    @property
    def changed(self) -> bool:
        """Whether the host's values were written."""
        return self.before != self.after and not self.error

    def message(self, nodes: int) -> str:
        """One line for ``lab up`` / ``lab down`` output; empty when nothing happened."""
        names = "net.ipv4.neigh.default.gc_thresh1/2/3"
        if self.error and target(self.needed, self.before) != self.before:
            return (f"the host's neighbour table ({names} {self.before.text()}) is too small for "
                    f"{nodes} nodes (needs about {self.needed} entries) and could not be raised: "
                    f"{self.error}; pings between nodes will be lost")
        if not self.changed:
            return ""  # already large enough, or could not write but did not need to
        return f"host neighbour table {names}: {self.before.text()} -> {self.after.text()}"


def needed_entries(nodes: int) -> int:
    """Neighbour entries a lab of ``nodes`` nodes can hold at once (underlay peers and pods)."""
    return nodes * (nodes - 1) + nodes * PODS_PER_NODE * ENTRIES_PER_POD + SLACK


def target(needed: int, floor: Thresholds) -> Thresholds:
    """Thresholds that hold ``needed`` entries without forced collection, never below ``floor``.

    gc_thresh2 (kept for 5 s at most before a forced collection) covers the need; gc_thresh3
    (the hard limit) doubles it for bursts; gc_thresh1 (below it nothing is collected) is a quarter.
    """
    return Thresholds(max(floor.gc1, needed // 4), max(floor.gc2, needed),
                      max(floor.gc3, 2 * needed))


def _path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read() -> Thresholds:
    """The host's current thresholds."""
    gc1, gc2, gc3 = (int(_path(k).read_text().split()[0]) for k in KEYS)
    return Thresholds(gc1, gc2, gc3)


def _write(values: Thresholds) -> None:
    # Raise the hard limit first and lower it last so the three never cross on the way.
    pairs = list(zip(KEYS, (values.gc1, values.gc2, values.gc3), strict=True))
    order = reversed(pairs) if values.gc3 >= read().gc3 else iter(pairs)
    for key, value in order:
        _path(key).write_text(f"{value}\n")


@contextlib.contextmanager
def _locked(registry: Path) -> Iterator[None]:
    registry.mkdir(parents=True, exist_ok=True)
    with (registry / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _live_needs(registry: Path) -> int:
    """Sum of the needs of registered labs whose state directory still exists."""
    total = 0
    for entry in registry.glob("*.json"):
        if entry.name == "original.json":
            continue
        try:
            data = json.loads(entry.read_text())
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        if not Path(str(data.get("state_dir", ""))).exists():
            entry.unlink(missing_ok=True)  # a lab removed without 'lab down'
            continue
        total += int(data.get("needed", 0))
    return total


def _original(registry: Path) -> Thresholds | None:
    path = registry / "original.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Thresholds(int(data["gc1"]), int(data["gc2"]), int(data["gc3"]))


def _apply(registry: Path) -> Change:
    """Set the thresholds for every registered lab; forget the original once none needs more."""
    before = read()
    original = _original(registry) or before
    needed = _live_needs(registry)
    after = target(needed, original)
    if after == original:
        (registry / "original.json").unlink(missing_ok=True)
    elif _original(registry) is None:
        (registry / "original.json").write_text(json.dumps(original.__dict__))
    if after == before:
        return Change(before, after, needed)
    try:
        _write(after)
    except OSError as exc:
        (registry / "original.json").unlink(missing_ok=True)
        return Change(before, before, needed, error=f"{exc.strerror or exc}")
    return Change(before, after, needed)


def reserve(name: str, state_dir: Path, nodes: int, registry: Path = REGISTRY) -> Change:
    """Record that the lab ``name`` (in ``state_dir``) has ``nodes`` nodes and size the table."""
    try:
        with _locked(registry):
            (registry / f"{name}.json").write_text(json.dumps(
                {"state_dir": str(state_dir), "nodes": nodes, "needed": needed_entries(nodes)}))
            return _apply(registry)
    except OSError as exc:  # no writable /run (e.g. rootless): say what is needed
        now = read()
        return Change(now, now, needed_entries(nodes), error=f"{exc.strerror or exc}")


def release(name: str, registry: Path = REGISTRY) -> Change | None:
    """Forget the lab ``name``; restore the original thresholds when no other lab needs more.

    Returns ``None`` when the lab had no record.
    """
    entry = registry / f"{name}.json"
    if not entry.exists():
        return None
    try:
        with _locked(registry):
            entry.unlink(missing_ok=True)
            return _apply(registry)
    except OSError as exc:
        now = read()
        return Change(now, now, 0, error=f"{exc.strerror or exc}")
