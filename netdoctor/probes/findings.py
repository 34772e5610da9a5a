"""From observations to findings: each function returns the evidence of what is wrong
(empty when all is well). Checks state the expectation; these say what was seen.
"""

from __future__ import annotations

from collections.abc import Sequence

from netdoctor.cluster.exec import Measured
from netdoctor.cluster.probes import ProbeFailure
from netdoctor.cluster.profile import ClusterProfile
from netdoctor.model import CheckFailed, Evidence, NotObserved, make_evidence
from netdoctor.probes.components import ComponentState, PodState, ServiceEndpoints
from netdoctor.probes.network import DnsQuery, PairId, ip_in_cidr
from netdoctor.probes.outcome import classify, require_observed, unobserved_reason
from netdoctor.probes.parsers import PingResult


def expect_none(problems: Sequence[Evidence], message: str) -> None:
    """Fail with ``message`` and the evidence when there are problems."""
    __tracebackhide__ = True
    if problems:
        raise CheckFailed(f"{message}: " + "; ".join(p.title for p in problems), problems)


def _pod_cmd(pod: PodState) -> str:
    return f"kubectl get pod -n {pod.namespace} {pod.name} -o yaml"


def unhealthy_pods(state: ComponentState, *, restart_threshold: int | None = None,
                   node: str | None = None) -> list[Evidence]:
    """Pods crash-looping, not Ready, or restarted at least ``restart_threshold`` times."""
    found: list[Evidence] = []
    for pod in state.pods_on(node) if node else state.pods:
        bad = []
        if pod.crashlooping:
            bad.append("CrashLoopBackOff")
        if not pod.ready:
            bad.append(f"not Ready ({pod.problem or pod.phase})")
        if restart_threshold is not None and pod.restarts >= restart_threshold:
            bad.append(f"{pod.restarts} restarts (threshold {restart_threshold})")
        if bad:
            lines = [f"node {pod.node or '<unscheduled>'}, restarts {pod.restarts}", *bad,
                     *state.events.get(pod.name, ())]
            found.append(make_evidence(f"{pod.namespace}/{pod.name}: {', '.join(bad)}", lines,
                                       command=f"kubectl describe pod -n {pod.namespace} "
                                               f"{pod.name}"))
    return found


def probe_failures_in_events(state: ComponentState) -> list[Evidence]:
    """Readiness/liveness probe failures in the Events of the component's pods."""
    found: list[Evidence] = []
    for pod in state.pods:
        hits = [e for e in state.events.get(pod.name, ())
                if "probe failed" in e.lower()]
        if hits:
            found.append(make_evidence(f"{pod.namespace}/{pod.name}: probe failures in Events",
                                       hits, command=f"kubectl get events -n {pod.namespace} "
                                                     f"--field-selector involvedObject.name="
                                                     f"{pod.name}"))
    return found


def missing_workload(state: ComponentState, what: str) -> list[Evidence]:
    """Evidence that a component has no workload or no pods at all."""
    if state.workload is None:
        return [make_evidence(f"no {what} found", f"no {what} workload in any namespace")]
    if not state.pods:
        return [make_evidence(f"{state.workload.ref} has no pods",
                              f"selector {state.workload.selector} matches no pod",
                              command=f"kubectl get pods -n {state.workload.namespace} "
                                      f"-l {state.workload.selector}")]
    return []


def log_timeouts(state: ComponentState) -> list[Evidence]:
    """``i/o timeout`` lines in the component's logs (current and previous containers)."""
    ns = state.workload.namespace if state.workload else ""
    return [make_evidence(f"{pod}: {len(lines)} 'i/o timeout' log lines", lines[-10:],
                          command=f"kubectl logs -n {ns} {pod} --previous")
            for pod, lines in state.log_lines.items()]


def flannel_absent(profile: ClusterProfile, state: ComponentState) -> list[Evidence]:
    """The cluster runs Flannel (nodes annotated) but no Flannel DaemonSet exists."""
    if state.workload is not None:
        return []
    annotated = [n.name for n in profile.nodes if n.flannel_annotated]
    return [make_evidence(
        "no Flannel DaemonSet in any namespace",
        [f"nodes annotated flannel.alpha.coreos.com/*: {', '.join(annotated) or 'none'}",
         "looked for: image *flannel*, label app=flannel, names kube-flannel-ds/kube-flannel"],
        command="kubectl get daemonsets -A -l app=flannel")]


