"""An in-memory :class:`~netdoctor.repair.model.RepairContext` for hook tests.

API objects are lists of dicts by plural; Endpoints of selector Services are derived from
ready pods (as the endpoints controller would). Node facts are captured ``nodefacts.sh``
outputs; ``node_exec`` records each script and plays the few commands hooks send
(``iptables -D``, ``*-save >``, ``echo > /proc/sys``, ``mv`` out of net.d, ``ip link
delete``, the KUBE-* flush) on those facts, so a hook's verify and second plan see the
result of the exact command it planned.

Example:
    >>> ctx = FakeContext(nodes_={"worker-1": "10.244.1.0/24"})
    >>> ctx.list("statefulsets")
    []
"""

from __future__ import annotations

import builtins
import copy
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdoctor.repair.model import EvictionBlocked, Undo
from netdoctor.repair.undo import reverse_patch
from netdoctor.rootcause import facts as nodefacts

NODEFACTS = Path(__file__).parent / "data" / "nodefacts"
Obj = dict[str, Any]


def sample(name: str) -> list[str]:
    """A captured node-facts output, as lines."""
    return (NODEFACTS / f"{name}.txt").read_text().splitlines()


def add_rules(lines: list[str], section: str, table: str, rules: list[str]) -> list[str]:
    """``lines`` with ``rules`` first in ``table`` of ``section`` (``nft-save`` or
    ``legacy-save``), as ``iptables -I`` puts them; the table is added when missing."""
    out = list(lines)
    start = out.index(f"### {section}") + 1
    end = next(i for i in range(start, len(out)) if out[i].startswith("### "))
    if f"*{table}" not in out[start:end]:
        out[end:end] = [f"*{table}", *rules, "COMMIT"]
        return out
    i = out.index(f"*{table}", start, end) + 1
    while out[i].startswith(":"):
        i += 1
    out[i:i] = rules
    return out


