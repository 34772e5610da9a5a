"""The lab's kube-proxy (iptables mode) as a built-in container.

It runs in its node's namespace (hostNetwork), reads its configuration from the
ConfigMap kube-system/kube-proxy like the kubeadm DaemonSet does, programs the
node's netfilter with real ``iptables-restore --noflush`` calls and serves
``/healthz`` on port 10256. When it is stopped its rules stay, as a dead
kube-proxy's do.

Container options (beyond the real kube-proxy's, which are ignored):
    ``--iptables-backend=nft|legacy`` argument, or the environment variable
    ``KUBE_PROXY_IPTABLES_BACKEND``: which iptables binaries program the node
    (default ``nft``). The argument wins over the variable.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from aiohttp import web

from netdoctor.lab.api.resources import resource
from netdoctor.lab.components._http import serve_http, stop_http
from netdoctor.lab.components.klog import klog
from netdoctor.lab.components.kube_proxy_rules import JUMPS, Jump, render
from netdoctor.lab.containers import ContainerContext, builtin
from netdoctor.lab.sh import CommandError, arun

__all__ = ["BACKEND_ENV", "KubeProxy", "ProxyConfig", "parse_config", "render", "resync"]

SERVICES = resource("", "services")
SLICES = resource("discovery.k8s.io", "endpointslices")
CONFIGMAPS = resource("", "configmaps")
BACKEND_ENV = "KUBE_PROXY_IPTABLES_BACKEND"
BACKEND_ARG = "--iptables-backend="
HEALTHZ_PORT = 10256
DEFAULT_SYNC_PERIOD = 30.0  # kube-proxy's iptables.syncPeriod when the config leaves it 0

# The event queues of the running kube-proxies, by the network namespace they program.
_RUNNING: dict[str, set[asyncio.Queue[tuple[str, Any, dict[str, Any]]]]] = {}


def resync(netns: str) -> int:
    """Make every kube-proxy programming ``netns`` sync now, as a Service change would.

    A fault that breaks the node's netfilter then shows at once instead of at the next
    periodic resync (30 s by default). Returns how many kube-proxies were woken.
    """
    queues = _RUNNING.get(netns, set())
    for q in queues:
        q.put_nowait(("RESYNC", None, {}))
    return len(queues)


_TOP_FIELDS = {
    "apiVersion", "kind", "featureGates", "bindAddress", "healthzBindAddress",
    "metricsBindAddress", "bindAddressHardFail", "enableProfiling", "showHiddenMetricsForVersion",
    "clusterCIDR", "hostnameOverride", "clientConnection", "iptables", "ipvs", "nftables",
    "winkernel", "mode", "portRange", "conntrack", "configSyncPeriod", "nodePortAddresses",
    "detectLocalMode", "detectLocal", "logging", "oomScoreAdj",
}
_CLIENT_FIELDS = {"kubeconfig", "acceptContentTypes", "contentType", "qps", "burst"}


class ConfigError(Exception):
    """kube-proxy refuses to start; the message is its ``err=`` value."""


@dataclass(frozen=True)
class ProxyConfig:
    """The parts of a KubeProxyConfiguration the lab's kube-proxy uses."""

    mode: str
    kubeconfig: str
    cluster_cidr: str
    sync_period: float = DEFAULT_SYNC_PERIOD  # seconds between full resyncs


def _strict_fields(obj: dict[str, Any], allowed: set[str], prefix: str = "") -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ConfigError("failed complete: strict decoding error: " + ", ".join(
            f'unknown field "{prefix}{k}"' for k in unknown))


