"""Remediation hooks, one short module per stage, registered by name.

A conftest or plugin adds or replaces hooks with ``pytest_netdoctor_remediation_hooks``::

    def pytest_netdoctor_remediation_hooks(config, hooks):
        hooks["kube-proxy-restart"] = MyRestart()   # replace
        hooks.pop("coredns-forward-fallback")        # or drop
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from netdoctor.repair.model import RemediationHook

from ._common import HookOptions
from .cni import BridgeAddress, FlannelDaemonSet, StrayCniConfig
from .coredns import CoreDnsForwardFallback, CoreDnsRestart
from .firewall import ApiFirewallDrop
from .kube_proxy import KubeProxyRestart
from .node_cni_state import PodsOutsidePodCidr
from .services import ServiceSelector
from .system import ForeignNftChain, KernelSysctls, StaleKubeRules

__all__ = ["DEFAULT_FLANNEL_MANIFEST", "REGISTRY", "HookOptions", "default_hooks"]

DEFAULT_FLANNEL_MANIFEST = Path(__file__).parent / "manifests" / "kube-flannel-v0.25.5.yml"

REGISTRY: dict[str, Callable[[HookOptions], RemediationHook]] = {
    "kernel-sysctls": KernelSysctls,
    "stale-kube-rules": StaleKubeRules,
    "foreign-nft-chain": ForeignNftChain,
    "api-firewall-drop": ApiFirewallDrop,
    "stray-cni-config": StrayCniConfig,
    "cni0-address": BridgeAddress,
    "flannel-daemonset": FlannelDaemonSet,
    "kube-proxy-restart": KubeProxyRestart,
    "coredns-forward-fallback": CoreDnsForwardFallback,
    "coredns-restart": CoreDnsRestart,
    "pods-outside-podcidr": PodsOutsidePodCidr,
    "service-selector": ServiceSelector,
}


def default_hooks(opts: HookOptions) -> dict[str, RemediationHook]:
    """Every registered hook, by name."""
    return {name: make(opts) for name, make in REGISTRY.items()}
