"""Judgments of a node's own state: kernel switches, the pod bridge and the iptables
backends, one function per fact, as :class:`~netdoctor.rootcause.pathfacts.Finding` objects.

The node checks (:mod:`netdoctor.probes.nodechecks`) turn them into evidence, the ranking
(:mod:`netdoctor.rootcause.rules`) into causes, the remediation hooks (``remediation/``)
plan from them: a threshold or rule for these facts lives here and nowhere else.

Example:
    >>> from netdoctor.rootcause.facts import NodeFacts
    >>> [f.id for f in kernel(NodeFacts("n1", sysctls={SYSCTL_IP_FORWARD: "0"}))]
    ['ip-forward-off']
"""

from __future__ import annotations

from netdoctor.rootcause.facts import (
    SYSCTL_BRIDGE_NF,
    SYSCTL_IP_FORWARD,
    SYSCTL_RP_FILTER,
    NodeFacts,
    in_cidr,
)
from netdoctor.rootcause.pathfacts import POD_KINDS, Finding

SYSCTLS = (
    # (cause id, key, value that breaks it (None: anything but ``want``), want, why)
    ("ip-forward-off", SYSCTL_IP_FORWARD, None, "1",
     "the node does not route pod traffic"),
    ("br-netfilter-off", SYSCTL_BRIDGE_NF, None, "1",
     "bridged pod traffic bypasses iptables: same-node traffic to a ClusterIP is not "
     "translated back (needs br_netfilter loaded)"),
    ("rp-filter-strict", SYSCTL_RP_FILTER, "1", "2",
     "strict reverse-path filtering drops pod traffic that returns another way"),
)
"""The kernel switches pod networking needs, as data."""
STRICT_RPF_CNIS = ("calico", "canal")
"""CNIs whose agent wants strict (or no) reverse-path filtering: Calico's Felix refuses loose
mode (``IgnoreLooseRPF``) and does its own anti-spoofing; strict is no finding there."""


def _dotted(key: str) -> str:
    return key.replace("/", ".")


def kernel(f: NodeFacts, cni: str = "") -> list[Finding]:
    """Kernel switches set against pod networking on a cluster whose CNI is ``cni`` (keys the
    probe could not read are not judged)."""
    found = []
    for cause, key, bad, want, why in SYSCTLS:
        if key == SYSCTL_RP_FILTER and cni in STRICT_RPF_CNIS:
            continue
        have = f.sysctls.get(key)
        if have is None or (have == want) or (bad is not None and have != bad):
            continue
        found.append(Finding(
            cause, f.node, None, f"{_dotted(key)} = {want}" if bad is None
            else f"{_dotted(key)} != {bad}", f"{_dotted(key)} = {have}", (why,),
            f"sysctl {_dotted(key)}", ("kernel_prerequisites", *POD_KINDS),
            setting=(key, want)))
    return found


def bridge(f: NodeFacts, pod_cidr: str | None) -> list[Finding]:
    """The pod bridge (cni0) holds the node's pod gateway (FLANNEL_SUBNET's address), and
    the bridge and the subnet lease lie in the node's podCIDR (when known)."""
    have = f.bridge_gateway("cni0")
    want = f.flannel_subnet
    lines: list[tuple[str, str]] = []
    if want and have and want not in have:
        lines.append((f"cni0 {want} (FLANNEL_SUBNET, the pod gateway)",
                      f"cni0 {', '.join(have)}"))
    if pod_cidr:
        if want and not in_cidr(want.split("/")[0], pod_cidr):
            lines.append((f"FLANNEL_SUBNET inside podCIDR {pod_cidr}",
                          f"FLANNEL_SUBNET={want}"))
        outside = [a for a in have if not in_cidr(a.split("/")[0], pod_cidr)]
        if outside:
            lines.append((f"cni0 inside podCIDR {pod_cidr}", f"cni0 {', '.join(outside)}"))
    if not lines:
        return []
    return [Finding("cni-bridge-conflict", f.node, None, lines[0][0], lines[0][1],
                    tuple(f"expected {e} / observed {o}" for e, o in lines[1:]),
                    "ip -4 addr show cni0; cat /run/flannel/subnet.env",
                    ("bridge_matches_podcidr", *POD_KINDS),
                    setting=("cni0", want or "") if want and have and want not in have
                    else None)]


def iptables(f: NodeFacts) -> list[Finding]:
    """KUBE-* rules in both iptables backends (``setting``: the backend kube-proxy does not
    use, the one with fewer rules: its iptables wrapper picks the fuller one), and tables
    iptables-nft cannot manage (another tool wrote nf_tables directly)."""
    found = []
    legacy, nft = f.kube_rules("legacy"), f.kube_rules("nft")
    if legacy and nft:
        stale = "legacy" if len(legacy) <= len(nft) else "nft"
        found.append(Finding(
            "iptables-mixed-backend", f.node, None, "KUBE-* rules in one backend",
            f"{len(nft)} in nf_tables, {len(legacy)} in legacy tables "
            f"({', '.join(f.legacy_tables)})",
            ("the legacy NAT, registered last, wins", *legacy[:5]),
            "iptables-legacy-save -t nat", ("iptables_backends",), setting=("stale", stale)))
    if f.nft_incompatible:
        found.append(Finding(
            "netfilter-unmanageable", f.node, None, "iptables manages every table",
            f.nft_warnings[0] if f.nft_warnings else "a table it cannot manage",
            tuple(f.nft_warnings[1:]), "iptables-nft-save", ("iptables_backends",)))
    return found
