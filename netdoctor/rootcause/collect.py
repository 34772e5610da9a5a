"""From a run's measurements and results to the :class:`Observations` the ranking reads.

Pure: takes raw API objects (pods, Services), the validate measurements and the
``summary.json`` test entries, so it is unit-testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netdoctor.cluster.profile import ClusterProfile
from netdoctor.model import CheckResult
from netdoctor.probes.components import pod_state
from netdoctor.probes.validate import Validation, coredns_ips, replica_port
from netdoctor.rootcause.localise import BAD
from netdoctor.rootcause.model import NodeView, Observations, PodView, ReplicaProbe


def component_of(pod: Mapping[str, Any], profile: ClusterProfile) -> str | None:
    """``coredns``, ``kube-proxy``, ``flannel`` or ``None``, by the workloads' selectors."""
    for name, w in (("coredns", profile.coredns), ("kube-proxy", profile.kube_proxy),
                    ("flannel", profile.flannel)):
        if w is not None and w.selects(pod):
            return name
    return None


def pod_view(pod: Mapping[str, Any], profile: ClusterProfile) -> PodView:
    """Placement and health of one pod (health as the component checks judge it)."""
    spec, status = pod.get("spec", {}), pod.get("status", {})
    state = pod_state(pod)
    return PodView(pod["metadata"].get("namespace", ""), pod["metadata"]["name"],
                   spec.get("nodeName"), status.get("podIP"),
                   host_network=bool(spec.get("hostNetwork")),
                   component=component_of(pod, profile),
                   crashlooping=state.crashlooping, ready=state.ready)


def unmatched_selectors(services: Iterable[Mapping[str, Any]],
                        pods: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Services with a selector that matches no pod in their namespace."""
    found = []
    for svc in services:
        meta, sel = svc["metadata"], (svc.get("spec") or {}).get("selector") or {}
        if not sel:
            continue
        if not any(p["metadata"].get("namespace") == meta["namespace"]
                   and sel.items() <= (p["metadata"].get("labels") or {}).items() for p in pods):
            found.append(f"{meta['namespace']}/{meta['name']}")
    return tuple(sorted(found))


def failing_by_signal(results: Iterable[CheckResult]) -> dict[str, tuple[str, ...]]:
    """Failed check ids per declared signal."""
    out: dict[str, list[str]] = {}
    for r in results:
        if r.outcome == "failed":
            for s in r.signals:
                out.setdefault(s, []).append(r.nodeid)
    return {k: tuple(v) for k, v in out.items()}


def replica_probes(v: Validation, profile: ClusterProfile) -> tuple[ReplicaProbe, ...]:
    """Each cluster DNS replica asked directly: from which nodes it answered, or not."""
    ips = coredns_ips(v, profile)
    where = {p["metadata"]["name"]: (p["metadata"].get("namespace", ""),
                                     (p.get("spec") or {}).get("nodeName"))
             for p in v.pods if p["metadata"]["name"] in ips}
    out = []
    for name, ip in sorted(ips.items()):
        cases = [(c, m) for c, m in v.dns.items() if c.kind == f"replica {name}"
                 and m.result.conclusive]
        if not cases or not ip:
            continue
        ns, node = where.get(name, ("", None))
        out.append(ReplicaProbe(ns, name, node, ip,
                                frozenset(c.node for c, m in cases if m.result.ok),
                                frozenset(c.node for c, m in cases if not m.result.ok)))
    return tuple(out)


def broken_pairs(v: Validation) -> tuple[tuple[str, str], ...]:
    """Cross-node pod paths that lost every ping, and pairs with a node whose echo pod never
    got a pod network."""
    pairs = {(p.source, p.target) for p, s in v.pod_ping.items()
             if p.source != p.target and s.passed == 0}
    dead = {n for n, e in v.echo.pods.items() if not e.ip}
    nodes = sorted(v.echo.pods)
    pairs |= {(a, b) for a in nodes for b in nodes if a != b and (a in dead or b in dead)}
    return tuple(sorted(pairs))


def observations(v: Validation, profile: ClusterProfile, results: Sequence[CheckResult],
                 no_endpoints: Sequence[str], unmatched: Sequence[str] | None = None
                 ) -> Observations:
    """Everything :func:`netdoctor.rootcause.rules.rank` needs for this run.

    ``unmatched``: Services whose selector matches no workload and no pod (a workload
    scaled to zero matches); without it, judged from the pods alone.
    """
    failing = failing_by_signal(results)
    flannel_expected = any(n.flannel_annotated for n in profile.nodes) or any(
        f.serves("flannel") or f.flannel_subnet
        for f in v.facts.values())
    return Observations(
        nodes=tuple(NodeView(n.name, n.internal_ip, n.pod_cidr or None) for n in profile.nodes),
        pods=tuple(pod_view(p, profile) for p in v.pods),
        facts=dict(v.facts), signals=frozenset(failing), failed_tests=failing,
        broken_pairs=broken_pairs(v), coredns_logs=v.coredns_logs,
        kube_proxy_logs=dict(v.kube_proxy_logs), flannel_daemonset=profile.flannel is not None,
        flannel_expected=bool(flannel_expected),
        services_without_endpoints=tuple(no_endpoints),
        unmatched_selectors=tuple(unmatched) if unmatched is not None
        else unmatched_selectors(v.services, v.pods),
        cni=profile.cni, cni_agent=profile.cni_agent is not None,
        cni_embedded=bool(profile.cni_embedded), ipam_from_podcidr=profile.ipam_from_podcidr,
        dns_service=profile.dns_service or "kube-system/kube-dns",
        checks=tuple(r for r in results if r.outcome in BAD),
        pod_paths_ok=frozenset((p.source, p.target) for p, s in v.pod_ping.items()
                               if s.sent and s.passed == s.sent),
        replicas=replica_probes(v, profile), node_port=v.echo.node_port or 0,
        dns_port=replica_port(v, profile),
        dns_workload=(f"{w.namespace}/{w.kind.lower()}/{w.name}"
                      if (w := profile.coredns) is not None and w.kind != "StaticPod" else ""),
    )
