"""What runs inside the lab's containers.

Most containers run their real command as a process in the pod's network
namespace. The cluster's own components (CoreDNS, the Flannel agent, kube-proxy)
run as built-in coroutines selected by image, on the lab's event loop, using
sockets in the pod's or node's namespace (see :mod:`netdoctor.lab.nsock`). Either
way the kubelet sees an exit code, a log and a restart count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from netdoctor.lab.api.store import Store

Obj = dict[str, Any]


@dataclass(frozen=True)
class NodeInfo:
    """One lab node: its namespace, addresses and filesystem root."""

    name: str
    netns: str
    internal_ip: str
    pod_cidr: str
    root: Path
    index: int
    # Where the CNI's IPAM hands out this node's pod addresses, when that is not
    # spec.podCIDR (Calico IPAM blocks, Cilium's cluster pool).
    ipam_range: str = ""

    @property
    def pod_range(self) -> str:
        """The range this node's pods really get addresses from."""
        return self.ipam_range or self.pod_cidr


@dataclass(frozen=True)
class LabInfo:
    """Cluster-wide facts the components need."""

    prefix: str
    nodes: dict[str, NodeInfo]
    router_netns: str
    underlay_bridge: str
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    api_service_ip: str = "10.96.0.1"
    dns_service_ip: str = "10.96.0.10"
    cluster_domain: str = "cluster.local"
    upstream_dns: str = "192.168.4.1"
    apiserver_ip: str = "192.168.4.10"
    apiserver_port: int = 6443
    ca_file: Path = Path()
    state_dir: Path = Path()
    profile: str = "kubeadm-flannel"
    cni_conf_dir: str = "etc/cni/net.d"  # relative to a node's root
    cni_bin_dir: str = "opt/cni/bin"


@dataclass
class ContainerContext:
    """Everything a built-in container may use while it runs."""

    pod: Obj
    container: Obj
    node: NodeInfo
    netns: str
    pod_ip: str
    store: Store
    lab: LabInfo
    log: Callable[[str], None]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def host_network(self) -> bool:
        """Whether the container shares its node's namespace."""
        return bool(self.pod.get("spec", {}).get("hostNetwork"))


class BuiltinContainer(Protocol):
    """A container image the lab implements itself."""

    async def run(self, ctx: ContainerContext) -> int:
        """Run until done; return the exit code. Cancellation means SIGTERM."""
        ...


_BUILTINS: list[tuple[re.Pattern[str], Callable[[], BuiltinContainer]]] = []


def builtin(image_pattern: str) -> Callable[[Callable[[], BuiltinContainer]],
                                            Callable[[], BuiltinContainer]]:
    """Register a built-in container for images matching ``image_pattern`` (regex search)."""
    def register(factory: Callable[[], BuiltinContainer]) -> Callable[[], BuiltinContainer]:
        _BUILTINS.append((re.compile(image_pattern), factory))
        return factory
    return register


def builtin_for(image: str) -> BuiltinContainer | None:
    """The built-in implementation of ``image``, or ``None`` for a real process."""
    for pattern, factory in _BUILTINS:
        if pattern.search(image):
            return factory()
    return None


BUSYBOX_IMAGE = re.compile(r"(^|/)busybox(:|@|$)")


def is_busybox(image: str) -> bool:
    """Busybox-style images provide busybox applets instead of iputils/bind/curl."""
    return bool(BUSYBOX_IMAGE.search(image))
