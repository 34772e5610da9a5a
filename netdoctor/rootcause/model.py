"""Inputs and outputs of root-cause ranking, as small frozen dataclasses.

The ranking reads what the diagnose run measured (signals, failing tests, pod
placement, component logs) and what node probes saw (:class:`NodeFacts`); it never
reads log text of the run itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from netdoctor.model import CheckResult
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
class ReplicaProbe:
    """One replica of the cluster DNS asked directly from every node's probe."""

    namespace: str
    name: str
    node: str | None
    ip: str
    answered: frozenset[str] = frozenset()
    """Nodes whose lookups at this replica were answered."""
    silent: frozenset[str] = frozenset()
    """Nodes whose lookups at this replica failed."""

    @property
    def ref(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


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

    checks: tuple[CheckResult, ...] = ()
    """The run's failed and flaky checks (typed results, with the node or pair they name)."""
    pod_paths_ok: frozenset[tuple[str, str]] = frozenset()
    """(from node, to node) whose pod pings all passed."""
    replicas: tuple[ReplicaProbe, ...] = ()
    node_port: int = 0
    """The echo Service's nodePort (0: none measured)."""
    dns_port: int = 53
    """The port a cluster DNS replica answers on."""

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
    peer: str | None = None
    """The other node of a cause between two nodes."""
    confidence: float = 0.5
    """How sure the ranking is (0..1): a differing fact where the checks fail is near 1, a
    localised failure with no fact behind it low."""
    contrast: tuple[str, ...] = ()
    """``expected ... / observed ...`` lines that set it apart from the alternatives."""
    tests: tuple[str, ...] = ()
    """Node ids of the failed and flaky checks it explains."""

    def to_json(self) -> dict[str, object]:
        """The ``root_causes[]`` entry of summary.json, with the commands to confirm and fix."""
        book = commands(self.id, self.node, self.subject, self.peer)
        return {"id": self.id, "node": self.node, "peer": self.peer, "subject": self.subject,
                "summary": self.summary,
                "confidence": round(self.confidence, 2), "contrast": list(self.contrast),
                "evidence": list(self.evidence), "explains": list(self.explains),
                "explains_tests": list(self.tests),
                "confirm": list(book.confirm), "fix": list(book.fix)}


@dataclass(frozen=True)
class Ranking:
    """The ranked causes of a run and the failed or flaky checks none of them explains."""

    causes: tuple[RootCause, ...]
    unexplained: tuple[str, ...] = ()
