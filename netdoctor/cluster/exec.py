"""Run a command in a probe pod: our own deadline, bounded retries, every attempt recorded.

Only transport errors (exec channel broken, deadline) and inconclusive output are retried; a
command that ran and reported a result, success or failure, is an observation and is kept.

Example:
    >>> kubectl_exec("nd-1", "probe-w1", ("ping", "-c", "1", "10.244.1.5"))
    'kubectl exec -n nd-1 probe-w1 -- ping -c 1 10.244.1.5'
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

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
    """A pod to exec in: where it is and the client that reaches it."""

    namespace: str
    name: str
    node: str
    ip: str
    api: Any
    """The run's kr8s API client (its rate limit and credentials)."""
    container: str
    """The container commands run in."""


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


def asked_again(first: Measured[R], second: Measured[R]) -> Measured[R]:
    """``second``'s result, with the attempts of both: a measurement repeated after ``first``
    failed keeps the failure as evidence (and counts as retried)."""
    return Measured(second.result, first.attempts + second.attempts, second.command)


def kubectl_exec(namespace: str, pod: str, argv: Sequence[str]) -> str:
    """The copy-paste ``kubectl exec`` command for evidence."""
    return f"kubectl exec -n {namespace} {pod} -- {shlex.join(argv)}"


EXEC_PROTOCOL = "v4.channel.k8s.io"
STDOUT, STDERR, STATUS = 1, 2, 3


async def ws_exec(target: ExecTarget, argv: Sequence[str], timeout: float
                  ) -> tuple[int, bytes, bytes]:
    """``pods/exec`` over one websocket: (exit code, stdout, stderr).

    kr8s' ``Pod.async_exec`` first GETs the pod to check it is Ready, on every call; a probe
    pod is known to be running, and the API server refuses exec into a container that is
    not, so that round trip only doubled the API requests of every probe command.
    """
    params = {"command": list(argv), "container": target.container,
              "stdout": "true", "stderr": "true", "stdin": "false"}
    out, err = bytearray(), bytearray()
    async with target.api.open_websocket(version="v1", url=f"pods/{target.name}/exec",
                                         subprotocols=(EXEC_PROTOCOL,),
                                         namespace=target.namespace, params=params) as ws:
        while True:
            message = await ws.receive_bytes(timeout=timeout)
            channel, data = message[0], message[1:]
            if channel == STDOUT:
                out += data
            elif channel == STDERR:
                err += data
            elif channel == STATUS and data:
                status = json.loads(data.decode())
                if status.get("status") == "Success":
                    return 0, bytes(out), bytes(err)
                for cause in (status.get("details") or {}).get("causes") or []:
                    if cause.get("reason") == "ExitCode":
                        return int(cause["message"]), bytes(out), bytes(err)
                return 1, bytes(out), bytes(err)  # as kr8s: a failure without an exit code


async def exec_once(target: ExecTarget, argv: Sequence[str], deadline: float) -> Attempt:
    """One exec with a deadline; transport problems become an attempt without exit code."""
    started = time.monotonic()
    try:
        code, out, err = await asyncio.wait_for(
            ws_exec(target, argv, int(deadline) + 1), deadline)
    except TimeoutError:
        return Attempt(tuple(argv), None, duration=time.monotonic() - started,
                       error=f"no result within {deadline:g}s")
    except Exception as exc:  # kr8s/httpx/websocket errors: the command's result is unknown
        return Attempt(tuple(argv), None, duration=time.monotonic() - started,
                       error=f"{type(exc).__name__}: {exc}")
    return Attempt(tuple(argv), code, stdout=out.decode(errors="replace"),
                   stderr=err.decode(errors="replace"), duration=time.monotonic() - started)


