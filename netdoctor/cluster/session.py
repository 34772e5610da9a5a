"""The sync facade pytest needs: one event loop per run, the client, the profile and probes.

Session fixtures call :meth:`ClusterSession.run`; everything below it stays async. Cleanup
(:meth:`ClusterSession.close`) deletes what the run created, newest first; it runs from the
fixture finalizer and again, harmlessly, from ``pytest_unconfigure`` after an interrupt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from netdoctor.cluster import leases, permissions
from netdoctor.cluster import probes as pods
from netdoctor.cluster.client import (
    AccessProblem,
    Cluster,
    DeadlineExceeded,
    Target,
    connect,
    forbidden_or_none,
)
from netdoctor.cluster.images import Placement
from netdoctor.cluster.leftovers import Leftover, find_leftovers
from netdoctor.cluster.profile import ClusterProfile, read_profile
from netdoctor.cluster.ratelimit import DEFAULT_BURST, DEFAULT_QPS, TokenBucket

T = TypeVar("T")


@dataclass(frozen=True)
class SessionOptions:
    """What the session needs from the settings."""

    kubeconfig: Path | None
    context: str | None
    run_id: str
    namespace: str
    own_namespace: bool
    probe_image: str
    setup_timeout: float
    placement: Placement = field(default_factory=Placement)
    """Node selection and image pull secrets of the probe pods."""
    pod_security: str = "privileged"
    """Pod Security level of the run's own namespace (baseline without node probes)."""
    mode: permissions.Mode = "validate"
    """Whose permissions to check before starting (``deploy/rbac/<mode>.yaml``)."""
    api_qps: float = DEFAULT_QPS
    """Requests per second the run may send to the API on average."""
    api_burst: int = DEFAULT_BURST
    """Requests the run may send at once above ``api_qps``."""


