"""What ``pytest -m validate`` should blame for each lab fault: the top root cause's id (which
names the layer) and its node. Expectations are data.

``COREDNS`` stands for the node CoreDNS runs on and ``WORKERS`` for any worker: the faults
aimed there pick their node when they strike.
"""

from __future__ import annotations

from types import MappingProxyType

COREDNS = "<coredns-node>"
WORKERS = "<any-worker>"

FAULT_CAUSES = MappingProxyType({
    "flannel-missing": ("flannel-missing", None),
    "coredns-crashloop": ("coredns-cannot-reach-api", COREDNS),
    "kube-proxy-crashloop": ("netfilter-unmanageable", WORKERS),
    "dns-upstream-timeout": ("upstream-dns-unreachable", None),
    "service-no-endpoints": ("service-selector-matches-nothing", None),
    "iptables-mixed-backend": ("iptables-mixed-backend", "worker-1"),
    "cni-bridge-conflict": ("cni-bridge-conflict", "worker-2"),
    "ip-forward-off": ("ip-forward-off", "worker-1"),
    "br-netfilter-off": ("br-netfilter-off", COREDNS),
    "cni-config-shadowed": ("cni-config-shadowed", "worker-2"),
})

# Faults whose effects outlive their clearing (back-off of crash-looping containers): each
# gets a lab of its own instead of the shared one.
OWN_LAB = frozenset({"coredns-crashloop", "kube-proxy-crashloop"})

PROBLEM_STATEMENT = ("cni-config-shadowed", "worker-2")
