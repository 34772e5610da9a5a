"""The :class:`~netdoctor.repair.model.RepairContext` on a real cluster (kr8s, our deadlines).

Node work goes through pods built by the one spec factory: read-only node probes for
planning (on every Ready node), writable node agents only on nodes where a change is
applied. Both live in ``netdoctor-<run-id>-repair`` with the run's labels and are removed by
:meth:`LiveContext.close` (also after Ctrl-C, from ``pytest_unconfigure``).

Example:
    >>> rollout_done("Deployment", {"metadata": {"generation": 2}, "spec": {"replicas": 1},
    ...     "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
    ...                "readyReplicas": 1, "availableReplicas": 1}})
    True
"""

from __future__ import annotations

import asyncio
import builtins
import json
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import kr8s
import kr8s.asyncio.objects as k8s
import yaml

from netdoctor.cluster import leases
from netdoctor.cluster import probes as pods
from netdoctor.cluster.client import Cluster, Target, bounded, connect, status_code
from netdoctor.cluster.exec import exec_once
from netdoctor.cluster.profile import ClusterProfile, read_profile
from netdoctor.cluster.ratelimit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket
from netdoctor.repair.model import EvictionBlocked, Undo
from netdoctor.repair.runner import RemediationLog
from netdoctor.repair.undo import event_body, reverse_patch

T = TypeVar("T")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
POLL = 0.2
_APPS = {"deployments": "Deployment", "daemonsets": "DaemonSet"}


@dataclass(frozen=True)
class LiveOptions:
    """What the context needs from the run's settings."""

    kubeconfig: Path | None
    context: str | None
    run_id: str
    image: str
    allow_control_plane: bool
    setup_timeout: float
    api_qps: float = DEFAULT_QPS
    api_burst: int = DEFAULT_BURST


def rollout_done(kind: str, obj: Mapping[str, Any]) -> bool:
    """Whether a Deployment or DaemonSet finished rolling out its current template."""
    meta, spec, st = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    if st.get("observedGeneration", 0) < meta.get("generation", 0):
        return False
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        return all(bool(st.get(k, 0) == want) for k in ("replicas", "updatedReplicas",
                                                   "readyReplicas", "availableReplicas"))
    desired = st.get("desiredNumberScheduled", 0)
    return bool(st.get("updatedNumberScheduled", 0) == desired == st.get("numberReady", 0)
                and desired > 0)


def controller_owned(pod: Mapping[str, Any]) -> bool:
    """The pod has a controller owner (ReplicaSet, DaemonSet...) that will recreate it."""
    refs = pod.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("controller") for r in refs)