def parse_config(text: str | None) -> ProxyConfig:
    """Validate a ``config.conf`` as kube-proxy 1.29 would, for the modes this lab has.

    Raises:
        ConfigError: the reason, worded like kube-proxy's ``err=`` value.
    """
    if text is None:
        raise ConfigError("failed complete: open /var/lib/kube-proxy/config.conf: "
                          "no such file or directory")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"failed complete: failed to decode: yaml: {exc}".replace("\n", " "))\
            from exc
    if not isinstance(data, dict):
        raise ConfigError("failed complete: failed to decode: Object 'Kind' is missing")
    _strict_fields(data, _TOP_FIELDS)
    client = data.get("clientConnection") or {}
    if not isinstance(client, dict):
        raise ConfigError("failed complete: strict decoding error: clientConnection: "
                          "expected an object")
    _strict_fields(client, _CLIENT_FIELDS, "clientConnection.")
    mode = str(data.get("mode") or "")
    if mode == "ipvs":
        raise ConfigError("can't use the IPVS proxier: IPVS proxier will not be used because "
                          "the following required kernel modules are not loaded: "
                          "[ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh]")
    if mode not in ("", "iptables"):
        raise ConfigError(f'invalid configuration: KubeProxyConfiguration.Mode: Invalid value: '
                          f'"{mode}": must be iptables,ipvs or blank (blank means the '
                          "best-available proxy [currently iptables])")
    kubeconfig = str(client.get("kubeconfig") or "")
    if not kubeconfig:
        raise ConfigError("invalid configuration: no configuration has been provided, "
                          "try setting KUBERNETES_MASTER environment variable")
    ipt = data.get("iptables") or {}
    period = _duration(ipt.get("syncPeriod")) if isinstance(ipt, dict) else 0.0
    return ProxyConfig(mode or "iptables", kubeconfig, str(data.get("clusterCIDR") or ""),
                       period or DEFAULT_SYNC_PERIOD)


def config_from_flags(argv: list[str]) -> ProxyConfig | None:
    """The configuration of a kube-proxy started with flags and no ``--config`` file.

    That is how k3s runs it in-process and RKE2 in its static pod. ``None`` when
    ``--config`` is given (then the file decides).

    Raises:
        ConfigError: an unsupported ``--proxy-mode``.
    """
    flags: dict[str, str] = {}
    for arg in argv:
        key, sep, value = str(arg).partition("=")
        if key.startswith("--") and sep:
            flags[key[2:]] = value
    flags.pop(BACKEND_ARG[2:-1], None)  # the lab's own switch, not a configuration
    if "config" in flags or not flags:
        return None
    mode = flags.get("proxy-mode", "iptables") or "iptables"
    if mode != "iptables":
        raise ConfigError(f'invalid configuration: KubeProxyConfiguration.Mode: Invalid value: '
                          f'"{mode}": this lab runs the iptables proxier only')
    return ProxyConfig(mode, flags.get("kubeconfig", ""), flags.get("cluster-cidr", ""),
                       _duration(flags.get("iptables-sync-period")) or DEFAULT_SYNC_PERIOD)


def _duration(value: object) -> float:
    """Seconds in a Go duration such as ``30s``, ``1m`` or ``1m30s`` (0 when unset)."""
    text = str(value or "").strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if text and "".join(n + u for n, u in parts) != text:
        raise ConfigError(f'failed complete: time: invalid duration "{text}"')
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def _container_env(ctx: ContainerContext) -> dict[str, str]:
    env = {e["name"]: str(e.get("value", "")) for e in ctx.container.get("env") or []
           if isinstance(e, dict) and "name" in e}
    env.update(ctx.env)
    return env


def choose_backend(ctx: ContainerContext) -> str:
    """``nft`` or ``legacy`` from the container's args or environment.

    Raises:
        ConfigError: an unknown backend name.
    """
    backend = _container_env(ctx).get(BACKEND_ENV, "nft")
    for arg in [*(ctx.container.get("command") or []), *(ctx.container.get("args") or [])]:
        if str(arg).startswith(BACKEND_ARG):
            backend = str(arg)[len(BACKEND_ARG):]
    if backend not in ("nft", "legacy"):
        raise ConfigError(f'unknown iptables backend "{backend}" (want nft or legacy)')
    return backend


def _saved_rules(saved: str) -> tuple[list[str], set[tuple[str, str]]]:
    """From ``iptables-save`` output: the nat table's chains, and every rule as
    ``(table, line)``. Plain string work: 100 nodes parse their save every sync on the
    lab's one event loop."""
    table, nat_chains, rules = "", [], set()
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":") and table == "nat":
            nat_chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            rules.add((table, line.rstrip()))
    return nat_chains, rules