@dataclass
class FakeContext:
    """Objects, node facts and canned reads in memory; every change recorded."""

    nodes_: dict[str, str]
    objects: dict[str, list[Obj]] = field(default_factory=dict)
    facts: dict[str, list[str]] = field(default_factory=dict)
    reads: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)
    signals: frozenset[str] = frozenset()
    causes: tuple[tuple[str, str | None], ...] = ()
    allow_control_plane: bool = False
    control_plane: frozenset[str] = frozenset({"control-plane"})
    exec_exit: int = 0
    execs: list[tuple[str, str]] = field(default_factory=list)
    patches: list[tuple[str, str, str, Obj]] = field(default_factory=list)
    restarts: list[tuple[str, str, str]] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    budget_blocks: frozenset[str] = frozenset()  # "ns/name" a PodDisruptionBudget keeps
    events: list[tuple[str, str | None, str, str]] = field(default_factory=list)
    undos: list[Undo] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    after_exec: Callable[[str, str], None] | None = None
    after_restart: Callable[[str, str, str], None] | None = None

    # -- nodes -----------------------------------------------------------------------------
    def control_plane_nodes(self) -> frozenset[str]:
        return self.control_plane

    def nodes(self) -> dict[str, str]:
        return dict(self.nodes_)

    def node_read(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        if script == nodefacts.script():
            if node not in self.facts:
                return 1, "", "no probe"
            return 0, "\n".join(self.facts[node]) + "\n", ""
        return self.reads.get((node, script), (1, "", "not canned"))

    def node_exec(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        self.execs.append((node, script))
        if self.exec_exit:
            return self.exec_exit, "", "simulated failure"
        for command in re.split(r"\n| && |; ", script):
            self._play(node, command.strip())
        if self.after_exec is not None:
            self.after_exec(node, script)
        return 0, "", ""

    def _section(self, node: str, name: str) -> tuple[int, int]:
        lines = self.facts[node]
        start = lines.index(f"### {name}") + 1
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("### "))
        return start, end

    def _play(self, node: str, cmd: str) -> None:
        lines = self.facts.get(node)
        if lines is None:
            return
        if m := re.match(r"iptables-(nft|legacy) -w -t filter -D (\S+) (.*)$", cmd):
            backend, chain, spec = m.groups()
            wanted = ["-A", chain, *shlex.split(spec)]
            start, end = self._section(node, f"{backend}-save")
            table = ""
            for i in range(start, end):
                table = lines[i][1:] if lines[i].startswith("*") else table
                if table == "filter" and lines[i].startswith("-A ") and \
                        shlex.split(lines[i]) == wanted:
                    del lines[i]
                    return
            raise AssertionError(f"iptables: Bad rule (does a matching rule exist?): {cmd}")
        if m := re.search(r"iptables-(nft|legacy)-save > (\S+)", cmd):
            start, end = self._section(node, f"{m.group(1)}-save")
            self.files[m.group(2)] = "\n".join(lines[start:end])
        if m := re.match(r"echo (\S+) > /proc/sys/(\S+)", cmd.split("; ")[-1].strip("{} ")):
            start, end = self._section(node, "sysctl")
            for i in range(start, end):
                if lines[i].startswith(m.group(2) + "="):
                    lines[i] = f"{m.group(2)}={m.group(1)}"
        if m := re.match(r"mv (\S+) (\S+)", cmd):
            src = shlex.split(cmd)[1]
            start, end = self._section(node, "cni-files")
            body = lines[start:end]
            keep, drop = [], False
            for line in body:
                if line.startswith("--- "):
                    drop = f"/host/etc/cni/net.d/{line[4:]}" == src
                if not drop:
                    keep.append(line)
            lines[start:end] = keep
        if m := re.search(r"iptables-(nft|legacy) -w -t \"\$t\" -X \"\$c\"", cmd):
            self._flush_kube(node, m.group(1))  # the KUBE-* flush loop ends here
        if cmd == "ip link delete cni0":
            start, _ = self._section(node, "addr")
            links = [x for x in json.loads(lines[start]) if x.get("ifname") != "cni0"]
            lines[start] = json.dumps(links)

    def _flush_kube(self, node: str, backend: str) -> None:
        lines = self.facts[node]
        start, end = self._section(node, f"{backend}-save")
        lines[start:end] = [ln for ln in lines[start:end]
                            if not ln.startswith((":KUBE-", "-A KUBE-")) and "-j KUBE-" not in ln]

    # -- API --------------------------------------------------------------------------------
    def list(self, kind: str, namespace: str | None = None,
             selector: str | None = None) -> list[Obj]:
        objs = self.objects.get(kind, [])
        if kind == "endpoints":
            objs = objs + self._derived_endpoints(objs)
        wanted = dict(kv.split("=", 1) for kv in selector.split(",")) if selector else {}
        return [copy.deepcopy(o) for o in objs
                if namespace in (None, o["metadata"].get("namespace"))
                and all((o["metadata"].get("labels") or {}).get(k) == v
                        for k, v in wanted.items())]

    def _derived_endpoints(self, explicit: builtins.list[Obj]) -> builtins.list[Obj]:
        have = {(e["metadata"]["namespace"], e["metadata"]["name"]) for e in explicit}
        out = []
        for svc in self.objects.get("services", []):
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            selector = svc.get("spec", {}).get("selector")
            if (ns, name) in have or not selector:
                continue
            ips = [p["status"]["podIP"] for p in self.objects.get("pods", [])
                   if p["metadata"]["namespace"] == ns and ready(p)
                   and all((p["metadata"].get("labels") or {}).get(k) == v
                           for k, v in selector.items())]
            subsets = [{"addresses": [{"ip": ip} for ip in ips]}] if ips else []
            out.append({"metadata": {"namespace": ns, "name": name}, "subsets": subsets})
        return out

    def patch(self, kind: str, namespace: str, name: str, patch: Obj, deadline: float) -> None:
        self.patches.append((kind, namespace, name, copy.deepcopy(patch)))
        for obj in self.objects.get(kind, []):
            if (obj["metadata"].get("namespace"), obj["metadata"]["name"]) == (namespace, name):
                self.undos.append(Undo("", None, "api-patch", f"{kind} {namespace}/{name}",
                                       json.dumps(reverse_patch(obj, patch)), "restore"))
                _merge(obj, patch)
                return
        raise RuntimeError(f"{kind} {namespace}/{name} not found")

    def pod_log(self, namespace: str, name: str, previous: bool = False) -> str:
        return ""

    def evict_pod(self, namespace: str, name: str, deadline: float) -> str:
        ref = f"{namespace}/{name}"
        found = [p for p in self.objects.get("pods", [])
                 if (p["metadata"]["namespace"], p["metadata"]["name"]) == (namespace, name)]
        if found and not any(r.get("controller")
                             for r in found[0]["metadata"].get("ownerReferences") or []):
            raise RuntimeError(f"pod {ref} has no controller: not evicted")
        if ref in self.budget_blocks:
            raise EvictionBlocked(f"pod {ref} kept for {deadline:.0f}s: Cannot evict pod as it "
                                  "would violate the pod's disruption budget.")
        self.evicted.append(ref)
        return f"evicted pod {ref}"

    def event(self, kind: str, namespace: str | None, name: str, message: str) -> None:
        self.events.append((kind, namespace, name, message))

    def delete(self, kind: str, namespace: str | None, name: str, deadline: float) -> None:
        self.objects[kind] = [o for o in self.objects.get(kind, [])
                              if (o["metadata"].get("namespace"), o["metadata"]["name"])
                              != (namespace, name)]

    def rollout_restart(self, kind: str, namespace: str, name: str, deadline: float) -> str:
        self.restarts.append((kind, namespace, name))
        # As the live context: a restart is a template patch, undone by another.
        undo = {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": None}}}}}
        self.undos.append(Undo("", None, "api-patch", f"{kind.lower()}s {namespace}/{name}",
                               json.dumps(undo), "restore the pod template"))
        if self.after_restart is not None:
            self.after_restart(kind, namespace, name)
        return f"restarted {kind} {namespace}/{name}"

    def apply_manifest(self, path: str, deadline: float) -> str:
        self.manifests.append(path)
        return f"applied {path}"


def _merge(obj: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(obj.get(key), dict):
            _merge(obj[key], value)
        elif value is None:
            obj.pop(key, None)
        else:
            obj[key] = copy.deepcopy(value)


def ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def pod(ns: str, name: str, node: str, labels: dict[str, str], ip: str, *,
        ok: bool = True, restarts: int = 0, owner: str | None = "ReplicaSet",
        host_network: bool = False) -> Obj:
    """A pod, Ready or crash-looping, owned by a controller unless ``owner`` is None."""
    refs = [{"kind": owner, "name": f"{name}-rs", "controller": True}] if owner else []
    state = {} if ok else {"waiting": {"reason": "CrashLoopBackOff"}}
    return {"metadata": {"namespace": ns, "name": name, "labels": labels,
                         "ownerReferences": refs},
            "spec": {"nodeName": node, "hostNetwork": host_network,
                     "containers": [{"name": "c"}]},
            "status": {"podIP": ip, "conditions": [
                {"type": "Ready", "status": "True" if ok else "False"}],
                "containerStatuses": [{"name": "c", "restartCount": restarts,
                                       "state": state}]}}


def workload(ns: str, name: str, labels: dict[str, str],
             ports: list[dict[str, Any]] | None = None) -> Obj:
    """A Deployment/StatefulSet/DaemonSet body with pod-template ``labels``."""
    return {"metadata": {"namespace": ns, "name": name, "labels": dict(labels)},
            "spec": {"selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "ports": ports or []}]}}}}
