"""Run a command in a probe pod: our own deadline, bounded retries, every attempt recorded.

Only transport errors (exec channel broken, deadline) and inconclusive output are retried; a
command that ran and reported a result, success or failure, is an observation and is kept.

Example:
    >>> kubectl_exec("nd-1", "probe-w1", ("ping", "-c", "1", "10.244.1.5"))
    'kubectl exec -n nd-1 probe-w1 -- ping -c 1 10.244.1.5'
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import tenacity

from netdoctor.model import Attempt

R = TypeVar("R", bound="Conclusive")


class Conclusive(Protocol):
    """What the parsers return: anything with a ``conclusive`` flag."""

    @property
    def conclusive(self) -> bool:
        """The output was understood."""
        ...


@dataclass(frozen=True)
class ExecTarget:
    """A pod to exec in, with the image that decides its tools."""

    namespace: str
    name: str
    node: str
    ip: str
    obj: Any
    """The kr8s Pod object."""


@dataclass(frozen=True)
class Measured(Generic[R]):
    """A parsed result and the attempts behind it."""

    result: R
    attempts: tuple[Attempt, ...]
    command: str

    @property
    def retried(self) -> bool:
        """More than one attempt was needed."""
        return len(self.attempts) > 1


def kubectl_exec(namespace: str, pod: str, argv: Sequence[str]) -> str:
    """The copy-paste ``kubectl exec`` command for evidence."""
    return f"kubectl exec -n {namespace} {pod} -- {shlex.join(argv)}"


async def exec_once(target: ExecTarget, argv: Sequence[str], deadline: float) -> Attempt:
    """One exec with a deadline; transport problems become an attempt without exit code."""
    started = time.monotonic()
    try:
        done = await asyncio.wait_for(
            target.obj.async_exec(list(argv), check=False, timeout=int(deadline) + 1), deadline)
    except TimeoutError:
        return Attempt(tuple(argv), None, duration=time.monotonic() - started,
                       error=f"no result within {deadline:g}s")
    except Exception as exc:  # kr8s/httpx/websocket errors: the command's result is unknown
        return Attempt(tuple(argv), None, duration=time.monotonic() - started,
                       error=f"{type(exc).__name__}: {exc}")
    return Attempt(tuple(argv), int(done.returncode),
                   stdout=done.stdout.decode(errors="replace"),
                   stderr=done.stderr.decode(errors="replace"),
                   duration=time.monotonic() - started)


async def measure(
    target: ExecTarget,
    argv: Sequence[str],
    parse: Callable[[Attempt], R],
    *,
    deadline: float,
    tries: int = 3,
) -> Measured[R]:
    """Run ``argv`` until its output is conclusive, at most ``tries`` times.

    Args:
        target: The probe pod.
        argv: The command (its own timeouts should be below ``deadline``).
        parse: Turns an attempt into a result with a ``conclusive`` flag.
        deadline: Seconds one attempt may take, exec included.
        tries: Attempts at most (bounded: never loops on a broken API).
    """
    attempts: list[Attempt] = []

    async def once() -> R:
        attempt = await exec_once(target, argv, deadline)
        attempts.append(attempt)
        return parse(attempt)

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_result(lambda r: not r.conclusive),
        stop=tenacity.stop_after_attempt(tries),
        wait=tenacity.wait_fixed(0.2),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=False,
    )
    result: R = await retrying(once)
    return Measured(result, tuple(attempts), kubectl_exec(target.namespace, target.name, argv))
