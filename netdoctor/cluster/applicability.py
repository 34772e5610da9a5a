"""What can apply to this cluster: the profile completed by node facts, the signals that
cannot occur on it, and the checks' declared requirements.

Decided once per session from the :class:`ClusterProfile`, never from a check's skip text.

Example:
    >>> req = Requirement.from_marker((), {"nodes": 2})
    >>> req.nodes, req.components
    (2, ())
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netdoctor.cluster.profile import ClusterProfile
from netdoctor.cluster.roles import family_of_types
from netdoctor.rootcause.facts import VXLAN_DEVICE, NodeFacts

COMPONENTS = ("kube-proxy", "kube-proxy-pods", "cni", "cni-agent", "dns", "flannel-data-plane")
"""Names ``@pytest.mark.requires`` accepts as components."""


def _has_kube_rules(f: NodeFacts) -> bool:
    return any(r.startswith("-A KUBE-SERVICES") for r in f.nft_rules + f.legacy_rules)


def _cni_from_facts(facts: Sequence[NodeFacts]) -> str:
    for f in facts:
        family = family_of_types(f.effective_types())
        if family:
            return family
        # The agents' own devices: cilium_host/cilium_vxlan, Calico's cali* veth routes,
        # Flannel's flannel.1.
        if {"cilium_host", "cilium_vxlan"} & set(f.addresses):
            return "cilium"
        if any(r.dev.startswith("cali") for r in f.routes):
            return "calico"
        if VXLAN_DEVICE in f.addresses:
            return "flannel"
    return ""


def refine(profile: ClusterProfile, facts: Mapping[str, NodeFacts], error: str = ""
           ) -> ClusterProfile:
    """The profile completed by what node probes saw: kube-proxy embedded (its rules on the
    nodes, no pod) or missing, Flannel embedded (flannel.1 on every node, no pod), and the CNI
    from the nodes' config when no agent named it."""
    complete = [f for f in facts.values() if f.complete]
    if not complete:
        return dataclasses.replace(profile, node_facts=error or "no node facts")
    changes: dict[str, Any] = {"node_facts": "read"}
    if profile.kube_proxy_runs == "undecided":
        ruled = sorted(f.node for f in complete if _has_kube_rules(f))
        if ruled:
            changes["kube_proxy_runs"] = "embedded"
            changes["kube_proxy_nodes"] = tuple(ruled)
            changes["kube_proxy_blocked"] = tuple(sorted(f.node for f in complete
                                                         if f.nft_incompatible))
            changes["kube_proxy_reason"] = ("kube-proxy runs inside the node agent: no "
                                            f"kube-proxy pod, KUBE-SERVICES rules on "
                                            f"{', '.join(ruled)}")
        else:
            changes["kube_proxy_runs"] = "missing"
            changes["kube_proxy_reason"] = ("no kube-proxy pod, no KUBE-SERVICES rule on any "
                                            "node and no replacement (Cilium kube-proxy "
                                            "replacement, Calico eBPF) found")
    cni = profile.cni
    if cni == "unknown":
        cni = _cni_from_facts(complete) or "unknown"
        if cni != "unknown":
            changes.update(cni=cni, cni_reason=f"the nodes' CNI config and interfaces say {cni}")
        if cni not in ("unknown", "flannel"):
            changes["cni_embedded"] = False  # only Flannel is known to run inside a node agent
    if cni == "flannel" and profile.cni_agent is None and profile.cni_embedded is None:
        without = sorted(f.node for f in complete if VXLAN_DEVICE not in f.addresses)
        running = sorted(f.node for f in complete if VXLAN_DEVICE in f.addresses)
        changes["cni_embedded"] = not without
        if not without:
            changes["cni_reason"] = ("Flannel runs inside the node agent: no Flannel pod, "
                                     f"{VXLAN_DEVICE} on every node")
        elif running:
            changes["cni_reason"] = (f"Flannel runs inside the node agent on "
                                     f"{', '.join(running)} but not on {', '.join(without)} "
                                     f"(no {VXLAN_DEVICE} there)")
        else:
            changes["cni_reason"] = (f"no Flannel agent runs: no Flannel pod, no {VXLAN_DEVICE} "
                                     f"on {', '.join(without)}")
    return dataclasses.replace(profile, **changes)


