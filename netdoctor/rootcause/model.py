"""Inputs and outputs of root-cause ranking, as small frozen dataclasses.

The ranking reads what the diagnose run measured (signals, failing tests, pod
placement, component logs) and what node probes saw (:class:`NodeFacts`); it never
reads log text of the run itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from netdoctor.rootcause.facts import NodeFacts
from netdoctor.rootcause.playbook import commands


@dataclass(frozen=True)
class NodeView:
    """A node as the API describes it."""

    name: str
    internal_ip: str
    pod_cidr: str | None


@dataclass(frozen=True)
class PodView:
    """A pod's placement and health, and which cluster component it belongs to."""

    namespace: str
    name: str
    node: str | None
    ip: str | None
    host_network: bool = False
    component: str | None = None  # "coredns", "kube-proxy", "flannel" or None
    crashlooping: bool = False
    ready: bool = True


@dataclass(frozen=True)
class Observations:
    """Everything the ranking may use."""

    nodes: tuple[NodeView, ...]
    pods: tuple[PodView, ...] = ()
    facts: Mapping[str, NodeFacts] = field(default_factory=dict)
    signals: frozenset[str] = frozenset()
    failed_tests: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # signal -> ids
    broken_pairs: tuple[tuple[str, str], ...] = ()  # (from node, to node) that failed
    coredns_logs: str = ""
    kube_proxy_logs: Mapping[str, str] = field(default_factory=dict)  # node -> log tail
    flannel_daemonset: bool = True
    flannel_expected: bool = False
    services_without_endpoints: tuple[str, ...] = ()  # "ns/name"
    unmatched_selectors: tuple[str, ...] = ()  # "ns/name" whose selector matches no pod
    cni: str = "flannel"
    cni_agent: bool = True
    """The CNI's agent DaemonSet exists."""
    cni_embedded: bool = False
    """The CNI runs inside the node agent (no agent pod is expected)."""
    ipam_from_podcidr: bool = True
    """The CNI hands out pod addresses from node podCIDRs (else a pod outside says nothing)."""
    dns_service: str = "kube-system/kube-dns"
    """``namespace/name`` of the cluster DNS Service."""
    dns_workload: str = ""
    """``namespace/kind/name`` of the workload serving cluster DNS (``""``: none found)."""

    def node(self, name: str) -> NodeView | None:
        """The node called ``name``."""
        return next((n for n in self.nodes if n.name == name), None)

    def component_nodes(self, component: str) -> set[str]:
        """Nodes running pods of ``component``."""
        return {p.node for p in self.pods if p.component == component and p.node}


@dataclass(frozen=True)
class RootCause:
    """A cause, where it is, why we think so, and what it explains."""

    id: str
    node: str | None
    summary: str
    evidence: tuple[str, ...]
    explains: tuple[str, ...]  # signal names, then test ids
    layer: int  # 0 kernel, 1 CNI, 2 overlay, 3 kube-proxy, 4 DNS, 5 services
    subject: str = ""  # the object it is about (a CNI config file, a Service ns/name)

    def to_json(self) -> dict[str, object]:
        """The ``root_causes[]`` entry of summary.json, with the commands to confirm and fix."""
        book = commands(self.id, self.node, self.subject)
        return {"id": self.id, "node": self.node, "summary": self.summary,
                "evidence": list(self.evidence), "explains": list(self.explains),
                "confirm": list(book.confirm), "fix": list(book.fix)}
