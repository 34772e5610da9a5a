"""What each lab fault should make ``pytest -m diagnose`` report: expectations as data.

A fault's signals follow from what it breaks: a fault that cuts pod traffic on one node also
makes DNS lookups from that node time out, because CoreDNS runs elsewhere.
"""

from __future__ import annotations

from types import MappingProxyType

ALL_SIGNALS = frozenset({
    "coredns_crashloop", "kube_proxy_restarts", "flannel_missing", "dns_timeouts",
    "service_endpoints_missing", "pod_connectivity_failed",
})

FAULT_SIGNALS = MappingProxyType({
    # the DaemonSet goes and with it every node's VXLAN forwarding
    "flannel-missing": frozenset({"flannel_missing", "pod_connectivity_failed", "dns_timeouts"}),
    # CoreDNS cannot reach the API: it crash-loops, kube-dns loses its endpoints, lookups fail
    "coredns-crashloop": frozenset({"coredns_crashloop", "service_endpoints_missing",
                                    "dns_timeouts"}),
    "kube-proxy-crashloop": frozenset({"kube_proxy_restarts"}),
    "dns-upstream-timeout": frozenset({"dns_timeouts"}),
    "service-no-endpoints": frozenset({"service_endpoints_missing"}),
    # stale legacy DNAT for kube-dns on one worker: lookups from that worker time out
    "iptables-mixed-backend": frozenset({"dns_timeouts"}),
    # new pods on the node cannot get a network: its probe never runs
    "cni-bridge-conflict": frozenset({"pod_connectivity_failed", "dns_timeouts"}),
    "ip-forward-off": frozenset({"pod_connectivity_failed", "dns_timeouts"}),
    # same-node Service traffic bypasses DNAT on CoreDNS's node
    "br-netfilter-off": frozenset({"dns_timeouts"}),
    "cni-config-shadowed": frozenset({"pod_connectivity_failed", "dns_timeouts"}),
})
