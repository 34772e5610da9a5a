"""The kubelet side of ``pods/exec`` and ``pods/log`` for the API server."""

from __future__ import annotations

import asyncio

from netdoctor.lab.api.store import ApiError, Obj
from netdoctor.lab.kubelet import Kubelet


class LabRuntime:
    """Runs exec commands inside running containers and reads container logs."""

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet

    def _worker_state(self, pod: Obj, container: str) -> tuple[object, object]:
        worker = self.kubelet.workers.get(pod["metadata"]["uid"])
        if worker is None:
            raise ApiError(400, "BadRequest",
                           f'pod {pod["metadata"]["name"]} does not have a host assigned')
        state = worker.states.get(container)
        if state is None:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod "
                           f'{pod["metadata"]["name"]}')
        return worker, state

    async def exec(self, pod: Obj, container: str, command: list[str], *, stdin: bool,
                   tty: bool) -> asyncio.subprocess.Process:
        """Start ``command`` in the container; the caller pumps its pipes.

        Raises:
            ApiError: 400 when the container is not running.
        """
        from netdoctor.lab.kubelet.pod import PodWorker
        from netdoctor.lab.kubelet.status import ContainerState

        worker, state = self._worker_state(pod, container)
        assert isinstance(worker, PodWorker) and isinstance(state, ContainerState)
        if not state.running:
            reason = next(iter(state.state.values()), {}).get("reason", "ContainerCreating")
            raise ApiError(400, "BadRequest", f'container "{container}" in pod '
                           f'"{worker.name}" is waiting to start: {reason}')
        argv = worker.argv(worker.spec_of(container), pod, command)
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)

    def logs(self, pod: Obj, container: str, *, previous: bool, tail_lines: int | None) -> str:
        """The current (or previous) attempt's output of a container.

        Raises:
            ApiError: 400 when there is no such log.
        """
        from netdoctor.lab.kubelet.pod import PodWorker
        from netdoctor.lab.kubelet.status import ContainerState

        worker, state = self._worker_state(pod, container)
        assert isinstance(worker, PodWorker) and isinstance(state, ContainerState)
        attempt = state.restart_count - (1 if previous else 0)
        if previous and "waiting" in state.state and state.last_state:
            attempt = state.restart_count
        path = worker.log_file(container, attempt)
        if attempt < 0 or not path.exists():
            if previous:
                raise ApiError(400, "BadRequest", f'previous terminated container "{container}" '
                               f'in pod "{worker.name}" not found')
            return ""
        lines = path.read_text(errors="replace").splitlines(keepends=True)
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        return "".join(lines)
