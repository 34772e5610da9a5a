"""The lab's command runner: a cancel stays a cancel, however the command ended."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from netdoctor.lab import sh
from netdoctor.lab.api.store import Store
from netdoctor.lab.containers import ContainerContext, LabInfo, NodeInfo, builtin
from netdoctor.lab.kubelet import process
from netdoctor.lab.nodeagent import NodeAgents
from netdoctor.lab.profiles import NodeTask


def test_cancel_after_the_command_exited_is_still_a_cancel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The command finishes and is reaped, then the cancel arrives: killing it then finds
    # no process, and that must not turn the cancellation into ProcessLookupError.
    real_wait_for = asyncio.wait_for

    async def finished_then_cancelled(aw: Awaitable[Any], timeout: float | None) -> Any:
        await real_wait_for(aw, timeout)
        raise asyncio.CancelledError

    monkeypatch.setattr(asyncio, "wait_for", finished_then_cancelled)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(sh.arun(["true"]))


def test_runs_is_the_process_own_command() -> None:
    # An exec joins a container process only once its launch chain has exec'd into the
    # container's command: before that its namespaces are not the container's yet.
    proc = subprocess.Popen(["sleep", "30"])
    try:
        # Popen may return while the kernel is still inside execve (the child is "python"
        # with no cmdline): runs() says no until the command is in place.
        deadline = time.monotonic() + 5
        while not process.runs(proc.pid, ["sleep", "30"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.runs(proc.pid, ["sleep", "30"])
        assert not process.runs(proc.pid, ["sleep", "31"])
        assert not process.runs(proc.pid, ["env", "-i", "sleep", "30"])
    finally:
        proc.kill()
        proc.wait()
    assert not process.runs(proc.pid, ["sleep", "30"])  # gone


def test_join_argv_enters_mount_and_network_of_the_process() -> None:
    argv = process.join_argv(42, ["ping", "-c", "1", "10.0.0.1"], "/work")
    assert argv[0].endswith("nsenter")
    assert argv[1:] == ["--target=42", "--mount", "--net", "--wd=/work", "--",
                        "ping", "-c", "1", "10.0.0.1"]
    assert "--wd" not in " ".join(process.join_argv(42, ["true"]))


def test_deadline_kills_a_running_command() -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(sh.arun(["sleep", "5"], timeout=0.2))


class _FailsWhenStopped:
    """A component whose shutdown itself fails (a command error while cancelled)."""

    runs = 0

    async def run(self, ctx: ContainerContext) -> int:
        _FailsWhenStopped.runs += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup command failed") from None
        return 0


builtin(r"^selftest/fails-when-stopped:")(_FailsWhenStopped)


def test_a_component_failing_while_stopped_is_stopped_not_restarted(tmp_path: Path) -> None:
    node = NodeInfo("n1", "netns-n1", "192.0.2.10", "10.244.1.0/24", tmp_path, 1)
    lab = LabInfo(prefix="t", nodes={"n1": node}, router_netns="r", underlay_bridge="b")

    async def scenario() -> bool:
        agents = NodeAgents(Store(), lab, (NodeTask("comp", "selftest/fails-when-stopped:1"),))
        agents.start("comp")
        await asyncio.sleep(0.05)
        await agents.stop("comp")
        return agents.is_running("comp", "n1")

    assert asyncio.run(scenario()) is False
    assert _FailsWhenStopped.runs == 1
    log = (tmp_path / "var/log/k3s.log").read_text() if (tmp_path / "var/log/k3s.log").exists() \
        else ""
    assert "restarting" not in log, log


PIDFD_RUN = """
import asyncio, sys, threading
from netdoctor.lab import sh

async def main():
    procs = [await asyncio.create_subprocess_exec("sh", "-c", f"sleep 0.3; exit {i}")
             for i in range(20)]
    threads = threading.active_count()  # while every child still runs
    return [await p.wait() for p in procs], threads

chosen = sh.use_pidfd_watcher()
codes, threads = asyncio.run(main())
print(chosen, codes == list(range(20)), threads)
"""


def test_children_are_reaped_without_a_thread_each() -> None:
    # In a fresh interpreter: the watcher is process-wide.
    done = subprocess.run([sys.executable, "-c", PIDFD_RUN], capture_output=True, text=True,
                          timeout=60, check=True, cwd=Path(__file__).resolve().parents[2])
    chosen, codes_right, threads = done.stdout.split()
    assert codes_right == "True"  # every exit code reached its waiter
    if chosen == "True":
        assert threads == "1"  # no waiter thread per child
    else:
        assert sys.version_info >= (3, 12)  # 3.12 picks pidfds itself
