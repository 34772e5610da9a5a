"""Running a container's command as a real process inside its pod's namespace.

The image decides the tools on PATH: busybox-style images get busybox applets,
others the node's iputils, bind9-dnsutils and curl. ``ip netns exec`` gives the
process the pod's network namespace and its own resolv.conf; hostPath and
ConfigMap volumes are bind-mounted in a private mount namespace. A command exec'd into a
running container joins that container's namespaces with one ``nsenter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netdoctor.lab.containers import LabInfo, NodeInfo, is_busybox

Obj = dict[str, Any]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A container with neither command nor args runs like the pause image: it waits.
IDLE_COMMAND = ["sleep", "infinity"]


@dataclass(frozen=True)
class Mount:
    """A bind mount of a lab path onto a container path."""

    source: Path
    target: str
    read_only: bool = False


def image_path(lab: LabInfo, image: str) -> str:
    """PATH for a container of ``image`` (busybox applets for busybox images)."""
    if not is_busybox(image):
        return DEFAULT_PATH
    bindir = lab.state_dir / "images/busybox/bin"
    if not (bindir / "sh").exists():
        bindir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["busybox", "--install", "-s", str(bindir)], check=True, timeout=20)
    return str(bindir)


def _field_ref(pod: Obj, path: str, node: NodeInfo) -> str:
    values = {
        "metadata.name": pod["metadata"]["name"],
        "metadata.namespace": pod["metadata"].get("namespace", ""),
        "metadata.uid": pod["metadata"].get("uid", ""),
        "spec.nodeName": node.name,
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.hostIP": node.internal_ip,
        "status.podIP": pod.get("status", {}).get("podIP", ""),
    }
    return str(values.get(path, ""))


def container_env(pod: Obj, container: Obj, node: NodeInfo, lab: LabInfo) -> dict[str, str]:
    """The environment a container starts with."""
    env = {
        "PATH": image_path(lab, container["image"]),
        "HOME": "/root",
        "HOSTNAME": pod["metadata"]["name"],
        "KUBERNETES_SERVICE_HOST": lab.api_service_ip,
        "KUBERNETES_SERVICE_PORT": "443",
    }
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif "fieldRef" in (var.get("valueFrom") or {}):
            env[var["name"]] = _field_ref(pod, var["valueFrom"]["fieldRef"]["fieldPath"], node)
    return env


def mounts_for(pod: Obj, container: Obj, node: NodeInfo, volume_dir: Path) -> list[Mount]:
    """Bind mounts for the container's hostPath, ConfigMap and emptyDir volumes."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    out: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        vol = volumes.get(vm["name"], {})
        if "hostPath" in vol:
            src = node.root / vol["hostPath"]["path"].lstrip("/")
            src.mkdir(parents=True, exist_ok=True) if not src.exists() else None
        elif "emptyDir" in vol or "configMap" in vol:
            src = volume_dir / vm["name"]
            src.mkdir(parents=True, exist_ok=True)
        else:
            continue
        out.append(Mount(src, vm["mountPath"], bool(vm.get("readOnly"))))
    return out


def launch_argv(
    netns: str, env: dict[str, str], argv: list[str], mounts: list[Mount], mountpoints_file: Path,
    workdir: str | None = None,
) -> list[str]:
    """The host command that runs ``argv`` as the container would (in ``workdir``)."""
    base = ["ip", "netns", "exec", netns]
    if mounts:
        steps = []
        for m in mounts:
            _ensure_target(m.target, mountpoints_file)
            opts = "--bind" if not m.read_only else "--bind -o ro"
            steps.append(f"mount {opts} {shlex.quote(str(m.source))} {shlex.quote(m.target)}")
        script = " && ".join([*steps, 'exec "$@"'])
        base += ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh"]
    chdir = ["-C", workdir] if workdir else []
    return [*base, "env", "-i", *chdir, *(f"{k}={v}" for k, v in env.items()), *argv]


def join_argv(pid: int, argv: list[str], workdir: str | None = None) -> list[str]:
    """The host command that runs ``argv`` in the namespaces of the running container process
    ``pid`` (in ``workdir``), as a runtime's exec joins a container instead of building its
    namespaces again; the environment is the caller's to pass."""
    nsenter = shutil.which("nsenter") or "nsenter"  # looked up here: PATH becomes the image's
    return [nsenter, f"--target={pid}", "--mount", "--net",
            *([f"--wd={workdir}"] if workdir else []), "--", *argv]


def runs(pid: int, argv: list[str]) -> bool:
    """Whether process ``pid`` is running ``argv`` itself: the launch chain (``ip netns exec``,
    ``unshare``, ``env``) has exec'd into the container's command, so the namespaces it is in
    are the container's final ones."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return raw.split(b"\0")[:-1] == [a.encode() for a in argv]


def _ensure_target(target: str, mountpoints_file: Path) -> None:
    # A mount target must exist on the host; remember those the lab made so that
    # 'lab down' removes them again.
    path = Path(target)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    if missing:
        missing[0].mkdir(parents=True, exist_ok=True)
        with mountpoints_file.open("a") as f:
            for p in missing:
                f.write(f"{p}\n")


def command_of(container: Obj) -> list[str]:
    """The argv a container runs (command + args, or the idle default)."""
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    return argv or list(IDLE_COMMAND)


async def spawn(argv: list[str], log_file: Path) -> asyncio.subprocess.Process:
    """Start a container process in its own session, output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )


async def terminate(proc: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds; the exit code."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    code = proc.returncode if proc.returncode is not None else 137
    return 128 - code if code < 0 else code


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
