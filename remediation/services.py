"""Stage ``verify``: a Service whose selector matches no pod.

The selector is patched only when the intent is unambiguous; everything else stays a
manual step with the commands to look and to fix.

Example:
    >>> near_miss("web", "webapp"), near_miss("api", "apl"), near_miss("web", "db")
    (True, True, False)
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netdoctor.repair.model import Action, Level, Plan, RepairContext

from ._common import HookOptions

WORKLOADS = {"deployments": "Deployment", "statefulsets": "StatefulSet",
             "daemonsets": "DaemonSet"}
Labels = Mapping[str, str]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance.

    Example:
        >>> edit_distance("frontend", "frontnd")
        1
    """
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def near_miss(wanted: str, have: str) -> bool:
    """Two different non-empty label values one could be a typo of the other: one is a
    prefix of the other, or they are at most 2 edits apart and those edits touch less than
    half of the shorter value (``v1``/``v2`` or ``web``/``db`` are different names).

    Example:
        >>> near_miss("nginx", "ngnix"), near_miss("v1", "v2")
        (True, False)
    """
    if not wanted or not have or wanted == have:
        return False
    if wanted.startswith(have) or have.startswith(wanted):
        return True
    edits = edit_distance(wanted, have)
    return edits <= 2 and 2 * edits < min(len(wanted), len(have))


def matches(selector: Labels, labels: Labels) -> bool:
    """Whether ``labels`` carry every key/value of ``selector``."""
    return all(labels.get(k) == v for k, v in selector.items())


def _template_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {})


def _exposes(obj: Mapping[str, Any], target: int | str) -> bool:
    ports = [p for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get(
        "containers") or [] for p in c.get("ports") or []]
    if isinstance(target, str) and not target.isdigit():
        return any(p.get("name") == target for p in ports)
    return any(p.get("containerPort") == int(target) for p in ports)


def _targets(svc: Mapping[str, Any]) -> list[int | str]:
    return [p.get("targetPort", p.get("port")) for p in svc.get("spec", {}).get("ports") or []]


def _patch_cmd(ns: str, name: str, selector: Labels) -> str:
    body = json.dumps({"spec": {"selector": dict(selector)}}, separators=(",", ":"))
    return (f"kubectl -n {shlex.quote(ns)} patch service {shlex.quote(name)} --type merge "
            f"-p {shlex.quote(body)}")


def _parse_patch(command: str) -> tuple[str, str, dict[str, str]]:
    tokens = shlex.split(command)
    return tokens[2], tokens[5], dict(json.loads(tokens[-1])["spec"]["selector"])


@dataclass(frozen=True)
class Proposal:
    """The one fix for a Service, or why there is none."""

    selector: dict[str, str] | None
    why: str


def propose(ctx: RepairContext, svc: Mapping[str, Any], pods: list[dict[str, Any]]
            ) -> Proposal:
    """The selector a Service most likely meant, when exactly one workload fits."""
    ns = svc["metadata"]["namespace"]
    selector: dict[str, str] = dict(svc.get("spec", {}).get("selector") or {})
    workloads = [(kind, w) for plural, kind in WORKLOADS.items()
                 for w in ctx.list(plural, namespace=ns)]
    near = []
    for kind, w in workloads:
        labels = _template_labels(w)
        if (set(selector) <= set(labels) and not matches(selector, labels)
                and all(labels[k] == v or near_miss(v, labels[k]) for k, v in selector.items())):
            near.append((kind, w, {k: labels[k] for k in selector}))
    if len(near) != 1:
        names = ", ".join(f"{k} {w['metadata']['name']}" for k, w, _ in near) or "none"
        return Proposal(None, f"{len(near)} workloads with near-miss pod labels ({names})")
    kind, w, fixed = near[0]
    ref = f"{kind} {ns}/{w['metadata']['name']}"
    missing = [str(t) for t in _targets(svc) if t is None or not _exposes(w, t)]
    if missing or not _targets(svc):
        return Proposal(None, f"{ref} does not expose targetPort {', '.join(missing) or '-'}")
    if not any(p["metadata"]["namespace"] == ns
               and matches(fixed, p["metadata"].get("labels") or {}) for p in pods):
        return Proposal(None, f"{ref} has no pods with {fixed}")
    return Proposal(fixed, f"the pod labels of {ref}")


