"""The kubelet side of ``pods/exec`` and ``pods/log`` for the API server."""

from __future__ import annotations

import asyncio

from netdoctor.lab.api.store import ApiError, Obj
from netdoctor.lab.kubelet import Kubelet
from netdoctor.lab.kubelet.pod import PodWorker
from netdoctor.lab.kubelet.status import ContainerState


class LabRuntime:
    """Runs exec commands inside running containers and reads container logs."""

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet

    def _find(self, pod: Obj, container: str) -> tuple[PodWorker, ContainerState]:
        name = pod["metadata"]["name"]
        worker = self.kubelet.workers.get(pod["metadata"]["uid"])
        if worker is None:
            raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
        state = worker.states.get(container)
        if state is None:
            raise ApiError(
                400, "BadRequest", f"container {container} is not valid for pod {name}"
            )
        return worker, state

    async def exec(
        self, pod: Obj, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> asyncio.subprocess.Process:
        """Start ``command`` in the container; the caller pumps its pipes.

        Raises:
            ApiError: 400 when the container is not running.
        """
        worker, state = self._find(pod, container)
        if not state.running:
            detail: dict[str, str] = next(iter(state.state.values()), {})
            reason = detail.get("reason", "ContainerCreating")
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{worker.name}" is waiting to start: {reason}',
            )
        argv, env = worker.exec_argv(worker.spec_of(container), pod, command)
        return await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )

    def logs(self, pod: Obj, container: str, *, previous: bool, tail_lines: int | None) -> str:
        """The current (or previous) attempt's output of a container.

        While a container waits to restart, its "current" log is the attempt that
        just ended, as with a real kubelet.

        Raises:
            ApiError: 400 when there is no such log.
        """
        worker, state = self._find(pod, container)
        attempt = state.restart_count - (1 if previous else 0)
        if previous and "waiting" in state.state and state.last_state:
            attempt = state.restart_count
        path = worker.log_file(container, attempt)
        if attempt < 0 or not path.exists():
            if previous:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'previous terminated container "{container}" in pod "{worker.name}" '
                    "not found",
                )
            return ""
        lines = path.read_text(errors="replace").splitlines(keepends=True)
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        return "".join(lines)
