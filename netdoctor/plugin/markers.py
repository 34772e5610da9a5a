"""Markers: their registration with meaning, validation of ``signal(name)`` and
``measures(*names)`` at collection, and what the selected checks read (:func:`run_measures`,
:func:`run_scope`).

A ``signal`` marker naming an unknown signal turns the collection of its file into an error
that lists the valid names, so a typo can never make a check silently stop counting; an
unknown measurement name does the same, so that a typo can never leave a check without the
measurement it reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from netdoctor.plugin.scoring import SignalDefinition
from netdoctor.probes.network import PairId, Scope
from netdoctor.probes.validate import MEASUREMENTS

MARKERS: tuple[tuple[str, str], ...] = (
    ("diagnose", "read-only symptom check: observes the cluster, changes nothing"),
    ("validate", "end-to-end scenario: creates workloads and checks the network end to end"),
    ("coredns", "component: CoreDNS"),
    ("kube_proxy", "component: kube-proxy and the Service rules it programs"),
    ("flannel", "component: Flannel (DaemonSet, subnet lease, VXLAN)"),
    ("dns", "component: name resolution from pods"),
    ("connectivity", "component: pod-to-pod and pod-to-external reachability"),
    ("services", "component: Services, endpoints and their rules"),
    ("node", "component: node-level facts (CNI config, sysctls, iptables backends)"),
    ("signal(name)", "failure-pattern signal the check raises when it fails; one of the known "
     "signals (netdoctor.plugin.scoring.Signal, or added by the pytest_netdoctor_signals hook); "
     "stackable"),
    ("measures(*names)",
     "what a check reads from the validate pass's measurements, so that a run measures only "
     "what its selected checks read: pod-paths, service-paths, nodeport, dns, egress, mtu "
     "(netdoctor.probes.validate.MEASUREMENTS); none for a check that reads only node facts, "
     "pods and Services, which are always read. A check that uses the validation fixture "
     "without this marker gets every measurement"),
    ("requires(*components, cni=None, nodes=0, node_probes=False)",
     "what the check needs from the cluster, judged once against the cluster profile at setup "
     "(the check is skipped with the reason when unmet): components among kube-proxy, "
     "kube-proxy-pods, cni, cni-agent, dns, flannel-data-plane; cni: a CNI family or a tuple "
     "of them (flannel, canal, calico, cilium, kindnet, aws-vpc-cni, ...); nodes: at least "
     "this many Ready nodes; node_probes: node facts read by node probes"),
)
CHECK_MARKERS = ("diagnose", "validate", "signal")
"""A test carrying one of these is a netdoctor check; without one collected the plugin is inert."""


def register(config: pytest.Config) -> None:
    """Register every marker with its meaning (listed by ``pytest --markers``)."""
    for signature, meaning in MARKERS:
        config.addinivalue_line("markers", f"{signature}: {meaning}")


def is_check(node: pytest.Item | pytest.Function) -> bool:
    """Whether ``node`` (a test, or the definition of one being parametrized) is a check."""
    return any(node.get_closest_marker(name) is not None for name in CHECK_MARKERS)


def item_signals(item: pytest.Item) -> tuple[str, ...]:
    """Signal names an item declares, nearest marker first, without duplicates."""
    names: list[str] = []
    for mark in item.iter_markers("signal"):
        for arg in mark.args:
            if arg not in names:
                names.append(arg)
    return tuple(names)


def signal_marker_problems(
    item: pytest.Item, valid: Sequence[SignalDefinition]
) -> Iterator[str]:
    """Describe every malformed or unknown ``signal`` marker on ``item``."""
    known = [d.name for d in valid]
    for mark in item.iter_markers("signal"):
        if len(mark.args) != 1 or mark.kwargs or not isinstance(mark.args[0], str):
            yield f"{item.nodeid}: signal marker takes exactly one signal name, got {mark}"
        elif mark.args[0] not in known:
            yield (f"{item.nodeid}: unknown signal {mark.args[0]!r}; "
                   f"valid signals: {', '.join(known)}")


def item_measures(item: pytest.Item) -> frozenset[str]:
    """The validate measurements ``item`` reads: what its ``measures`` markers name, all of
    them for an item without one (a check written before the marker, or by a plugin, is never
    starved of a measurement)."""
    marks = list(item.iter_markers("measures"))
    if not marks:
        return frozenset(MEASUREMENTS)
    return frozenset(str(name) for mark in marks for name in mark.args)


def measures_marker_problems(item: pytest.Item) -> Iterator[str]:
    """Describe every ``measures`` marker on ``item`` naming an unknown measurement."""
    for mark in item.iter_markers("measures"):
        unknown = [a for a in mark.args if a not in MEASUREMENTS]
        if mark.kwargs or unknown:
            yield (f"{item.nodeid}: measures marker takes measurement names, got {mark}; "
                   f"valid names: {', '.join(MEASUREMENTS)}")


def run_measures(items: Sequence[pytest.Item]) -> frozenset[str]:
    """The measurements the selected ``items`` that use the ``validation`` fixture read
    (their union)."""
    return frozenset().union(*(item_measures(i) for i in items
                               if "validation" in getattr(i, "fixturenames", ())))


PAIR_PARAMS = ("node_path", "node_pair")
"""Parameters that name the node pair a check reads."""


def run_scope(items: Sequence[pytest.Item], fixture: str = "validation") -> Scope | None:
    """The nodes and pairs the selected ``items`` that use ``fixture`` (the validate or the
    diagnose pass) are parametrized by; ``None`` when one of them names neither (it may read
    any node's measurements). A skipped parameter (``None``) adds nothing."""
    nodes: set[str] = set()
    pairs: set[PairId] = set()
    for item in items:
        if fixture not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        named = [k for k in ("node", *PAIR_PARAMS) if k in params]
        if not named:
            return None
        for key in named:
            value = params[key]
            if isinstance(value, PairId):
                pairs.add(value)
            elif isinstance(value, str):
                nodes.add(value)
    return Scope(frozenset(nodes), frozenset(pairs))
