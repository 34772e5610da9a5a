"""What the API server needs from the lab's container runtime: exec and logs."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

Obj = dict[str, Any]


class PodRuntime(Protocol):
    """The kubelet side of ``pods/exec`` and ``pods/log``.

    Implementations raise :class:`netdoctor.lab.api.store.ApiError` for anything a
    real kubelet refuses, e.g. ``ApiError(400, "BadRequest", 'container "x" in pod
    "y" is waiting to start: ContainerCreating')``; the server returns it as a
    ``Status`` before upgrading the connection.
    """

    async def exec(self, pod: Obj, container: str, command: list[str], *, stdin: bool,
                   tty: bool) -> asyncio.subprocess.Process:
        """Start ``command`` in ``container`` of ``pod``.

        Args:
            pod: The pod object as stored.
            container: A container name from the pod's spec.
            command: The argv to run.
            stdin: The client will send stdin; the process needs a stdin pipe.
            tty: The client asked for a terminal (stderr is then merged into stdout).

        Returns:
            The started process, with stdout and stderr pipes.
        """
        ...

    def logs(self, pod: Obj, container: str, *, previous: bool, tail_lines: int | None) -> str:
        """The log text of ``container``, or of its previous instance with ``previous``."""
        ...
