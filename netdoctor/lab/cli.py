"""``netdoctor lab ...``: start, stop, inspect and break the lab."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from netdoctor.lab import faults, profiles
from netdoctor.lab.api.apifaults import API_FAULTS
from netdoctor.lab.sh import missing_tools
from netdoctor.lab.state import CONTROL_SOCKET, LabState, default_state_dir, pid_alive, prefix_for

REQUIRED_TOOLS = (
    "ip",
    "bridge",
    "iptables-nft",
    "iptables-legacy",
    "iptables-nft-restore",
    "iptables-legacy-restore",
    "nft",
    "dnsmasq",
    "busybox",
    "ping",
    "dig",
    "curl",
    "unshare",
)
UP_DEADLINE = 150.0


class LabError(Exception):
    """A lab command failed; the message is the one line shown to the user."""


def add_parser(sub: Any) -> None:
    """Register ``lab`` and its subcommands on the top-level parser."""
    lab = sub.add_parser("lab", help="an emulated cluster over a real Linux pod network")
    cmds = lab.add_subparsers(dest="lab_command", required=True)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cmds.add_parser(name, help=help_)
        p.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            help="where the lab keeps its files (default: $NETDOCTOR_LAB_DIR or "
            f"{default_state_dir()})",
        )
        return p

    up = cmd("up", "build the lab and wait until its system pods reach the scenario's state")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--scenario", default="healthy", help=f"one of: {', '.join(faults.SCENARIOS)}")
    up.add_argument("--image", action="append", default=[], metavar="REF",
                    help="an image the lab's registry serves besides its own (repeatable); "
                    "pods with any other image fail to pull (ErrImagePull, ImagePullBackOff)")
    up.add_argument("--pod-security", default="privileged",
                    choices=("privileged", "baseline", "restricted"),
                    help="Pod Security Admission level enforced in namespaces without a "
                    "pod-security.kubernetes.io/enforce label (default: privileged, as "
                    "Kubernetes' own default)")
    up.add_argument("--profile", default=profiles.DEFAULT,
                    help="the cluster shape to play (see 'lab profile list'; default "
                    f"{profiles.DEFAULT})")
    up.add_argument("--dns-replicas", type=int, default=None, metavar="N",
                    help="replicas of the profile's DNS Deployment, each on its own node "
                    "(default: 1, or what the scenario needs)")
    cmd("down", "remove everything the lab made (idempotent)")
    st = cmd("status", "show nodes, system pods and active faults")
    st.add_argument("--json", action="store_true")
    ex = cmd("exec", "run a command in a node's network namespace (NODE_ROOT = its root)")
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    kc = cmd("kubeconfig", "write a kubeconfig for a ServiceAccount (a TokenRequest token)")
    kc.add_argument("--service-account", required=True, metavar="NS/NAME")
    kc.add_argument("--out", type=Path, required=True, metavar="PATH")
    prof = cmds.add_parser("profile", help="the cluster shapes the lab can play")
    prof.add_argument("action", choices=("list",))
    fault = cmd("fault", "list, inject or clear faults")
    fault.add_argument("action", choices=("list", "inject", "clear"))
    fault.add_argument("name", nargs="?")
    fault.add_argument("--node", default=None,
                       help="the node to break (a pair fault: the node holding the bad state; "
                       "default worker-1)")
    fault.add_argument("--peer", default=None,
                       help="for pair faults: the other node of the pair (default worker-2)")
    fault.add_argument("--seconds", type=float, default=None,
                       help="for api-* faults: clear the fault by itself after this many "
                            "seconds (default: until 'lab fault clear')")


def run(args: argparse.Namespace) -> int:
    """Dispatch a ``lab`` subcommand; errors become one line on stderr."""
    args.state_dir = (getattr(args, "state_dir", None) or default_state_dir()).resolve()
    if args.lab_command == "profile":
        return profile_cmd(args)
    handler = {"up": up, "down": down, "status": status, "exec": exec_in_node, "fault": fault_cmd,
               "kubeconfig": kubeconfig_cmd}[args.lab_command]
    try:
        return handler(args)
    except LabError as exc:
        print(f"netdoctor lab: {exc}", file=sys.stderr)
        return 1


def _running(state_dir: Path) -> LabState | None:
    state = LabState.load(state_dir)
    return state if state is not None and pid_alive(state.pid) else None


def preflight() -> None:
    """Refuse early, in one line per cause, when the machine cannot host a lab."""
    problems = missing_tools(REQUIRED_TOOLS)
    if os.geteuid() != 0:
        problems.insert(
            0,
            "the lab needs root (network namespaces, veth, iptables): run as root "
            "or inside 'unshare --user --map-root-user --net --mount'",
        )
    if problems:
        raise LabError("cannot build a lab here:\n  " + "\n  ".join(problems))


def up(args: argparse.Namespace) -> int:
    """``lab up``."""
    if args.scenario not in faults.SCENARIOS:
        raise LabError(f"unknown scenario {args.scenario!r}; known: {', '.join(faults.SCENARIOS)}")
    try:
        faults.scenario(args.scenario, profiles.get(args.profile))
    except KeyError as exc:
        raise LabError(str(exc.args[0])) from None
    except faults.FaultNotApplicable as exc:
        raise LabError(str(exc)) from None
    if not 1 <= args.workers <= 50:
        raise LabError("--workers must be between 1 and 50")
    args.dns_replicas = _dns_replicas(args)
    preflight()
    state_dir: Path = args.state_dir
    running = _running(state_dir)
    if running is not None:
        raise LabError(
            f"a lab is already running in {state_dir} (pid {running.pid}); "
            f"run 'netdoctor lab down --state-dir {state_dir}' first"
        )
    _teardown(state_dir)  # leftovers of a crashed lab
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "daemon.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netdoctor.lab.daemon",
                "--state-dir",
                str(state_dir),
                "--workers",
                str(args.workers),
                "--scenario",
                args.scenario,
                "--pod-security",
                args.pod_security,
                *(f"--image={image}" for image in args.image),
                "--profile",
                args.profile,
                "--dns-replicas",
                str(args.dns_replicas),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(state_dir, proc, log_path)
    except BaseException:
        _stop(proc.pid)
        _teardown(state_dir)
        raise
    state = LabState.load(state_dir)
    assert state is not None
    print(f"export KUBECONFIG={state.kubeconfig}")
    return 0


def _dns_replicas(args: argparse.Namespace) -> int:
    """The DNS Deployment's replicas: ``--dns-replicas``, else what the scenario needs where
    DNS is a Deployment (a DNS DaemonSet already runs on every node). Refuses a count the
    lab cannot place (one replica per node) or a profile whose DNS is not a Deployment."""
    from netdoctor.lab.daemon import lab_info, node_names
    from netdoctor.lab.profiles import scale_dns

    prof, need = profiles.get(args.profile), faults.SCENARIOS[args.scenario].dns_replicas

    def scale(n: int) -> None:
        scale_dns(prof.seed(lab_info(args.state_dir, args.workers, prof.name)), prof.dns, n)

    if args.dns_replicas is None:
        try:
            scale(need)
        except ValueError:
            return 1
        args.dns_replicas = need
    n, nodes = args.dns_replicas, len(node_names(args.workers))
    if not 1 <= n <= nodes:
        raise LabError(f"--dns-replicas must be between 1 and the number of nodes ({nodes}), "
                       f"got {n}")
    if n < need:
        raise LabError(f"scenario {args.scenario} needs --dns-replicas {need} or more")
    if n != 1:
        try:
            scale(n)
        except ValueError as exc:
            raise LabError(f"profile {prof.name}: {exc}") from None
    return int(n)


def _wait_ready(state_dir: Path, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    end = time.monotonic() + UP_DEADLINE
    while time.monotonic() < end:
        state = LabState.load(state_dir)
        if state is not None and state.phase == "ready":
            return
        if proc.poll() is not None or (state is not None and state.phase == "failed"):
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            reason = state.error if state is not None and state.error else "the lab process exited"
            raise LabError(f"lab failed to start: {reason}\n" + "\n".join(tail))
        time.sleep(0.1)
    raise LabError(f"lab did not become ready within {UP_DEADLINE:.0f}s (see {log_path})")


def _stop(pid: int, deadline: float = 30.0) -> None:
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + deadline
    while pid_alive(pid) and time.monotonic() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _teardown(state_dir: Path) -> None:
    from netdoctor.lab.net import topology

    asyncio.run(topology.destroy(prefix_for(state_dir), state_dir))
    marks = state_dir / "mountpoints"
    if marks.exists():
        for line in reversed(marks.read_text().splitlines()):
            with contextlib.suppress(OSError):
                Path(line).rmdir()
    if state_dir.exists():
        shutil.rmtree(state_dir, ignore_errors=True)


def down(args: argparse.Namespace) -> int:
    """``lab down``: stop the lab process, then remove whatever is left."""
    state = LabState.load(args.state_dir)
    if state is not None:
        _stop(state.pid)
    _teardown(args.state_dir)
    return 0


def _control(
    state_dir: Path, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    import aiohttp

    if _running(state_dir) is None:
        raise LabError(f"no lab is running in {state_dir} (start one with 'netdoctor lab up')")

    async def call() -> tuple[int, dict[str, Any]]:
        conn = aiohttp.UnixConnector(path=str(state_dir / CONTROL_SOCKET))
        timeout = aiohttp.ClientTimeout(total=60)
        async with (
            aiohttp.ClientSession(connector=conn, timeout=timeout) as session,
            session.request(method, f"http://lab{path}", json=body) as resp,
        ):
            return resp.status, await resp.json()

    code, data = asyncio.run(call())
    if code >= 400:
        raise LabError(str(data.get("error", data)))
    return data


def status(args: argparse.Namespace) -> int:
    """``lab status``."""
    data = _control(args.state_dir, "GET", "/status")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"lab {data['prefix']}: {data['phase']} (profile {data.get('profile')})")
    for name, node in data["nodes"].items():
        print(f"  node {name:<14} {node['ip']:<15} podCIDR {node['podCIDR']}")
    for p in data["pods"]:
        print(
            f"  pod  {p['namespace']}/{p['name']:<40} {p['node'] or '-':<14} {p['phase']:<9} "
            f"{'ready' if p['ready'] else 'not ready'}"
        )
    for f in data["faults"]:
        peer = f" peer {f['peer']}" if f.get("peer") else ""
        print(f"  fault {f['name']} {f['node'] or ''}{peer}".rstrip())
    return 0


def exec_in_node(args: argparse.Namespace) -> int:
    """``lab exec NODE -- CMD``: replaces this process, so stdio and exit code pass through."""
    state = _running(args.state_dir)
    if state is None:
        raise LabError(f"no lab is running in {args.state_dir}")
    from netdoctor.lab.daemon import lab_info

    info = lab_info(Path(state.state_dir), state.workers, state.profile)
    if args.node not in info.nodes:
        raise LabError(f"unknown node {args.node!r}; nodes: {', '.join(info.nodes)}")
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("no command given (lab exec NODE -- CMD...)")
    node = info.nodes[args.node]
    os.environ["NODE_ROOT"] = str(node.root)
    os.execvp("ip", ["ip", "netns", "exec", node.netns, *argv])
    return 127  # not reached


def profile_cmd(args: argparse.Namespace) -> int:
    """``lab profile list``: each profile's name and what it plays."""
    for name in profiles.names():
        default = " (default)" if name == profiles.DEFAULT else ""
        print(f"{name:<16} {profiles.get(name).summary}{default}")
    return 0