_BARE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _saved_args(args: list[str]) -> str:
    """``args`` as ``iptables-save`` prints them, which ``iptables-restore`` also reads: a
    word with any other character is double-quoted (the rules' comments hold no quote)."""
    return " ".join(a if a and set(a) <= _BARE else f'"{a}"' for a in args)


def missing_jumps(jumps: tuple[Jump, ...], rules: set[tuple[str, str]]) -> str:
    """``iptables-restore --noflush`` input inserting, at the top of its chain, each jump
    the saved ``rules`` lack ("" when none is missing): kube-proxy's check-then-insert from
    one ``iptables-save`` instead of one ``iptables -C`` per jump. Applied after the rules
    themselves, as before, so a node whose tables refuse the jumps still gets its Service
    rules and fails only there."""
    by_table: dict[str, list[str]] = {}
    for j in jumps:
        args = _saved_args(j.args())
        if (j.table, f"-A {j.src_chain} {args}") not in rules:
            by_table.setdefault(j.table, []).append(f"-I {j.src_chain} 1 {args}\n")
    return "".join(f"*{t}\n{''.join(lines)}COMMIT\n" for t, lines in by_table.items())


class SyncError(Exception):
    """iptables-restore (or the jump rules) failed; the message is the tool's output."""


class KubeProxy:
    """kube-proxy in iptables mode for one node."""

    debounce = 0.07  # seconds of quiet before a resync, so bursts of events cost one restore
    min_sync_period = 1.0  # iptables.minSyncPeriod's default: syncs at most once a second
    command_timeout = 10.0

    def __init__(self) -> None:
        self.last_sync: datetime | None = None
        self.syncs = 0

    async def run(self, ctx: ContainerContext) -> int:
        """Sync rules until stopped; 1 on a bad config or a failed iptables-restore."""
        try:
            flagged = config_from_flags([*(ctx.container.get("command") or []),
                                         *(ctx.container.get("args") or [])])
            if flagged is None:
                cm = ctx.store.find(CONFIGMAPS, "kube-system", "kube-proxy")
                flagged = parse_config(((cm or {}).get("data") or {}).get("config.conf"))
            cfg = flagged
            backend = choose_backend(ctx)
        except ConfigError as exc:
            ctx.log(klog("E", "run.go:74", "command failed", err=str(exc)))
            return 1
        self._log_start(ctx, cfg, backend)
        return await self.proxy(ctx, cfg, backend)

    async def proxy(self, ctx: ContainerContext, cfg: ProxyConfig, backend: str) -> int:
        """Program the node's Service rules and follow Services and EndpointSlices.

        Returns:
            1 when an ``iptables-restore`` fails (the rules written before stay).
        """
        q = ctx.store.subscribe(SERVICES, SLICES)
        _RUNNING.setdefault(ctx.netns, set()).add(q)
        runner: web.AppRunner | None = None
        try:
            runner = await self._serve_healthz(ctx)
            await self._sync(ctx, cfg, backend)
            await self._loop(ctx, cfg, backend, q)
            return 0
        except SyncError as exc:
            ctx.log(klog("E", "proxier.go:1525", "Failed to execute iptables-restore",
                         err=str(exc), ipFamily="IPv4"))
            ctx.log(klog("I", "proxier.go:1528", "Sync failed", retryingTime="30s"))
            return 1
        finally:
            ctx.store.unsubscribe(q)
            _RUNNING.get(ctx.netns, set()).discard(q)
            await stop_http(runner)

    async def _serve_healthz(self, ctx: ContainerContext) -> web.AppRunner | None:
        try:
            return await serve_http(ctx.netns, "0.0.0.0", HEALTHZ_PORT,
                                    {"/healthz": self._healthz, "/livez": self._healthz})
        except OSError as exc:  # kube-proxy keeps proxying without its health server
            ctx.log(klog("E", "server.go:558", "Failed to start healthz server", err=str(exc)))
            return None

    def _log_start(self, ctx: ContainerContext, cfg: ProxyConfig, backend: str) -> None:
        ctx.log(klog("I", "server_others.go:72", "Using iptables proxy"))
        ctx.log(klog("I", "server.go:1050", "Successfully retrieved node IP(s)",
                     IPs=[ctx.node.internal_ip]))
        ctx.log(klog("I", "server_others.go:168", "kube-proxy running in single-stack mode",
                     ipFamily="IPv4"))
        ctx.log(klog("I", "proxier.go:256", "Setting route_localnet=1 to allow node-ports on "
                     "localhost; to change this either disable iptables.localhostNodePorts "
                     "(--iptables-localhost-nodeports) or set nodePortAddresses "
                     "(--nodeport-addresses) to filter loopback addresses"))
        ctx.log(klog("I", "server.go:865", "Version info", version="v1.29.0",
                     iptablesBackend=backend))
        ctx.log(klog("I", "config.go:315", "Starting endpoint slice config controller"))
        ctx.log(klog("I", "config.go:188", "Starting service config controller"))

    async def _loop(self, ctx: ContainerContext, cfg: ProxyConfig, backend: str,
                    q: asyncio.Queue[tuple[str, Any, dict[str, Any]]]) -> None:
        loop = asyncio.get_running_loop()
        next_resync = loop.time() + cfg.sync_period
        last_sync = -self.min_sync_period
        while True:
            try:
                _, res, _ = await asyncio.wait_for(q.get(), max(next_resync - loop.time(), 0))
            except TimeoutError:
                res = None  # the periodic resync is due (a resync() call looks the same)
            if res is not None:  # a Service or EndpointSlice changed (the queue holds no other)
                since = loop.time() - last_sync
                await asyncio.sleep(max(self.debounce, self.min_sync_period - since))
            while not q.empty():  # everything queued is covered by one full re-render
                q.get_nowait()
            await self._sync(ctx, cfg, backend)
            last_sync = loop.time()
            next_resync = last_sync + cfg.sync_period

    async def _iptables(self, ctx: ContainerContext, argv: list[str],
                        stdin: str | None = None) -> str:
        try:
            res = await arun(["ip", "netns", "exec", ctx.netns, *argv], input=stdin,
                             timeout=self.command_timeout)
        except CommandError as exc:
            raise SyncError(f"exit status {exc.code}: {exc.stderr.strip()}") from exc
        except TimeoutError as exc:
            raise SyncError(f"{argv[0]} did not finish in {self.command_timeout}s") from exc
        return res.stdout

    async def _sync(self, ctx: ContainerContext, cfg: ProxyConfig, backend: str) -> None:
        saved = await self._iptables(ctx, [f"iptables-{backend}-save"])
        existing, rules = _saved_rules(saved)
        nat, flt = render(ctx.store.items(SERVICES), ctx.store.items(SLICES),
                          ctx.node.internal_ip, cfg.cluster_cidr,
                          existing_nat_chains=[self.unname(c) for c in existing])
        await self._iptables(ctx, [f"iptables-{backend}-restore", "-w", "--noflush"],
                             self.rename(flt + nat))
        inserts = missing_jumps(self.jumps(), rules)
        if inserts:
            await self._iptables(ctx, [f"iptables-{backend}-restore", "-w", "--noflush"],
                                 inserts)
        if self.last_sync is None:
            ctx.log(klog("I", "shared_informer.go:318", "Caches are synced for service config"))
        self.last_sync = datetime.now(UTC)
        self.syncs += 1

    def rename(self, rules: str) -> str:
        """The rules as written to the node (a replacement writes them under its own names)."""
        return rules

    def unname(self, chain: str) -> str:
        """The inverse of :meth:`rename` for one chain name."""
        return chain

    def jumps(self) -> tuple[Jump, ...]:
        """The jumps from the built-in chains into this proxy's chains."""
        return JUMPS

    async def _healthz(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        last = self.last_sync
        body = {"lastUpdated": (last or now).strftime("%Y-%m-%d %H:%M:%S.%f %z UTC"),
                "currentTime": now.strftime("%Y-%m-%d %H:%M:%S.%f %z UTC"),
                "nodeEligible": True}
        return web.Response(status=200 if last else 503, text=json.dumps(body),
                            content_type="application/json")


# kubeadm's image (and k3s's in-process kube-proxy); RKE2 runs it from hardened-kubernetes.
@builtin(r"kube-proxy:|hardened-kubernetes:")
def _factory() -> KubeProxy:
    return KubeProxy()
