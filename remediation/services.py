"""Stage ``verify``: what is left for an operator, said exactly (never fixed automatically)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from netdoctor.repair.model import Level, Plan, RepairContext
from remediation._common import HookOptions


@dataclass
class ServiceSelector:
    """A Service whose selector matches no pod is a configuration choice netdoctor cannot
    know the intent of: it is reported with the commands to look and to fix."""

    opts: HookOptions
    name: str = "service-selector"
    stage: str = "verify"
    addresses: frozenset[str] = frozenset({"service_endpoints_missing",
                                           "service-selector-matches-nothing"})
    level: Level = "api"
    disruptive: bool = False
    deadline: float = 10.0

    def plan(self, ctx: RepairContext) -> list[Plan]:
        pods = ctx.list("pods")
        plans = []
        for svc in ctx.list("services"):
            selector = svc.get("spec", {}).get("selector") or {}
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            if not selector or any(
                    p["metadata"]["namespace"] == ns and all(
                        (p["metadata"].get("labels") or {}).get(k) == v
                        for k, v in selector.items()) for p in pods):
                continue
            wanted = json.dumps({"spec": {"selector": dict.fromkeys(selector, "<label>")}})
            plans.append(Plan(self.name, None, (), manual=(
                f"Service {ns}/{name} selects {selector}, which matches no pod: "
                f"kubectl -n {ns} get pods --show-labels; "
                f"kubectl -n {ns} patch service {name} -p '{wanted}'")))
        return plans

    def apply(self, ctx: RepairContext, plan: Plan) -> str:
        raise RuntimeError("manual step: never applied")

    def verify(self, ctx: RepairContext, plan: Plan) -> str | None:
        return None