class ClusterSession:
    """One run's connection to the cluster and the probes it created."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self._runner = asyncio.Runner()
        self.cluster: Cluster | None = None
        self.profile: ClusterProfile | None = None
        self.probes = pods.ProbeSet(options.namespace, options.run_id,
                                    placement=options.placement,
                                    pod_security=options.pod_security)
        self.leftovers: list[Leftover] = []
        self.closed = False
        self.heartbeat: leases.Heartbeat | None = None
        """Renews the run's Lease (:mod:`netdoctor.cluster.leases`) from connect to close."""
        self._namespace: asyncio.Task[None] | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session's loop (Ctrl-C cancels it and raises KeyboardInterrupt)."""
        # The result is handed over outside the Runner's task: when the Runner puts Python's
        # SIGINT handler back it reads the current one with signal.getsignal(), which formats
        # a ValueError with the repr of its own handler, and that holds the finished task, whose
        # repr formats its result. A whole measurement pass as that result cost about a
        # second of CPU per validate run on 100 nodes.
        result: list[T] = []

        async def keep() -> None:
            result.append(await coro)

        self._runner.run(keep())
        return result[0]

    def connect(self) -> ClusterProfile:
        """Connect, take the run's Lease, read the profile and find leftovers of dead runs.

        Raises:
            AccessProblem: One line saying why the cluster cannot be used.
        """
        try:
            self.cluster = self.run(connect(
                Target(self.options.kubeconfig, self.options.context),
                bucket=TokenBucket(self.options.api_qps, self.options.api_burst)))
        except AccessProblem as exc:
            if str(exc).startswith("forbidden:"):
                raise AccessProblem(f"{exc}. {permissions.hint(self.options.mode)}") from None
            raise
        cluster = self.cluster
        try:
            lacking = self.run(permissions.missing(cluster, self.options.mode,
                                                   self.options.namespace,
                                                   self.options.own_namespace))
        except DeadlineExceeded as exc:
            raise AccessProblem(f"the API server stopped answering: {exc}") from None
        if lacking:
            raise AccessProblem(permissions.message(self.options.mode, lacking))
        if not self.options.own_namespace:
            self._check_admission(cluster)
        self._hold_lease(cluster)
        try:
            self.profile = self.run(read_profile(cluster))
            self.leftovers = self.run(find_leftovers(cluster, self.options.run_id))
        except DeadlineExceeded as exc:
            raise AccessProblem(f"the API server stopped answering: {exc}") from None
        except Exception as exc:
            problem = self.run(forbidden_or_none(_reraise(exc), "read the cluster"))
            raise AccessProblem(f"{problem}. {permissions.hint(self.options.mode)}" if problem
                                else f"reading the cluster failed: {exc}") from None
        return self.profile

    def _hold_lease(self, cluster: Cluster) -> None:
        """Take the run's Lease before creating anything, and keep renewing it."""
        name = leases.run_lease_name(self.options.run_id)
        try:
            self.run(leases.acquire(cluster, name, self.options.run_id, "run"))
        except Exception as exc:  # the run works without it; other runs cannot see it alive
            cluster.problems.append(
                f"could not create Lease {leases.LEASE_NAMESPACE}/{name} "
                f"({type(exc).__name__}: {exc}): a concurrent --cleanup-only may take this "
                "run's objects for leftovers")
            return
        self.heartbeat = leases.Heartbeat(Target(self.options.kubeconfig, self.options.context),
                                          self.options.run_id)
        self.heartbeat.hold(name, "run")

    def _check_admission(self, cluster: Cluster) -> None:
        """In a namespace the run did not make, ask (dry run, one pod at a time) whether its
        pods will be admitted, so that a policy refusal is one clear line up front."""
        opts = self.options
        kinds = [False, True] if opts.pod_security == "privileged" else [False]
        for node_level in kinds:
            spec = pods.probe_pod_spec(node="admission-check", namespace=opts.namespace,
                                       image=opts.probe_image, run_id=opts.run_id,
                                       node_level=node_level, placement=opts.placement)
            problem = self.run(forbidden_or_none(
                pods.admitted(cluster, opts.namespace, spec),
                f"admit {'node probes' if node_level else 'probe pods'} in namespace "
                f"{opts.namespace}"))
            if problem:
                raise AccessProblem(self._explain(problem))

    def _explain(self, problem: str) -> str:
        opts = self.options
        if problem.startswith("policy rejection"):
            return (f"{problem}. The probe pods need Pod Security level baseline and node "
                    "probes privileged; netdoctor labels its own namespace "
                    f"pod-security.kubernetes.io/enforce={opts.pod_security}. With "
                    "--probe-namespace, that namespace must allow it; --no-node-probes needs "
                    "only baseline")
        return f"{problem}. {permissions.hint(opts.mode)}"

    async def ensure_namespace(self) -> None:
        """Create the run's namespace once, for whichever pass needs it first (the diagnose
        probes, the node probes, the echo workload); every caller waits for that creation
        and sees its error.

        Raises:
            kr8s.ServerError: the API server refused the namespace.
        """
        assert self.cluster is not None
        if self._namespace is None:
            self._namespace = asyncio.ensure_future(pods.ensure_namespace(
                self.cluster, self.probes, self.options.own_namespace))
        await asyncio.shield(self._namespace)

    async def start_probes(self) -> pods.ProbeSet:
        """Create the namespace and probes and wait for them (call once per run).

        Raises:
            AccessProblem: RBAC forbids creating the probe namespace or pods.
        """
        assert self.cluster is not None
        assert self.profile is not None
        cluster, profile, opts = self.cluster, self.profile, self.options

        async def start() -> None:
            await self.ensure_namespace()
            created = await pods.create_probes(cluster, self.probes, profile.nodes,
                                               opts.probe_image)
            await pods.wait_ready(cluster, self.probes, created, opts.setup_timeout)

        problem = await forbidden_or_none(start(), "create the probe namespace and pods")
        if problem:
            raise AccessProblem(self._explain(problem))
        return self.probes

    def close(self) -> list[str]:
        """Remove the run's objects (idempotent); return what could not be removed."""
        if self.closed:
            return []
        self.closed = True
        problems: list[str] = []
        if self.cluster is not None and self.probes.created:
            problems = self.run(pods.remove(self.cluster, self.probes))
        if self.heartbeat is not None and self.cluster is not None:  # last: after the objects
            self.heartbeat.stop()
            name = leases.run_lease_name(self.options.run_id)
            try:
                self.run(leases.release(self.cluster, name))
            except Exception as exc:  # it expires by itself
                problems.append(f"Lease {leases.LEASE_NAMESPACE}/{name}: {exc}; it expires "
                                f"within {leases.DURATION}s")
        self._runner.close()
        return problems


async def _reraise(exc: BaseException) -> None:
    raise exc