async def measure(
    target: ExecTarget,
    argv: Sequence[str],
    parse: Callable[[Attempt], R],
    *,
    deadline: float,
    tries: int = 3,
    run: Callable[[ExecTarget, Sequence[str], float], Awaitable[Attempt]] = exec_once,
) -> Measured[R]:
    """Run ``argv`` until its output is conclusive, at most ``tries`` times.

    Args:
        target: The probe pod.
        argv: The command (its own timeouts should be below ``deadline``).
        parse: Turns an attempt into a result with a ``conclusive`` flag.
        deadline: Seconds one attempt may take, exec included.
        tries: Attempts at most (bounded: never loops on a broken API).
        run: How one attempt is executed (default: its own exec; see :class:`Batcher`).
    """
    attempts: list[Attempt] = []

    async def once() -> R:
        attempt = await run(target, argv, deadline)
        attempts.append(attempt)
        return parse(attempt)

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_result(lambda r: not r.conclusive),
        stop=tenacity.stop_after_attempt(tries),
        wait=lambda state: _pause(attempts, state.attempt_number),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=False,
    )
    result: R = await retrying(once)
    return Measured(result, tuple(attempts), kubectl_exec(target.namespace, target.name, argv))


def _pause(attempts: Sequence[Attempt], number: int) -> float:
    """Seconds before the next try: short after output that was not understood, longer and
    growing after a transport error (an API server restarting needs a moment)."""
    if attempts and attempts[-1].transport_error:
        return float(min(2 ** (number - 1), 4))
    return 0.2


# -- batching: many commands for one pod, one exec ----------------------------------------
MARK = "@@netdoctor"
BATCH_OVERHEAD = 900
"""URL-encoded characters of a batch script without its commands (see :func:`batch_script`)."""


def batch_script(commands: Sequence[Sequence[str]]) -> str:
    """A POSIX shell script running ``commands`` side by side, then printing each one's
    stdout, stderr and exit code between marker lines (see :func:`split_batch`).

    Each command costs one process: it is started in the background straight from the shell
    (no subshell), its exit code is collected with ``wait PID``, the marker lines are written
    by shell builtins and one ``cat`` prints everything in order. Process start-up, not the
    probes themselves, is what a batch of short probes mostly spends its CPU on.

    Example:
        >>> print(batch_script([("echo", "hi")]).splitlines()[2])
        r 0 echo hi
    """
    lines = [
        # tmpfs when the pod has one: a file on the node's disk costs an inode allocation,
        # which on a busy ext4 costs more CPU than the probe it holds the output of.
        'd=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d) || exit 97',
        # r INDEX ARGV...: markers first (builtins), then the command in the background.
        f"r() {{ printf '{MARK} out %s\\n' \"$1\" >\"$d/$1.a\"; "
        f"printf '\\n{MARK} err %s\\n' \"$1\" >\"$d/$1.b\"; "
        'i=$1; shift; "$@" >"$d/$i.o" 2>"$d/$i.e" </dev/null & P="$P $!"; }',
    ]
    lines += [f"r {i} {shlex.join(argv)}" for i, argv in enumerate(commands)]
    lines.append('i=0; f=; for p in $P; do wait "$p"; '
                 f"printf '\\n{MARK} rc %s %s\\n' \"$i\" \"$?\" >\"$d/$i.c\"; "
                 'f="$f $d/$i.a $d/$i.o $d/$i.b $d/$i.e $d/$i.c"; i=$((i+1)); done')
    lines.append("cat $f")
    lines.append('rm -rf "$d"')
    return "\n".join(lines)


def split_batch(stdout: str, count: int) -> list[tuple[int, str, str]] | None:
    """(exit code, stdout, stderr) per command of a :func:`batch_script` run; ``None`` when
    the output is incomplete (then every command is run on its own)."""
    out: dict[int, dict[str, str]] = {}
    current: tuple[int, str] | None = None
    buf: list[str] = []

    def close() -> None:
        if current is not None:
            # cat printed the text, then 'echo' one newline: joining the lines gives it back.
            out.setdefault(current[0], {})[current[1]] = "\n".join(buf)
    for line in stdout.split("\n"):
        if line.startswith(f"{MARK} "):
            close()
            parts = line.split()
            if len(parts) < 3 or not parts[2].isdigit():
                return None
            kind, idx = parts[1], int(parts[2])
            if kind == "rc":
                rc = parts[3] if len(parts) > 3 else ""
                out.setdefault(idx, {})["rc"] = rc
                current, buf = None, []
            else:
                current, buf = (idx, kind), []
        elif current is not None:
            buf.append(line)
    close()
    results = []
    for i in range(count):
        entry = out.get(i, {})
        if not entry.get("rc", "").isdigit():
            return None
        results.append((int(entry["rc"]), entry.get("out", ""), entry.get("err", "")))
    return results