def flannel_gaps(profile: ClusterProfile, state: ComponentState) -> list[Evidence]:
    """Ready nodes without a Ready Flannel pod, with the DaemonSet's counts."""
    if state.workload is None:
        return []
    covered = {p.node for p in state.pods if p.ready}
    gaps = [n.name for n in profile.ready_nodes if n.name not in covered]
    if not gaps:
        return []
    return [make_evidence(
        f"{state.workload.ref}: no Ready pod on {', '.join(gaps)}",
        [f"desired {state.desired}, ready {state.ready_count}, Ready nodes "
         f"{len(profile.ready_nodes)}"],
        command=f"kubectl get pods -n {state.workload.namespace} -l {state.workload.selector} "
                "-o wide")]


def services_without_endpoints(services: Sequence[ServiceEndpoints]) -> list[Evidence]:
    """Services with a selector and no ready endpoint."""
    return [make_evidence(f"{s.ref}: no ready endpoints",
                          [f"selector {s.selector}", f"ready 0, not ready {s.not_ready}"],
                          command=f"kubectl get endpointslices -n {s.namespace} "
                                  f"-l kubernetes.io/service-name={s.name}")
            for s in services if s.ready == 0]


def probe_missing(node: str, failure: ProbeFailure | None, reason: str = "") -> Evidence:
    """Evidence for a node whose probe never ran."""
    if failure is None:
        return make_evidence(f"no probe on {node}", reason or "the probe pod was not created")
    return make_evidence(f"probe {failure.pod} on {failure.node}: {failure.reason}",
                         failure.events, command=f"kubectl describe pod {failure.pod}")


def ping_failure(pair: PairId, m: Measured[PingResult], profile: ClusterProfile,
                 source_ip: str, target_ip: str) -> list[Evidence]:
    """Evidence when ``pair`` got no reply, with the pod IPs against node podCIDRs.

    Raises:
        NotObserved: The ping's result never reached us (exec or API failure).
    """
    require_observed(m, f"ping {pair}")
    if m.result.ok:
        return []
    cidr = {n.name: n.pod_cidr for n in profile.nodes}
    lines = [f"{pair.source} ({source_ip}) -> {pair.target} ({target_ip}): "
             + (m.result.error or f"{m.result.loss_percent:g}% packet loss"
                if m.result.conclusive else "no conclusive answer")]
    for node, ip in ((pair.source, source_ip), (pair.target, target_ip)):
        if cidr.get(node) and not ip_in_cidr(ip, cidr[node]):
            lines.append(f"pod IP {ip} on {node} is outside the node's podCIDR {cidr[node]} "
                         "(another CNI config may have won on that node)")
    return [make_evidence(f"ping {pair} failed", lines, command=m.command, attempts=m.attempts)]


def dns_failures(queries: Sequence[DnsQuery], node: str) -> list[Evidence]:
    """Lookups from ``node`` that timed out or failed.

    Raises:
        NotObserved: No lookup failed but some never reported (exec or API failure).
    """
    found: list[Evidence] = []
    unseen = [q for q in queries if q.node == node and classify(q.measured) == "not_observed"]
    for q in queries:
        if q.node != node or q.measured.result.ok or q in unseen:
            continue
        r = q.measured.result
        found.append(make_evidence(
            f"{q.name} at {q.server} from {node}: {r.status}",
            [f"status {r.status}{' rcode ' + r.rcode if r.rcode else ''}"],
            command=q.measured.command, attempts=q.measured.attempts))
    if unseen and not found:
        raise NotObserved(f"lookups from {node}: " + "; ".join(
            f"{q.name} at {q.server}: {unobserved_reason(q.measured)}" for q in unseen))
    return found


def absent_on_node(state: ComponentState, node: str, what: str) -> list[Evidence]:
    """A per-node component (a DaemonSet's pod) that has no pod on ``node``."""
    missing = missing_workload(state, what)
    if missing or state.pods_on(node):
        return missing
    assert state.workload is not None
    return [make_evidence(f"no {what} pod on {node}",
                          f"{state.workload.ref} has no pod scheduled there",
                          command=f"kubectl get pods -n {state.workload.namespace} "
                                  f"-l {state.workload.selector} -o wide")]