@dataclass
class ServiceSelector:
    """A Service whose selector matches no pod gets the selector of the one workload it
    evidently meant, with ``--fix-selectors`` only; without it, or anything less certain,
    it stays a manual step with the exact patch.

    The selector is merge-patched only when all of this holds:

    * it matches no pod in the Service's namespace;
    * exactly one Deployment, StatefulSet or DaemonSet there has pod-template labels with
      every selector key, each value equal or a near miss (one a prefix of the other, or
      at most 2 edits apart touching less than half of the shorter value), at least one
      of them different;
    * that workload's containers declare every targetPort of the Service (by number or
      name), and pods with the new labels run (a second workload carrying them would have
      been a second candidate).

    Then ``spec.selector`` takes the workload's values for the same keys (no key is added
    or removed); the old selector and the command restoring it are in the step's detail.
    The post-condition: the Service's Endpoints have addresses within the deadline.
    Example: Service ``shop/web`` selecting ``app: web`` while Deployment ``shop/web``
    labels its pods ``app: webapp`` is patched to ``app: webapp``.
    """

    opts: HookOptions
    name: str = "service-selector"
    stage: str = "verify"
    causes: frozenset[str] = frozenset({"service-selector-matches-nothing"})
    level: Level = "api"
    disruptive: bool = True
    deadline: float = 60.0

    def _unmatched(self, ctx: RepairContext) -> tuple[list[dict[str, Any]],
                                                       list[dict[str, Any]]]:
        pods = ctx.list("pods")
        services = [s for s in ctx.list("services")
                    if (sel := s.get("spec", {}).get("selector") or {}) and not any(
                        p["metadata"]["namespace"] == s["metadata"]["namespace"]
                        and matches(sel, p["metadata"].get("labels") or {}) for p in pods)]
        return services, pods

    def plan(self, ctx: RepairContext) -> list[Plan]:
        services, pods = self._unmatched(ctx)
        plans = []
        for svc in services:
            selector = svc["spec"]["selector"]
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            found = propose(ctx, svc, pods)
            if found.selector is None:
                wanted = json.dumps({"spec": {"selector": dict.fromkeys(selector, "<label>")}})
                plans.append(Plan(self.name, None, (), manual=(
                    f"Service {ns}/{name} selects {selector}, which matches no pod "
                    f"({found.why}): kubectl -n {ns} get pods --show-labels; "
                    f"kubectl -n {ns} patch service {name} -p '{wanted}'")))
                continue
            if not self.opts.fix_selectors:
                # Re-pointing a Service sends its traffic to other pods: the operator's call.
                plans.append(Plan(self.name, None, (), manual=(
                    f"Service {ns}/{name} selects {selector}, which matches no pod; "
                    f"{found.why} carry {found.selector}: check, then "
                    f"{_patch_cmd(ns, name, found.selector)} (or rerun with --fix-selectors)")))
                continue
            plans.append(Plan(self.name, None, (Action(
                f"Service {ns}/{name} selector {selector} -> {found.selector} "
                f"({found.why}); to restore: {_patch_cmd(ns, name, selector)}",
                _patch_cmd(ns, name, found.selector), touches=f"services {ns}/{name}"),),
                disruptive=True))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        ns, name, selector = _parse_patch(plan.actions[0].command)
        services, pods = self._unmatched(ctx)
        svc = next((s for s in services if (s["metadata"]["namespace"], s["metadata"]["name"])
                    == (ns, name)), None)
        if svc is None or propose(ctx, svc, pods).selector != selector:
            raise RuntimeError(f"Service {ns}/{name} changed since it was planned: not patched")
        old = dict(svc["spec"]["selector"])
        ctx.patch("services", ns, name, {"spec": {"selector": selector}}, self.deadline)
        return (f"Service {ns}/{name} selector {old} -> {selector}; to restore: "
                f"{_patch_cmd(ns, name, old)}")

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        ns, name, _ = _parse_patch(plan.actions[0].command)
        end = time.monotonic() + self.deadline - 10.0
        while True:
            eps = [e for e in ctx.list("endpoints", namespace=ns) if e["metadata"]["name"] == name]
            if eps and any(s.get("addresses") for s in eps[0].get("subsets") or []):
                return None
            if time.monotonic() > end:
                return f"Service {ns}/{name} has no endpoint addresses yet"
            time.sleep(0.5)