def fault_cmd(args: argparse.Namespace) -> int:
    """``lab fault list|inject|clear``."""
    if args.action == "list":
        every = set(profiles.names())
        for f in faults.describe():
            scope = f"node ({f['default_nodes']})" if f["node_scoped"] else "cluster"
            if f["pair"]:
                scope = f"pair ({f['default_nodes']}, {f['default_peer']})"
            where = "all profiles" if set(f["profiles"]) == every else \
                "profiles: " + ", ".join(f["profiles"])
            print(f"{f['name']:<24} {scope:<18} {f['summary']} [{where}]")
        return 0
    if not args.name:
        raise LabError(f"'lab fault {args.action}' needs a fault name; see 'lab fault list'")
    known = [f["name"] for f in faults.describe()]
    if args.name not in known:
        raise LabError(f"unknown fault {args.name!r}; known: {', '.join(known)}")
    if args.seconds is not None and (args.name not in API_FAULTS or args.seconds <= 0):
        raise LabError("--seconds takes a number > 0 and applies to api-* faults only")
    if args.peer is not None and not next(f["pair"] for f in faults.describe()
                                          if f["name"] == args.name):
        raise LabError(f"{args.name} is not a pair fault: --peer applies to pair faults only")
    method = "POST" if args.action == "inject" else "DELETE"
    body: dict[str, object] = {"node": args.node, "peer": args.peer}
    if args.seconds is not None:
        body["seconds"] = args.seconds
    data = _control(args.state_dir, method, f"/faults/{args.name}", body)
    nodes = ", ".join(n or "cluster" for n in data["nodes"])
    peer = f" (peer {data['peer']})" if data.get("peer") else ""
    print(f"{args.action}ed {args.name} on {nodes}{peer}")
    return 0


def kubeconfig_cmd(args: argparse.Namespace) -> int:
    """``lab kubeconfig --service-account NS/NAME --out PATH``."""
    from netdoctor.lab.access import AccessError, service_account_kubeconfig

    if _running(args.state_dir) is None:
        raise LabError(f"no lab is running in {args.state_dir}")
    ns, sep, name = args.service_account.partition("/")
    if not sep or not ns or not name:
        raise LabError(f"--service-account wants NAMESPACE/NAME, got {args.service_account!r}")
    try:
        path = service_account_kubeconfig(args.state_dir, ns, name, args.out.resolve())
    except AccessError as exc:
        raise LabError(str(exc)) from None
    print(f"export KUBECONFIG={path}")
    return 0
