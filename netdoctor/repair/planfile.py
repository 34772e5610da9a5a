"""The remediation plan as data (``plan.json``), Markdown (``plan.md``) and terminal lines.

Example:
    >>> from netdoctor.repair.model import Action, Plan
    >>> p = Plan("kernel-sysctls", "w1", (Action("ip_forward 0 -> 1", "echo 1 > f",
    ...          touches="sysctl net.ipv4.ip_forward"),), cause="ip-forward-off@w1")
    >>> plan_lines([p], {"kernel-sysctls": "system"})[0]
    '1. [system] kernel-sysctls on w1 for ip-forward-off@w1 (1 change)'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from netdoctor.redact import redact
from netdoctor.repair.model import Plan

PLAN_JSON = "plan.json"
PLAN_MD = "plan.md"


def plan_json(plans: Sequence[Plan], stages: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every step in order: stage, hook, node, cause, changes, actions, or the manual step."""
    return [{"order": i, "stage": stages.get(p.hook, "-"), "hook": p.hook, "node": p.node,
             "cause": p.cause, "changes": p.changes, "manual": p.manual,
             "backups": list(p.backups),
             "actions": [{"description": a.description, "command": a.command,
                          "touches": a.touches, "changes": a.changes, "undo": a.undo}
                         for a in p.actions]}
            for i, p in enumerate(plans, 1)]


def plan_lines(plans: Sequence[Plan], stages: Mapping[str, str]) -> list[str]:
    """The plan for the terminal, before anything changes."""
    lines = []
    for i, p in enumerate(plans, 1):
        head = f"{i}. [{stages.get(p.hook, '-')}] {p.hook} on {p.node or 'the cluster'} " \
               f"for {p.cause or '-'}"
        if p.manual:
            lines += [f"{head} (manual)", f"     run: {redact(p.manual)}"]
            continue
        lines.append(f"{head} ({p.changes} change{'s' if p.changes != 1 else ''})")
        for a in p.actions:
            touches = f" [touches {a.touches}]" if a.touches and a.changes else ""
            lines += [f"     - {redact(a.description)}{touches}",
                      f"       $ {redact(a.command.splitlines()[0])}"
                      + (" ..." if "\n" in a.command else "")]
    return lines


def write_plan(directory: Path, plans: Sequence[Plan], stages: Mapping[str, str],
               header: str, suffix: str = "") -> tuple[Path, Path]:
    """Write ``plan<suffix>.json`` and ``plan<suffix>.md``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    data = plan_json(plans, stages)
    js = directory / PLAN_JSON.replace(".", f"{suffix}.")
    js.write_text(json.dumps({"header": header, "steps": data}, indent=1) + "\n")
    md = ["# Remediation plan", "", redact(header), "",
          f"{sum(p.changes for p in plans)} change(s) in all; manual steps are not applied.",
          ""]
    for step in data:
        where = step["node"] or "the cluster"
        md.append(f"## {step['order']}. `{step['hook']}` on {where} ({step['stage']})")
        md += ["", f"Cause: `{step['cause'] or '-'}`; changes: {step['changes']}", ""]
        if step["manual"]:
            md += ["Manual step, run:", "", "```sh", redact(step["manual"]), "```", ""]
            continue
        for a in step["actions"]:
            md.append(f"- {redact(a['description'])}"
                      + (f" (touches {a['touches']})" if a["touches"] else ""))
            md += ["", "  ```sh", *[f"  {redact(ln)}" for ln in a["command"].splitlines()],
                   "  ```"]
            if a["undo"]:
                md += ["  undo:", "", "  ```sh", f"  {redact(a['undo'])}", "  ```"]
        md.append("")
    mdp = directory / PLAN_MD.replace(".", f"{suffix}.")
    mdp.write_text("\n".join(md) + "\n")
    return js, mdp