class LiveContext:
    """Repairs against the API and node pods; every call bounded, every change logged."""

    def __init__(self, options: LiveOptions, signals: frozenset[str],
                 causes: tuple[tuple[str, str | None], ...], log: RemediationLog) -> None:
        self.options = options
        self.signals = signals
        self.causes = causes
        self.allow_control_plane = options.allow_control_plane
        self.undos: builtins.list[Undo] = []
        self.step = ""  # the hook whose changes are being recorded
        self.log = log
        self._runner = asyncio.Runner()
        self.cluster: Cluster | None = None
        self.profile: ClusterProfile | None = None
        namespace = f"netdoctor-{options.run_id}-repair"
        self.readers = pods.ProbeSet(namespace, options.run_id)
        self.agents = pods.ProbeSet(namespace, options.run_id)
        self._node_objs: list[dict[str, Any]] = []
        self._api_ips: set[str | None] = set()
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def connect(self) -> None:
        """Connect and read the nodes and the profile."""
        self.cluster = self._run(connect(Target(self.options.kubeconfig, self.options.context),
                                            bucket=TokenBucket(self.options.api_qps,
                                                               self.options.api_burst)))
        self.profile = self._run(read_profile(self.cluster))
        self._node_objs = self._run(self.cluster.list("nodes"))
        endpoints = self._run(self.cluster.list("endpoints", namespace="default"))
        self._api_ips = {a.get("ip") for e in endpoints if e["metadata"]["name"] == "kubernetes"
                         for s in e.get("subsets") or [] for a in s.get("addresses") or []}

    def acquire_lease(self, name: str = leases.REMEDIATION_LEASE,
                      role: str = "remediation") -> str:
        """Take a Lease (by default the cluster-wide remediation Lease): "" when this run
        holds it now, else who does (:func:`netdoctor.cluster.leases.acquire`)."""
        return self._run(leases.acquire(self._api, name, self.options.run_id, role))

    def close(self) -> list[str]:
        """Remove the node probes and agents (idempotent); return what could not be removed."""
        if self._closed:
            return []
        self._closed = True
        problems: list[str] = []
        if self.cluster is not None:
            for probe_set in (self.agents, self.readers):
                if probe_set.created:
                    problems += self._run(pods.remove(self.cluster, probe_set))
        self._runner.close()
        return problems

    @property
    def _api(self) -> Cluster:
        if self.cluster is None:
            raise RuntimeError("not connected")
        return self.cluster

    # -- nodes ----------------------------------------------------------------------------
    def control_plane_nodes(self) -> frozenset[str]:
        """Nodes labelled as control plane, or whose InternalIP serves the ``kubernetes``
        Endpoints (managed and kubeadm clusters do not always label them)."""
        def serves_api(node: dict[str, Any]) -> bool:
            return any(a.get("type") == "InternalIP" and a.get("address") in self._api_ips
                       for a in node.get("status", {}).get("addresses") or [])
        return frozenset(n["metadata"]["name"] for n in self._node_objs
                         if serves_api(n) or any(k in (n["metadata"].get("labels") or {})
                                                 for k in CONTROL_PLANE_LABELS))

    def nodes(self) -> dict[str, str]:
        """Ready nodes and their podCIDR."""
        assert self.profile is not None
        return {n.name: n.pod_cidr for n in self.profile.ready_nodes}

    async def _pod_on(self, probe_set: pods.ProbeSet, node: str, writable: bool) -> Any:
        if node in probe_set.ready:
            return probe_set.ready[node]
        if node in probe_set.failed:
            raise RuntimeError(f"no node pod on {node}: {probe_set.failed[node].reason}")
        cluster = self._api
        if not self.readers.created and not self.agents.created:
            await pods.ensure_namespace(cluster, self.readers, True)
        spec = pods.probe_pod_spec(node=node, namespace=probe_set.namespace,
                                   image=self.options.image, run_id=self.options.run_id,
                                   node_level=True, writable=writable)
        name = spec["metadata"]["name"]
        await cluster.request("POST", "pods", namespace=probe_set.namespace, body=spec,
                              what=f"create pod {name}")
        probe_set.created.append(("pod", name))
        self.log.write(f"created {'writable node agent' if writable else 'node probe'} "
                       f"{probe_set.namespace}/{name} on {node}")
        await pods.wait_ready(cluster, probe_set, [spec], self.options.setup_timeout)
        if node not in probe_set.ready:
            failure = probe_set.failed.get(node)
            raise RuntimeError(f"node pod on {node} not ready: "
                               f"{failure.reason if failure else 'unknown'}")
        return probe_set.ready[node]

    def _exec(self, node: str, script: str, deadline: float, writable: bool
              ) -> tuple[int, str, str]:
        async def go() -> tuple[int, str, str]:
            target = await self._pod_on(self.agents if writable else self.readers, node,
                                        writable)
            attempt = await exec_once(target, ["sh", "-c", script], deadline)
            if attempt.exit_code is None:
                raise RuntimeError(f"exec on {node}: {attempt.error}")
            return attempt.exit_code, attempt.stdout, attempt.stderr
        return self._run(go())

    def node_read(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        """Run a read-only script through the node probe on ``node``."""
        return self._exec(node, script, deadline, writable=False)

    def node_exec(self, node: str, script: str, deadline: float) -> tuple[int, str, str]:
        """Run a changing script through the writable node agent on ``node``."""
        lines = script.strip().splitlines() or [""]
        self.log.write(f"exec node={node}: {lines[0]}{' ...' if len(lines) > 1 else ''}")
        code, out, err = self._exec(node, script, deadline, writable=True)
        self.log.write(f"exec node={node}: exit {code}" + (f": {err.strip()[-300:]}"
                                                          if code and err.strip() else ""))
        return code, out, err

    # -- API ------------------------------------------------------------------------------
    def list(self, kind: str, namespace: str | None = None,
             selector: str | None = None) -> list[dict[str, Any]]:
        """API objects of ``kind`` as dicts; none for a kind the API server does not serve
        (a lab has no StatefulSets)."""
        try:
            return self._run(self._api.list(kind, namespace=namespace, selector=selector))
        except ValueError as exc:  # kr8s: the kind is not in the server's discovery
            if str(exc) == f"Kind {kind} not found.":
                return []
            raise

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any],
              deadline: float) -> None:
        """Merge-patch ``kind`` ``namespace/name``."""
        self.log.write(f"patch {kind} {namespace}/{name}: {sorted(_keys(patch))}")

        async def go() -> None:
            obj = await _get(self._api, kind, namespace, name)
            undo = reverse_patch(obj.raw, patch)
            await bounded(obj.patch(patch), deadline, f"patch {kind} {namespace}/{name}")
            self.undos.append(Undo(self.step, None, "api-patch", f"{kind} {namespace}/{name}",
                                   json.dumps(undo), f"restore {sorted(_keys(patch))}"))
        self._run(go())

    def pod_log(self, namespace: str, name: str, previous: bool = False) -> str:
        """The last 200 lines of a pod's log ("" when the API has none)."""
        params = {"tailLines": "200", **({"previous": "true"} if previous else {})}
        try:
            resp = self._run(self._api.request("GET", f"pods/{name}/log", namespace=namespace,
                                               params=params, what=f"log of {name}"))
        except Exception:  # a log is evidence only
            return ""
        return str(resp.text)

    def evict_pod(self, namespace: str, name: str, deadline: float) -> str:
        """Evict a controller-owned pod (policy/v1 Eviction); while a PodDisruptionBudget
        answers 429, retry until ``deadline``, then raise :class:`EvictionBlocked`."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"namespace": namespace, "name": name}}

        async def go() -> str:
            obj = await _get(self._api, "pods", namespace, name)
            if not controller_owned(obj.raw):
                raise RuntimeError(f"pod {namespace}/{name} has no controller: not evicted")
            end, why = time.monotonic() + deadline, ""
            while True:
                try:
                    await self._api.request("POST", f"pods/{name}/eviction",
                                            namespace=namespace, body=body,
                                            what=f"evict pod {namespace}/{name}")
                    return f"evicted pod {namespace}/{name}"
                except Exception as exc:
                    if status_code(exc) != 429:
                        raise
                    why = str(exc)
                if time.monotonic() > end:
                    raise EvictionBlocked(f"pod {namespace}/{name} kept for {deadline:.0f}s: "
                                          f"{why[-200:]}")
                await asyncio.sleep(2.0)
        detail = self._run(go())
        self.undos.append(Undo(self.step, None, "none", f"pods {namespace}/{name}", "",
                               "an eviction is not undone: the controller made a new pod"))
        self.log.write(detail)
        return detail

    def event(self, kind: str, namespace: str | None, name: str, message: str) -> None:
        """A ``NetdoctorRemediation`` Event on the object (best effort: logged on failure)."""
        ns = namespace or "default"
        body = event_body(kind, namespace, name, message, self.options.run_id)
        try:
            self._run(self._api.request("POST", "events", namespace=ns, body=body,
                                        what="create event"))
        except Exception as exc:  # the audit trail is also in remediation.log
            self.log.write(f"event on {kind} {name} not recorded: {exc}")

    def delete(self, kind: str, namespace: str | None, name: str, deadline: float) -> None:
        """Delete one object (rollback of an object a repair created)."""
        async def go() -> None:
            plural, group = kind.split(".", 1) if "." in kind else (kind, "")
            version = f"{group}/v1" if group else "v1"
            base = "/apis" if group else "/api"
            try:
                await self._api.request("DELETE", f"{plural}/{name}", namespace=namespace,
                                        version=version, base=base,
                                        what=f"delete {kind} {name}")
            except Exception as exc:
                if status_code(exc) != 404:
                    raise
        self._run(bounded(go(), deadline, f"delete {kind} {name}"))

    def rollout_restart(self, kind: str, namespace: str, name: str, deadline: float) -> str:
        """Patch the template's restartedAt annotation and await the rollout."""
        plural = kind.lower() + "s"
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.patch(plural, namespace, name, {"spec": {"template": {"metadata": {
            "annotations": {RESTARTED_AT: now}}}}}, deadline)
        waited = self._run(bounded(self._await_rollout(plural, namespace, name), deadline,
                                   f"rollout of {kind} {namespace}/{name}"))
        detail = f"restarted {kind} {namespace}/{name}; rolled out in {waited:.1f}s"
        self.log.write(detail)
        return detail

    async def _await_rollout(self, plural: str, namespace: str, name: str) -> float:
        started = time.monotonic()
        while True:
            obj = await _get(self._api, plural, namespace, name)
            if rollout_done(_APPS[plural], obj.raw):
                return time.monotonic() - started
            await asyncio.sleep(POLL)

    def apply_manifest(self, path: str, deadline: float) -> str:
        """Create the manifest's missing objects (skipping kinds not served) and await its
        DaemonSets and Deployments."""
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
        detail = self._run(bounded(self._apply(docs), deadline, f"apply {path}"))
        self.log.write(f"apply {path}: {detail}")
        return detail

    async def _apply(self, docs: builtins.list[dict[str, Any]]) -> str:
        api = self._api.api
        served = {(r.get("version", ""), r["kind"]) for r in await bounded(
            api.async_api_resources(), self._api.timeout, "API discovery")}
        created: builtins.list[str] = []
        present: builtins.list[str] = []
        unserved: builtins.list[str] = []
        rollouts: builtins.list[tuple[str, str, str]] = []
        for doc in docs:
            ref = f"{doc['kind']} {_ref(doc)}"
            if (doc["apiVersion"], doc["kind"]) not in served:
                unserved.append(ref)
                continue
            obj = await k8s.object_from_spec(doc, api=api)
            if await bounded(obj.exists(), self._api.timeout, f"get {ref}"):
                present.append(ref)
            else:
                await bounded(obj.create(), self._api.timeout, f"create {ref}")
                created.append(ref)
                self.log.write(f"created {ref}")
                group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
                plural = obj.endpoint + (f".{group}" if group else "")
                self.undos.append(Undo(self.step, None, "api-delete",
                                       f"{plural} {_ref(doc)}", "", f"delete {ref}"))
            if doc["kind"] in ("DaemonSet", "Deployment"):
                rollouts.append((doc["kind"].lower() + "s", doc["metadata"]["namespace"],
                                 doc["metadata"]["name"]))
        for plural, ns, name in rollouts:
            await self._await_rollout(plural, ns, name)
        parts = [f"created {', '.join(created) or 'nothing'}"]
        if present:
            parts.append(f"already present: {', '.join(present)}")
        if unserved:
            parts.append(f"skipped (kind not served by this API server): {', '.join(unserved)}")
        return "; ".join(parts)


def _ref(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata", {})
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])


def _keys(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    # Patch paths for the log: never the values (a ConfigMap may hold anything).
    out: list[str] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out += _keys(value, path) if isinstance(value, Mapping) and value else [path]
    return out


async def _get(cluster: Cluster, kind: str, namespace: str, name: str) -> Any:
    classes: dict[str, Any] = {"pods": k8s.Pod, "configmaps": k8s.ConfigMap,
                               "deployments": k8s.Deployment, "daemonsets": k8s.DaemonSet,
                               "services": k8s.Service}
    try:
        return await bounded(classes[kind].get(name, namespace=namespace, api=cluster.api),
                             cluster.timeout, f"get {kind} {namespace}/{name}")
    except kr8s.NotFoundError:
        raise RuntimeError(f"{kind} {namespace}/{name} not found") from None
    except Exception as exc:
        if status_code(exc) == 404:
            raise RuntimeError(f"{kind} {namespace}/{name} not found") from None
        raise
