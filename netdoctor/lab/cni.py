"""The container runtime's CNI step, as containerd performs it on a node.

The lexically first config in ``etc/cni/net.d`` wins (so a stray file really
changes pod addressing); the plugin binaries must exist in ``opt/cni/bin``; the
flannel plugin reads ``run/flannel/subnet.env``; addresses come from host-local
IPAM files under ``var/lib/cni/networks``.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONF_SUFFIXES = (".conf", ".conflist", ".json")


class CniError(RuntimeError):
    """A CNI failure, worded as the runtime reports it in pod events."""


@dataclass(frozen=True)
class Network:
    """What a pod on this node gets: its subnet, gateway, bridge and MTU."""

    config_file: str
    name: str
    plugin: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    bridge: str
    mtu: int


def config_files(root: Path) -> list[Path]:
    """CNI config files in the node's ``etc/cni/net.d``, in the order the runtime sees them."""
    d = root / "etc/cni/net.d"
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix in CONF_SUFFIXES and p.is_file())


def network_ready(root: Path) -> str | None:
    """``None`` when a usable config exists, else the runtime's NetworkReady message."""
    return None if config_files(root) else "cni plugin not initialized"


def _plugins(conf: dict[str, Any]) -> list[dict[str, Any]]:
    return list(conf.get("plugins") or [conf])


def _env(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _flannel(root: Path, conf_file: str, name: str, plugin: dict[str, Any]) -> Network:
    env_file = root / "run/flannel/subnet.env"
    if not env_file.exists():
        raise CniError(
            'plugin type="flannel" failed (add): loadFlannelSubnetEnv failed: '
            "open /run/flannel/subnet.env: no such file or directory"
        )
    env = _env(env_file)
    iface = ipaddress.IPv4Interface(env["FLANNEL_SUBNET"])
    return Network(
        conf_file,
        name,
        "flannel",
        iface.network,
        iface.ip,
        "cni0",
        int(env.get("FLANNEL_MTU", "1450")),
    )


def _bridge(conf_file: str, name: str, plugin: dict[str, Any]) -> Network:
    ipam = plugin.get("ipam") or {}
    subnet_text = ipam.get("subnet") or (ipam.get("ranges") or [[{}]])[0][0].get("subnet")
    if not subnet_text:
        raise CniError(f'plugin type="bridge" failed (add): no IP ranges specified in {conf_file}')
    try:
        subnet = ipaddress.IPv4Network(subnet_text, strict=False)
        gateway = ipaddress.IPv4Address(ipam.get("gateway") or next(subnet.hosts()))
    except ValueError as exc:
        raise CniError(f'plugin type="bridge" failed (add): {conf_file}: {exc}') from exc
    return Network(
        conf_file,
        name,
        "bridge",
        subnet,
        gateway,
        plugin.get("bridge", "cni0"),
        int(plugin.get("mtu", 1500)),
    )


def resolve(root: Path) -> Network:
    """The network a new pod on this node is wired into.

    Raises:
        CniError: no config, a missing plugin binary, or a plugin that cannot run.
    """
    files = config_files(root)
    if not files:
        raise CniError("network plugin is not ready: cni plugin not initialized")
    path = files[0]
    try:
        conf = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CniError(f"error parsing configuration list: {path.name}: {exc}") from exc
    plugins = _plugins(conf)
    for p in plugins:
        kind = str(p.get("type", ""))
        if not (root / "opt/cni/bin" / kind).exists():
            raise CniError(f'failed to find plugin "{kind}" in path [/opt/cni/bin]')
    name, first = str(conf.get("name", path.stem)), plugins[0]
    if first.get("type") == "flannel":
        return _flannel(root, path.name, name, first)
    if first.get("type") == "bridge":
        return _bridge(path.name, name, first)
    raise CniError(f'plugin type="{first.get("type")}" is not supported on this node')


def allocate(root: Path, net: Network, container_id: str) -> ipaddress.IPv4Address:
    """Reserve the next free address like host-local IPAM (files named by IP).

    Raises:
        CniError: the range is exhausted.
    """
    d = root / "var/lib/cni/networks" / net.name
    d.mkdir(parents=True, exist_ok=True)
    for entry in d.iterdir():
        if entry.name != "last_reserved_ip.0" and entry.read_text().strip() == container_id:
            return ipaddress.IPv4Address(entry.name)
    last_file = d / "last_reserved_ip.0"
    hosts = [h for h in net.subnet.hosts() if h != net.gateway]
    start = 0
    if last_file.exists():
        last = ipaddress.IPv4Address(last_file.read_text().strip())
        start = hosts.index(last) + 1 if last in hosts else 0
    for i in range(len(hosts)):
        ip = hosts[(start + i) % len(hosts)]
        f = d / str(ip)
        if not f.exists():
            f.write_text(container_id)
            last_file.write_text(str(ip))
            return ip
    raise CniError(
        f"failed to allocate for range 0: no IP addresses available in range set: {net.subnet}"
    )


def release(root: Path, container_id: str) -> None:
    """Free every address held by ``container_id`` on this node."""
    base = root / "var/lib/cni/networks"
    if not base.is_dir():
        return
    for f in base.glob("*/*"):
        if f.name != "last_reserved_ip.0" and f.read_text().strip() == container_id:
            f.unlink(missing_ok=True)