def encoded_size(argv: Sequence[str]) -> int:
    """Characters ``argv`` adds to a batch's exec URL (the script travels URL-encoded in the
    ``command`` query parameters)."""
    return len(quote(shlex.join(argv), safe="")) + 16


class Batcher:
    """Coalesces commands for the same pod, issued within ``window`` seconds, into one exec.

    An O(nodes^2) path matrix then costs O(nodes) execs; commands still run side by side
    inside the pod, so each keeps its own timeout. A batch is as large as fits in
    ``max_size`` URL-encoded characters (the command is part of the exec request's URL;
    8 KiB request lines are a common limit of API servers and proxies in front of them).
    A batch whose output cannot be split (transport error, truncated output) falls back
    to one exec per command.
    """

    def __init__(self, limit: asyncio.Semaphore, window: float = 0.02, max_size: int = 6000):
        self._limit, self._window, self._max = limit, window, max_size
        self._pending: dict[tuple[str, str], list[tuple[tuple[str, ...], float,
                                                        asyncio.Future[Attempt]]]] = {}
        self._size: dict[tuple[str, str], int] = {}

    async def exec(self, target: ExecTarget, argv: Sequence[str], deadline: float) -> Attempt:
        """Run ``argv`` in ``target`` (possibly together with others); one attempt."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Attempt] = loop.create_future()
        key = (target.namespace, target.name)
        size = encoded_size(argv)
        if key in self._pending and self._size[key] + size > self._max:
            self._start(target, key)  # full: this command opens the next batch
        batch = self._pending.setdefault(key, [])
        batch.append((tuple(argv), deadline, fut))
        self._size[key] = self._size.get(key, BATCH_OVERHEAD) + size
        if len(batch) == 1:
            loop.call_later(self._window, self._start, target, key, batch)
        return await fut

    def _start(self, target: ExecTarget, key: tuple[str, str],
               which: list[Any] | None = None) -> None:
        if which is not None and self._pending.get(key) is not which:
            return  # the window's batch was started early, when it filled up
        batch = self._pending.pop(key, None)
        self._size.pop(key, None)
        if batch:
            task = asyncio.ensure_future(self._run(target, batch))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _run(self, target: ExecTarget,
                   batch: list[tuple[tuple[str, ...], float, asyncio.Future[Attempt]]]) -> None:
        try:
            if len(batch) == 1:
                argv, deadline, fut = batch[0]
                async with self._limit:
                    attempt = await exec_once(target, argv, deadline)
                if not fut.done():
                    fut.set_result(attempt)
                return
            script = batch_script([argv for argv, _, _ in batch])
            deadline = max(d for _, d, _ in batch) + 2
            async with self._limit:
                whole = await exec_once(target, ("sh", "-c", script), deadline)
            parts = split_batch(whole.stdout, len(batch)) if whole.exit_code == 0 else None
            if parts is None:
                singles = await asyncio.gather(*(exec_once(target, argv, d)
                                                 for argv, d, _ in batch))
                for (_, _, fut), attempt in zip(batch, singles, strict=True):
                    if not fut.done():
                        fut.set_result(attempt)
                return
            for (argv, _, fut), (rc, out, err) in zip(batch, parts, strict=True):
                if not fut.done():
                    fut.set_result(Attempt(argv, rc, stdout=out, stderr=err,
                                           duration=whole.duration))
        except BaseException as exc:
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            raise