def not_applicable(profile: ClusterProfile) -> dict[str, str]:
    """Signals that cannot occur on this cluster, with the reason."""
    found: dict[str, str] = {}
    if profile.kube_proxy_runs == "replaced":
        found["kube_proxy_restarts"] = ("kube-proxy is absent by design: "
                                        f"{profile.kube_proxy_reason}")
    if profile.cni == "unknown":
        found["flannel_missing"] = ("the CNI is not identified (no known agent, no known CNI "
                                    "config on the nodes): its agent cannot be checked")
    if len(profile.ready_nodes) < 2:
        found["pod_connectivity_failed"] = (f"pod-to-pod paths between nodes need at least 2 "
                                            f"Ready nodes, found {len(profile.ready_nodes)}")
    return found


@dataclass(frozen=True)
class Requirement:
    """What a check needs from the cluster (``@pytest.mark.requires``)."""

    components: tuple[str, ...] = ()
    cni: tuple[str, ...] = ()
    nodes: int = 0
    node_probes: bool = False

    @classmethod
    def from_marker(cls, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Requirement:
        """Parse ``requires(*components, cni=..., nodes=N, node_probes=True)``.

        Raises:
            ValueError: an unknown component or keyword, or a bad value.
        """
        unknown = set(kwargs) - {"cni", "nodes", "node_probes"}
        if unknown:
            raise ValueError(f"requires() got unknown keyword(s) {', '.join(sorted(unknown))}")
        bad = [a for a in args if a not in COMPONENTS]
        if bad:
            raise ValueError(f"requires() got unknown component(s) {', '.join(map(str, bad))}; "
                             f"known: {', '.join(COMPONENTS)}")
        cni = kwargs.get("cni", ())
        cni = (cni,) if isinstance(cni, str) else tuple(cni)
        nodes = kwargs.get("nodes", 0)
        if not isinstance(nodes, int) or nodes < 0:
            raise ValueError(f"requires(nodes=...) takes a count, got {nodes!r}")
        return cls(tuple(args), cni, nodes, bool(kwargs.get("node_probes", False)))


def _component_missing(profile: ClusterProfile, name: str) -> str:
    if name == "kube-proxy" and profile.kube_proxy_runs == "replaced":
        return f"kube-proxy is absent by design ({profile.kube_proxy_reason})"
    if name == "kube-proxy-pods" and profile.kube_proxy_runs not in ("daemonset", "static"):
        return f"kube-proxy runs without pods here ({profile.kube_proxy_runs}: " \
               f"{profile.kube_proxy_reason})"
    if name in ("cni", "cni-agent") and profile.cni == "unknown":
        return "the CNI is not identified (no known agent, no known CNI config on the nodes)"
    if name == "cni-agent" and profile.cni_embedded:
        return f"the CNI has no agent pods ({profile.cni_reason})"
    if name == "flannel-data-plane" and profile.cni not in ("flannel", "canal"):
        return f"the cluster's CNI is {profile.cni}, which has no Flannel data plane"
    if name == "dns" and profile.coredns is None and not profile.dns_service_ip:
        return "no cluster DNS Service or workload was found"
    return ""


def unmet(req: Requirement, profile: ClusterProfile) -> str:
    """Why ``profile`` does not meet ``req`` (``""`` when it does)."""
    for name in req.components:
        why = _component_missing(profile, name)
        if why:
            return f"needs {name}: {why}"
    if req.cni and profile.cni not in req.cni:
        return f"needs CNI {' or '.join(req.cni)}; the cluster's CNI is {profile.cni}"
    ready = len(profile.ready_nodes)
    if ready < req.nodes:
        return f"needs at least {req.nodes} Ready nodes, found {ready}"
    if req.node_probes and profile.node_facts != "read":
        return f"needs node probes: {profile.node_facts or 'no node probe ran'}"
    return ""
