"""The container runtime's CNI step, as containerd performs it on a node.

The lexically first config in the node's CNI directory (``etc/cni/net.d``, or
where the distribution keeps it) wins, so a stray file really changes pod
addressing; the plugin binaries must exist in the CNI bin directory. Plugins:
``flannel`` (reads ``run/flannel/subnet.env``, delegates to a bridge), ``bridge``,
``multus`` (follows its first delegate, as the thin plugin does for the cluster
network), ``calico`` (routed veths with the 169.254.1.1 gateway; host-local IPAM
on the node's podCIDR as Canal configures it, or calico-ipam's block) and
``cilium-cni`` (routed veths behind ``cilium_host``, from the agent's pool).
Addresses are reserved like host-local IPAM, in files under ``var/lib/cni/networks``.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
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
    bridge: str  # the bridge pods are attached to; "" for routed veths
    mtu: int
    host_prefix: str = "veth"  # name stem of the host end of a routed pod's veth
    reserved: tuple[ipaddress.IPv4Address, ...] = ()  # never handed to pods

    @property
    def routed(self) -> bool:
        """Pods get a /32 and a host route per pod instead of a bridge port."""
        return not self.bridge


@dataclass(frozen=True)
class NodeCni:
    """Where one node keeps its CNI files, and the ranges its IPAM may read."""

    root: Path
    conf_dir: str = "etc/cni/net.d"
    bin_dir: str = "opt/cni/bin"
    pod_cidr: str = ""  # the Node's spec.podCIDR ("usePodCidr")
    ipam_range: str = ""  # the agent's own allocation (Calico block, Cilium pool)
    extra: dict[str, str] = field(default_factory=dict)


# Addresses the agents take from their node's range and publish on the Node.
CALICO_TUNNEL_ANNOTATION = "projectcalico.org/IPv4VXLANTunnelAddr"
CILIUM_HOST_ANNOTATION = "network.cilium.io/ipv4-cilium-host"


def node_cni(root: Path, conf_dir: str, bin_dir: str, node: dict[str, Any] | None,
             ipam_range: str = "") -> NodeCni:
    """What the CNI plugins of a node can see: its files, its Node object's ranges."""
    meta = (node or {}).get("metadata") or {}
    ann = meta.get("annotations") or {}
    extra = {"reserved": " ".join(a.split("/")[0] for a in (
        ann.get(CALICO_TUNNEL_ANNOTATION), ann.get(CILIUM_HOST_ANNOTATION)) if a)}
    if ann.get(CILIUM_HOST_ANNOTATION):
        extra["router"] = ann[CILIUM_HOST_ANNOTATION]
    return NodeCni(root, conf_dir, bin_dir, ((node or {}).get("spec") or {}).get("podCIDR", ""),
                   ipam_range, extra)


def config_files(root: Path, conf_dir: str = "etc/cni/net.d") -> list[Path]:
    """CNI config files in the node's CNI directory, in the order the runtime sees them."""
    d = root / conf_dir
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix in CONF_SUFFIXES and p.is_file())


def network_ready(root: Path, conf_dir: str = "etc/cni/net.d") -> str | None:
    """``None`` when a usable config exists, else the runtime's NetworkReady message."""
    return None if config_files(root, conf_dir) else "cni plugin not initialized"


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


CALICO_GATEWAY = ipaddress.IPv4Address("169.254.1.1")


def _calico(node: NodeCni, conf_file: str, name: str, plugin: dict[str, Any]) -> Network:
    if not (node.root / "var/lib/calico/nodename").exists():
        raise CniError('plugin type="calico" failed (add): stat /var/lib/calico/nodename: no '
                       "such file or directory: check that the calico/node container is "
                       "running and has mounted /var/lib/calico/")
    ipam = plugin.get("ipam") or {}
    host_local = ipam.get("type") == "host-local"
    if host_local:
        ranges = ipam.get("ranges") or [[{}]]
        text = ranges[0][0].get("subnet", "")
        text = node.pod_cidr if text == "usePodCidr" else text
    else:  # calico-ipam: the block calico-node holds an affinity for
        text = node.ipam_range
    if not text:
        raise CniError(f'plugin type="calico" failed (add): no IP range for {conf_file}')
    subnet = ipaddress.IPv4Network(text, strict=False)
    reserved = tuple(ipaddress.IPv4Address(a) for a in node.extra.get("reserved", "").split()
                     if a)
    if host_local:  # host-local keeps the range's default gateway (.1) out of its pool
        reserved += (subnet.network_address + 1,)
    mtu = int(plugin.get("mtu") or 0)
    if not mtu:  # 0: the MTU calico-node detected and wrote for the plugin
        mtu_file = node.root / "var/lib/calico/mtu"
        mtu = int(mtu_file.read_text().strip()) if mtu_file.exists() else 1450
    return Network(conf_file, name, "calico", subnet, CALICO_GATEWAY, "", mtu, "cali", reserved)


def _cilium(node: NodeCni, conf_file: str, name: str, plugin: dict[str, Any]) -> Network:
    if not (node.root / "var/run/cilium/cilium.sock").exists():
        raise CniError('plugin type="cilium-cni" failed (add): unable to connect to Cilium '
                       "daemon: failed to create cilium agent client after 30.000000 seconds "
                       "timeout: Get \"http:///var/run/cilium/cilium.sock/v1/config\": dial "
                       "unix /var/run/cilium/cilium.sock: connect: no such file or directory")
    subnet = ipaddress.IPv4Network(node.ipam_range)
    router = ipaddress.IPv4Address(node.extra.get("router", str(subnet.network_address + 1)))
    return Network(conf_file, name, "cilium-cni", subnet, router, "", int(plugin.get("mtu", 1450)),
                   "lxc")


def resolve(root: Path | NodeCni) -> Network:
    """The network a new pod on this node is wired into.

    Raises:
        CniError: no config, a missing plugin binary, or a plugin that cannot run.
    """
    node = root if isinstance(root, NodeCni) else NodeCni(root)
    files = config_files(node.root, node.conf_dir)
    if not files:
        raise CniError("network plugin is not ready: cni plugin not initialized")
    path = files[0]
    try:
        conf = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CniError(f"error parsing configuration list: {path.name}: {exc}") from exc
    return _resolve_conf(node, path.name, conf)


def _resolve_conf(node: NodeCni, conf_file: str, conf: dict[str, Any],
                  depth: int = 0) -> Network:
    plugins = _plugins(conf)
    for p in plugins:
        kind = str(p.get("type", ""))
        if not (node.root / node.bin_dir / kind).exists():
            raise CniError(f'failed to find plugin "{kind}" in path [/{node.bin_dir}]')
    name, first = str(conf.get("name", conf_file)), plugins[0]
    kind = str(first.get("type", ""))
    if kind == "multus" and depth == 0:
        # The thin plugin's cluster network is its first delegate (a whole conflist).
        delegates = first.get("delegates") or []
        if not delegates or not isinstance(delegates[0], dict):
            raise CniError('plugin type="multus" failed (add): no delegates in '
                           f"{conf_file}")
        return _resolve_conf(node, conf_file, delegates[0], depth + 1)
    if kind == "flannel":
        return _flannel(node.root, conf_file, name, first)
    if kind == "bridge":
        return _bridge(conf_file, name, first)
    if kind == "calico":
        return _calico(node, conf_file, name, first)
    if kind == "cilium-cni":
        return _cilium(node, conf_file, name, first)
    raise CniError(f'plugin type="{kind}" is not supported on this node')


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
    hosts = [h for h in net.subnet.hosts() if h != net.gateway and h not in net.reserved]
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
