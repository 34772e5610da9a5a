"""What every hook shares: its options, node facts, backups and pod selection."""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdoctor.cluster.roles import family_of_types
from netdoctor.probes.components import pod_state
from netdoctor.repair.model import Action, Plan, RepairContext
from netdoctor.rootcause import facts as nodefacts

BACKUP_ROOT = "/host/var/backups/netdoctor"
READ_DEADLINE = 20.0
MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class HookOptions:
    """Settings the hooks read (from the run's options)."""

    run_id: str
    flannel_manifest: Path
    dns_fallback: tuple[str, ...] = ()
    external_name: str = "example.com"
    cni: str = "flannel"
    fix_selectors: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backup_dir(self) -> str:
        """Where node files are copied before they change (seen from the node agent)."""
        return f"{BACKUP_ROOT}/{self.run_id}"


def read_facts(ctx: RepairContext, node: str) -> nodefacts.NodeFacts:
    """The node's network facts, read through its read-only node probe.

    Raises:
        RuntimeError: the facts script did not finish (the state is unknown).
    """
    code, out, err = ctx.node_read(node, nodefacts.script(), READ_DEADLINE)
    found = nodefacts.parse(node, out)
    if not found.complete:
        raise RuntimeError(f"node facts of {node} incomplete (exit {code}): {err.strip()[-200:]}")
    return found


def node_cni(facts: nodefacts.NodeFacts, cni: str) -> str:
    """The cluster's CNI as this node's configs show it: ``cni`` (from the run) when its own
    config is there, else the known CNI whose config the node holds. A name the run could
    only guess is no ground to act on."""
    files = [f for f in facts.active_files if not f.meta]
    if any(facts.owns(f, cni) for f in files):
        return cni
    return next((found for f in files if (found := family_of_types(f.plugins))), cni)


def run_checked(ctx: RepairContext, node: str, script: str, deadline: float) -> str:
    """Run a changing script on ``node``; raise with its stderr when it fails."""
    code, out, err = ctx.node_exec(node, "set -e\n" + script, deadline)
    if code != 0:
        raise RuntimeError(f"exit {code} on {node}: {(err or out).strip()[-300:]}")
    return out


def run_plan(ctx: RepairContext, plan: Plan, deadline: float) -> str:
    """Run every action of a node plan as one checked script; the plan's detail."""
    assert plan.node is not None
    run_checked(ctx, plan.node, "\n".join(a.command for a in plan.actions), deadline)
    return plan.detail


def backup_cmd(opts: HookOptions, source: str, name: str) -> tuple[str, str]:
    """(shell command, backup path) that copies ``source`` (a path under /host) once."""
    dest = f"{opts.backup_dir}/{name}"
    cmd = (f"mkdir -p {shlex.quote(opts.backup_dir)} && "
           f"{{ [ -e {shlex.quote(dest)} ] || cp -a {shlex.quote(source)} {shlex.quote(dest)}; }}")
    return cmd, dest


def in_cidr(ip: str, cidr: str) -> bool:
    """Whether ``ip`` lies in ``cidr``."""
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def pod_network_pods(ctx: RepairContext, node: str) -> list[dict[str, Any]]:
    """Running pods on ``node`` in the pod network, not ours, not already going away."""
    return [p for p in ctx.list("pods")
            if p.get("spec", {}).get("nodeName") == node
            and not p["spec"].get("hostNetwork")
            and not p["metadata"].get("deletionTimestamp")
            and (p["metadata"].get("labels") or {}).get(MANAGED_BY) != "netdoctor"
            and p.get("status", {}).get("podIP")]


def owned(pod: Mapping[str, Any]) -> bool:
    """The pod has a controller that will recreate it."""
    return any(r.get("controller") for r in pod["metadata"].get("ownerReferences") or [])


def ref(pod: Mapping[str, Any]) -> str:
    """``namespace/name``."""
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def crashlooping(pod: Mapping[str, Any]) -> bool:
    """Not Ready, or a container waits in CrashLoopBackOff (judged as the component checks
    judge a pod: :func:`netdoctor.probes.components.pod_state`)."""
    state = pod_state(pod)
    return state.crashlooping or not state.ready


def restarted_or_failing(pod: Mapping[str, Any]) -> bool:
    """Crash-looping now, or restarted before (a pod between two crashes looks Running)."""
    return crashlooping(pod) or pod_state(pod).restarts > 0


def evict_action(pod: Mapping[str, Any], why: str) -> Action:
    """Evict one controller-owned pod through the Eviction API (the exact request)."""
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"namespace": ns, "name": name}}, separators=(",", ":"))
    return Action(f"evict pod {ns}/{name} ({why}; its controller recreates it, "
                  "PodDisruptionBudgets respected)",
                  f"kubectl create --raw /api/v1/namespaces/{ns}/pods/{name}/eviction "
                  f"-f - <<< {shlex.quote(body)}", touches=f"pods {ns}/{name}")


def evicted(action: Action) -> tuple[str, str] | None:
    """(namespace, name) of an :func:`evict_action`, None for any other action."""
    words = action.command.split()
    if words[:3] != ["kubectl", "create", "--raw"] or not words[3].endswith("/eviction"):
        return None
    parts = words[3].split("/")
    return parts[4], parts[6]
