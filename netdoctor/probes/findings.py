"""From observations to findings: each function returns the evidence of what is wrong
(empty when all is well). Checks state the expectation; these say what was seen.
"""

from __future__ import annotations

import re
import time
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
                   node: str | None = None, window: float | None = None,
                   now: float | None = None) -> list[Evidence]:
    """Pods crash-looping, not Ready, or restarted at least ``restart_threshold`` times.

    With ``window`` (seconds), restarts count only when a container last terminated within
    it (before ``now``): old restarts, a reboot long ago, say nothing about the pod today.
    """
    found: list[Evidence] = []
    at = time.time() if now is None else now
    for pod in state.pods_on(node) if node else state.pods:
        bad = []
        if pod.crashlooping:
            bad.append("CrashLoopBackOff")
        if not pod.ready:
            bad.append(f"not Ready ({pod.problem or pod.phase})")
        recent = window is None or pod.restarting(at, window)
        if restart_threshold is not None and recent and pod.restarts >= restart_threshold:
            since = "" if window is None else f", last exit within {window / 60:g} min"
            bad.append(f"{pod.restarts} restarts (threshold {restart_threshold}{since})")
        if bad:
            lines = [f"node {pod.node or '<unscheduled>'}, restarts {pod.restarts}", *bad,
                     *state.events.get(pod.name, ())]
            found.append(make_evidence(f"{pod.namespace}/{pod.name}: {', '.join(bad)}", lines,
                                       command=f"kubectl describe pod -n {pod.namespace} "
                                               f"{pod.name}"))
    return found


PROBE_FAILURES = 3
"""Probe failures of a Ready pod that make a finding: the kubelet's default failureThreshold,
the count at which it acts (marks the pod unready or restarts it). Fewer, with the pod Ready,
are a blip (a busy node, a reload), not a component in trouble."""
TIMEOUT_LINES = 3
"""``i/o timeout`` log lines in the window that make a finding: one or two are a lost packet
towards an upstream, which any resolver sees now and then."""
_TIMES = re.compile(r"\(x(\d+)\)$")


def _times(line: str) -> int:
    """How often an Event line happened (its ``(xN)`` suffix, else once)."""
    found = _TIMES.search(line)
    return int(found.group(1)) if found else 1


def probe_failures_in_events(state: ComponentState) -> list[Evidence]:
    """Readiness/liveness probe failures in the Events of the component's pods, since each
    last became Ready (failures while it started, passing since, are no finding): a finding
    when the pod is not Ready, or when they add up to :data:`PROBE_FAILURES`."""
    found: list[Evidence] = []
    for pod in state.pods:
        seen = state.since_ready.get(pod.name, state.events.get(pod.name, ()))
        hits = [e for e in seen if "probe failed" in e.lower()]
        if hits and (not pod.ready or sum(map(_times, hits)) >= PROBE_FAILURES):
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
    """``i/o timeout`` lines in the component's logs (current and previous containers), per
    pod with at least :data:`TIMEOUT_LINES` of them."""
    ns = state.workload.namespace if state.workload else ""
    return [make_evidence(f"{pod}: {len(lines)} 'i/o timeout' log lines", lines[-10:],
                          command=f"kubectl logs -n {ns} {pod} --previous")
            for pod, lines in state.log_lines.items() if len(lines) >= TIMEOUT_LINES]


def cni_agent_absent(profile: ClusterProfile, state: ComponentState) -> list[Evidence]:
    """The cluster's CNI should run an agent but none runs: no DaemonSet (Flannel: nor
    embedded in the node agent, which node facts tell)."""
    if state.workload is not None or profile.cni == "unknown" or profile.cni_embedded:
        return []
    agent = {"flannel": "Flannel", "calico": "calico-node", "canal": "canal (calico + "
             "flannel)", "cilium": "cilium agent"}.get(profile.cni, f"{profile.cni} agent")
    annotated = [n.name for n in profile.nodes if n.flannel_annotated]
    lines = [profile.cni_reason or f"the cluster's CNI is {profile.cni}"]
    if profile.cni == "flannel":
        lines.append(f"nodes annotated flannel.alpha.coreos.com/*: "
                     f"{', '.join(annotated) or 'none'}")
    lines.append("looked for: agent DaemonSets by image, labels and container names in every "
                 "namespace")
    title = f"{agent} DaemonSet absent in every namespace"
    if profile.cni == "flannel" and profile.cni_embedded is False:
        title = f"no Flannel agent on every node: {profile.cni_reason}"
    return [make_evidence(title, lines, command="kubectl get daemonsets -A -o wide")]


def cni_agent_gaps(profile: ClusterProfile, state: ComponentState) -> list[Evidence]:
    """Ready nodes without a Ready pod of the CNI's agent, with the DaemonSet's counts."""
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


def _backing(s: ServiceEndpoints) -> str:
    if s.matches_nothing:
        return "its selector matches no workload and no pod"
    if s.wanted is None:
        return f"{s.pods} pod(s) without a controller match, none ready"
    return f"{', '.join(s.workloads)} want(s) {s.wanted} pod(s), none ready"


def services_without_endpoints(services: Sequence[ServiceEndpoints]) -> list[Evidence]:
    """Services with a selector and no ready endpoint where pods are wanted (a workload
    scaled to zero on purpose is left alone)."""
    return [make_evidence(f"{s.ref}: no ready endpoints",
                          [f"selector {s.selector}", f"ready 0, not ready {s.not_ready}",
                           _backing(s)],
                          command=f"kubectl get endpointslices -n {s.namespace} "
                                  f"-l kubernetes.io/service-name={s.name}")
            for s in services if s.hurts]


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


def kube_proxy_on_node(profile: ClusterProfile, state: ComponentState, node: str, *,
                       restart_threshold: int | None = None, window: float | None = None
                       ) -> list[Evidence]:
    """kube-proxy on ``node`` as the cluster runs it: its pod (DaemonSet or static mirror
    pod) present, Ready and not restarting lately; embedded in the node agent, its
    KUBE-SERVICES rules on the node; missing, the reason."""
    runs = profile.kube_proxy_runs
    if runs == "embedded":
        if node in profile.kube_proxy_blocked:
            return [make_evidence(f"{node}: iptables cannot manage the node's tables",
                                  [profile.kube_proxy_reason, "the kube-proxy inside the node "
                                   "agent cannot sync its rules there; they go stale"],
                                  command=f"iptables-nft-save  # on {node}: 'incompatible' "
                                          "tables")]
        if node in profile.kube_proxy_nodes:
            return []
        return [make_evidence(f"no KUBE-SERVICES rules on {node}",
                              [profile.kube_proxy_reason, "kube-proxy runs inside the node "
                               f"agent here; on {node} it programs no Service rules"],
                              command=f"iptables-save -t nat | grep KUBE-SERVICES  # on {node}")]
    if runs == "missing":
        return [make_evidence("kube-proxy is missing", profile.kube_proxy_reason,
                              command="kubectl get daemonsets,pods -A -l k8s-app=kube-proxy")]
    return (absent_on_node(state, node, "kube-proxy")
            + unhealthy_pods(state, restart_threshold=restart_threshold, node=node,
                             window=window))
