"""Command-line options, their ini twins and environment variables, resolved into :class:`Settings`.

Every option is declared once, as data (:data:`OPTIONS`). Each has a CLI flag, an ini twin
``netdoctor_<name>`` sharing the same help text, and an environment variable
``NETDOCTOR_<NAME>``. Precedence: CLI > environment > ini > built-in default. A bad value raises
:class:`pytest.UsageError` naming where it came from.

Example:
    >>> s = resolve_settings({}, {"NETDOCTOR_PROBE_TIMEOUT": "2.5"}, {}, cwd=Path("/r"))
    >>> s.probe_timeout, s.probe_image
    (2.5, 'nicolaka/netshoot:v0.13')
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

GROUP = "netdoctor"
ENV_PREFIX = "NETDOCTOR_"
INI_PREFIX = "netdoctor_"
DEFAULT_PROBE_IMAGE = "nicolaka/netshoot:v0.13"
DEFAULT_ECHO_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.53"
DEFAULT_IMAGE_ARCHES = ("amd64", "arm64")
DEFAULT_LAB_SCENARIO = "healthy"

Kind = Literal["value", "flag", "list", "optional"]
Parser = Callable[[str, Path], Any]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class BadValue(ValueError):
    """A parser's complaint; the resolver adds where the value came from."""


def _text(raw: str, _: Path) -> str:
    return raw


def _path(raw: str, base: Path) -> Path:
    return base / Path(raw).expanduser()


def _bool(raw: str, _: Path) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise BadValue(f"expected one of {sorted(_TRUE | _FALSE)}, got {raw!r}")


def _positive_float(raw: str, _: Path) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadValue(f"expected a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise BadValue(f"expected a positive number of seconds, got {raw!r}")
    return value


def _seconds_between(low: float, high: float) -> Parser:
    """A parser of seconds in ``[low, high]``: an upper bound too, so that a typo such as
    ``1e9`` is refused instead of making every wait of the run endless."""
    def parse(raw: str, base: Path) -> float:
        value = _positive_float(raw, base)
        if not low <= value <= high:
            raise BadValue(f"expected {low:g} to {high:g} seconds, got {raw!r}")
        return value
    return parse


PROBE_TIMEOUT_RANGE = (0.5, 60.0)
"""Seconds one probe command may take: ping's -w and dig's +time are whole seconds >= 1,
and no pod-network answer is worth waiting longer than a minute for."""
SETUP_TIMEOUT_RANGE = (1.0, 3600.0)
"""Seconds to wait for probe pods: at most an hour (the probes' own activeDeadlineSeconds)."""


def _positive_int(raw: str, _: Path) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadValue(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise BadValue(f"expected a whole number >= 1, got {raw!r}")
    return value


def _positive_rate(raw: str, _: Path) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadValue(f"expected a number per second, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise BadValue(f"expected a positive number per second, got {raw!r}")
    return value


def _count(raw: str, _: Path) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadValue(f"expected a whole number, got {raw!r}") from None
    if value < 0:
        raise BadValue(f"expected a whole number >= 0, got {raw!r}")
    return value


def _dns_label(raw: str, _: Path) -> str:
    if len(raw) > 63 or not _DNS_LABEL.match(raw):
        raise BadValue(f"{raw!r} is not a valid DNS-1123 label (lowercase a-z, 0-9, '-')")
    return raw


def parse_image(raw: str, _: Path = Path()) -> str:
    """Accept only pinned image references: a tag other than ``latest``, or a digest.

    Example:
        >>> parse_image("nicolaka/netshoot:v0.13")
        'nicolaka/netshoot:v0.13'
        >>> parse_image("busybox")
        Traceback (most recent call last):
        ...
        netdoctor.plugin.options.BadValue: image 'busybox' has no tag; pin a version ...
    """
    ref = raw.strip()
    if not ref or any(c.isspace() for c in ref):
        raise BadValue(f"{raw!r} is not an image reference")
    name, _sep, digest = ref.partition("@")
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise BadValue(f"image {raw!r} has a malformed digest")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if tag == "latest":
        raise BadValue(f"image {raw!r} uses the 'latest' tag; pin a version (never trust latest)")
    if not tag and not digest:
        raise BadValue(f"image {raw!r} has no tag; pin a version (e.g. {DEFAULT_PROBE_IMAGE})")
    return ref


def _ip(raw: str, _: Path) -> str:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise BadValue(f"expected an IP address, got {raw!r}") from None


def _hostname(raw: str, _: Path) -> str:
    name = raw.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise BadValue(f"expected a DNS name, got {raw!r}")
    return name


def _url(raw: str, _: Path) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadValue(f"expected an http(s) URL with a host, got {raw!r}")
    return raw.strip()


def _service(raw: str, base: Path) -> str:
    ns, sep, name = raw.strip().partition("/")
    if not sep:
        raise BadValue(f"expected namespace/name, got {raw!r}")
    return f"{_dns_label(ns, base)}/{_dns_label(name, base)}"


def _scenario(raw: str, _: Path) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", raw):
        raise BadValue(f"expected a scenario name (a-z, 0-9, '-', '_'), got {raw!r}")
    return raw


def _profile(raw: str, _: Path) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", raw):
        raise BadValue(f"expected a lab profile name (a-z, 0-9, '-'), got {raw!r}")
    return raw


@dataclass(frozen=True)
class OptionSpec:
    """One option: its flag, ini twin, environment variable, parser and default."""

    name: str
    help: str
    parse: Parser
    default: Any
    kind: Kind = "value"
    metavar: str | None = None

    @property
    def flag(self) -> str:
        """The CLI flag (``--probe-timeout``)."""
        return "--" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        """The ini twin (``netdoctor_probe_timeout``)."""
        return INI_PREFIX + self.name

    @property
    def env(self) -> str:
        """The environment variable (``NETDOCTOR_PROBE_TIMEOUT``)."""
        return ENV_PREFIX + self.name.upper()


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("kubeconfig", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)", _path,
               None, metavar="PATH"),
    OptionSpec("context", "kubeconfig context to use (default: the current context)", _text,
               None, metavar="NAME"),
    OptionSpec("lab", "run against the emulated lab cluster, optionally naming a broken-network "
               f"scenario (default scenario: {DEFAULT_LAB_SCENARIO})", _scenario, None,
               kind="optional", metavar="SCENARIO"),
    OptionSpec("lab_profile", "with --lab: the cluster shape the lab plays (kubeadm-flannel, "
               "k3s, calico, cilium-kpr, multus, rke2-canal, openshift-dns; see "
               "'netdoctor lab profile list'; default kubeadm-flannel)", _profile, None,
               metavar="NAME"),
    OptionSpec("probe_namespace", "namespace for probe pods (default: a fresh "
               "netdoctor-<run-id> namespace, deleted afterwards)", _dns_label, None,
               metavar="NS"),
    OptionSpec("probe_image", "pinned image for probe pods (never 'latest')", parse_image,
               DEFAULT_PROBE_IMAGE, metavar="IMAGE"),
    OptionSpec("node_probe_image", "pinned image for host-network node probes (never 'latest')",
               parse_image, DEFAULT_PROBE_IMAGE, metavar="IMAGE"),
    OptionSpec("echo_image", "pinned agnhost image for the echo workload of -m validate "
               "(never 'latest'; mirror it for air-gapped clusters, see docs/access.md)",
               parse_image, DEFAULT_ECHO_IMAGE, metavar="IMAGE"),
    OptionSpec("image_pull_secret", "name of a Secret in the probe namespace that probe pods "
               "pull their images with (repeatable)", _dns_label, (), kind="list",
               metavar="NAME"),
    OptionSpec("image_arch", "node architectures the probe images exist for; probes run only "
               "on Linux nodes of these (kubernetes.io/arch; repeatable)", _dns_label,
               DEFAULT_IMAGE_ARCHES, kind="list", metavar="ARCH"),
    OptionSpec("no_node_probes", "run unprivileged probes only: no hostNetwork/privileged node "
               "probes, so node-fact checks and the causes that need them are skipped (the "
               "probe namespace then asks Pod Security level baseline, not privileged)",
               _bool, False, kind="flag"),
    OptionSpec("external_dns", "resolver outside the cluster used to tell cluster DNS faults "
               "from upstream faults", _ip, "1.1.1.1", metavar="IP"),
    OptionSpec("external_name", "name outside the cluster that pods resolve through the cluster "
               "DNS (proves CoreDNS forwards upstream)",
               _hostname, "example.com", metavar="NAME"),
    OptionSpec("external_url", "URL outside the cluster used to check pod egress", _url,
               "https://example.com", metavar="URL"),
    OptionSpec("offline", "the cluster has no internet access: skip checks that need it",
               _bool, False, kind="flag"),
    # Pod-to-pod replies take milliseconds and CoreDNS gives up on an upstream after 2 s, so
    # 2 s tells "no answer" from "slow" while keeping a broken cluster's run short.
    # It is the ping deadline and the DNS per-try time.
    OptionSpec("probe_timeout", "seconds one probe command may take "
               f"({PROBE_TIMEOUT_RANGE[0]:g} to {PROBE_TIMEOUT_RANGE[1]:g})",
               _seconds_between(*PROBE_TIMEOUT_RANGE), 2.0, metavar="SECONDS"),
    OptionSpec("setup_timeout", "seconds to wait for probe pods to become ready "
               f"({SETUP_TIMEOUT_RANGE[0]:g} to {SETUP_TIMEOUT_RANGE[1]:g})",
               _seconds_between(*SETUP_TIMEOUT_RANGE), 120.0, metavar="SECONDS"),
    OptionSpec("peers", "pod paths measured per node: each node to K peers, chosen by a rotation "
               "that covers every pair over successive seeds (default 3)", _positive_int, 3,
               metavar="K"),
    OptionSpec("coverage_seed", "which rotation of --peers this run measures (default: the "
               "minute the run started); seeds 0 to ceil((n-1)/K)-1 cover every pair", _count,
               None, metavar="N"),
    OptionSpec("full_mesh", "measure every ordered pair of nodes (n*(n-1) paths) instead of "
               "--peers", _bool, False, kind="flag"),
    OptionSpec("api_qps", "requests per second the run may send to the API server on average "
               "(one limiter for every request)", _positive_rate, 50.0, metavar="QPS"),
    OptionSpec("api_burst", "requests the run may send to the API server at once, above "
               "--api-qps", _positive_int, 100, metavar="N"),
    OptionSpec("report_dir", "directory for report.html, summary.json and analysis.md", _path,
               Path("reports"), metavar="DIR"),
    OptionSpec("overwrite_report", "overwrite existing reports instead of writing into a new "
               "<timestamp>-<run-id> subfolder", _bool, False, kind="flag"),
    OptionSpec("kube_proxy_restart_threshold", "kube-proxy restarts at or above which the "
               "kube_proxy_restarts signal is raised", _positive_int, 3, metavar="N"),
    # Restart counts are lifetime counts: a node reboot a week ago must not raise a signal
    # today. A restart counts only when its container last terminated this recently.
    OptionSpec("restart_window", "minutes: restarts count only when the container last "
               "terminated within this window (a current CrashLoopBackOff always counts); "
               "component Events and log lines only from this window",
               _positive_float, 15.0, metavar="MINUTES"),
    OptionSpec("ignore_service", "namespace/name of a Service whose missing endpoints are "
               "expected (repeatable)", _service, (), kind="list", metavar="NS/NAME"),
    OptionSpec("score_confirmed", "number of present signals for the 'confirmed' verdict",
               _positive_int, 4, metavar="N"),
    OptionSpec("score_partial", "number of present signals for the 'partial' verdict",
               _positive_int, 2, metavar="N"),
    OptionSpec("cleanup_only", "only delete probe objects left by earlier runs, then exit",
               _bool, False, kind="flag"),
    # Remediation (docs/remediate.md): nothing changes in the cluster without --remediate.
    OptionSpec("remediate", "after the checks, repair what they found: ordered, capped, "
               "verified by running the failing checks again", _bool, False, kind="flag"),
    OptionSpec("dry_run", "with --remediate: plan and report the repair, change nothing",
               _bool, False, kind="flag"),
    OptionSpec("force", "with --remediate: repair also on a 'partial' or 'none' verdict",
               _bool, False, kind="flag"),
    OptionSpec("non_interactive", "with --remediate: never prompt (needed without a terminal)",
               _bool, False, kind="flag"),
    OptionSpec("yes", "with --remediate: apply the plan without asking (without it, "
               "--non-interactive only plans)", _bool, False, kind="flag"),
    # A network repair of one cluster touches few things; a plan needing more is a sign
    # the diagnosis or the shape is not what the hooks understand.
    OptionSpec("max_changes", "with --remediate: most changes (node files, rules, sysctls, "
               "interfaces; API patches, applies, restarts, evictions) in all", _count, 12,
               metavar="N"),
    OptionSpec("max_changes_per_node", "with --remediate: most changes on one node",
               _count, 4, metavar="N"),
    OptionSpec("allow_control_plane", "with --remediate: allow changes on control-plane nodes "
               "(node-role labels, or serving the kubernetes Endpoints)", _bool, False,
               kind="flag"),
    OptionSpec("fix_selectors", "with --remediate: patch a Service selector to the one "
               "workload it evidently meant (otherwise a manual step)", _bool, False,
               kind="flag"),
    OptionSpec("retry_failed", "with --remediate: run hooks that failed within their cooldown",
               _bool, False, kind="flag"),
    OptionSpec("flannel_manifest", "with --remediate: pinned Flannel manifest applied when its "
               "DaemonSet is missing (default: remediation/manifests/kube-flannel-v0.25.5.yml)",
               _path, None, metavar="PATH"),
    OptionSpec("dns_fallback", "with --remediate: resolver IP CoreDNS may forward to when its "
               "upstream does not answer (repeatable; no default)", _ip, (), kind="list",
               metavar="IP"),
)
BY_NAME: dict[str, OptionSpec] = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """Resolved option values for one run (see :data:`OPTIONS` for meaning and defaults)."""

    kubeconfig: Path | None
    context: str | None
    lab: str | None
    lab_profile: str | None
    probe_namespace: str | None
    probe_image: str
    node_probe_image: str
    echo_image: str
    image_pull_secret: tuple[str, ...]
    image_arch: tuple[str, ...]
    no_node_probes: bool
    external_dns: str
    external_name: str
    external_url: str
    offline: bool
    probe_timeout: float
    setup_timeout: float
    report_dir: Path
    overwrite_report: bool
    kube_proxy_restart_threshold: int
    restart_window: float
    ignore_service: tuple[str, ...]
    score_confirmed: int
    score_partial: int
    cleanup_only: bool
    remediate: bool
    dry_run: bool
    force: bool
    non_interactive: bool
    yes: bool
    max_changes: int
    max_changes_per_node: int
    allow_control_plane: bool
    fix_selectors: bool
    retry_failed: bool
    flannel_manifest: Path | None
    dns_fallback: tuple[str, ...]
    peers: int
    coverage_seed: int | None
    full_mesh: bool
    api_qps: float
    api_burst: int
    sources: Mapping[str, str]
    """Where each value came from (``"--probe-timeout"``, ``"default"``, ...)."""


def add_options(parser: pytest.Parser) -> None:
    """Register every option in the ``netdoctor`` group, plus its ini twin."""
    group = parser.getgroup(GROUP, "netdoctor: pod network diagnosis")
    for spec in OPTIONS:
        if spec.kind == "flag":
            group.addoption(spec.flag, action="store_true", default=None, dest=spec.name,
                            help=spec.help)
        elif spec.kind == "list":
            group.addoption(spec.flag, action="append", default=None, dest=spec.name,
                            metavar=spec.metavar, help=spec.help)
        elif spec.kind == "optional":
            group.addoption(spec.flag, nargs="?", const=DEFAULT_LAB_SCENARIO, default=None,
                            dest=spec.name, metavar=spec.metavar, help=spec.help)
        else:
            group.addoption(spec.flag, default=None, dest=spec.name, metavar=spec.metavar,
                            help=spec.help)
        ini_type: Literal["linelist", "string"] = "linelist" if spec.kind == "list" else "string"
        parser.addini(spec.ini, spec.help, type=ini_type, default=[] if spec.kind == "list" else "")


def _split(raw: str) -> list[str]:
    return [p for p in re.split(r"[,\s]+", raw) if p]


def _parse_from(spec: OptionSpec, raw: Any, where: str, base: Path) -> Any:
    try:
        if spec.kind == "list":
            items: Sequence[str] = _split(raw) if isinstance(raw, str) else raw
            return tuple(spec.parse(p, base) for item in items for p in _split(item))
        if spec.kind == "flag" and isinstance(raw, bool):
            return raw
        return spec.parse(str(raw), base)
    except BadValue as exc:
        raise pytest.UsageError(f"netdoctor: invalid value from {where}: {exc}") from None


def resolve_settings(
    cli: Mapping[str, Any],
    environ: Mapping[str, str],
    ini: Mapping[str, Any],
    *,
    cwd: Path,
    ini_path: Path | None = None,
    root: Path | None = None,
) -> Settings:
    """Resolve every option: CLI > environment > ini > default.

    Args:
        cli: Parsed CLI values by option name (``None`` or absent when not given).
        environ: The environment (``os.environ``).
        ini: Raw ini values by ini name (empty string or list when unset).
        cwd: Base for relative paths from the CLI or environment.
        ini_path: The ini file; its directory is the base for relative ini paths.
        root: Base for relative default paths (the rootdir); defaults to ``cwd``.

    Raises:
        pytest.UsageError: A value does not parse; the message names its source.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in OPTIONS:
        given = cli.get(spec.name)
        env_raw = environ.get(spec.env, "").strip()
        ini_raw = ini.get(spec.ini)
        if given not in (None, [], ()):
            where, base, raw = spec.flag, cwd, given
        elif env_raw:
            where, base, raw = f"environment variable {spec.env}", cwd, env_raw
        elif ini_raw not in (None, "", []):
            ini_dir = ini_path.parent if ini_path else cwd
            where = f"ini option {spec.ini} in {ini_path or 'the ini file'}"
            base, raw = ini_dir, ini_raw
        else:
            default = spec.default
            if isinstance(default, Path):
                default = (root or cwd) / default
            values[spec.name], sources[spec.name] = default, "default"
            continue
        values[spec.name] = _parse_from(spec, raw, where, base)
        sources[spec.name] = where
    if values["score_partial"] > values["score_confirmed"]:
        raise pytest.UsageError(
            f"netdoctor: score_partial ({values['score_partial']}, from "
            f"{sources['score_partial']}) must not exceed score_confirmed "
            f"({values['score_confirmed']}, from {sources['score_confirmed']})"
        )
    if values["image_pull_secret"] and values["probe_namespace"] is None:
        raise pytest.UsageError(
            f"netdoctor: image_pull_secret (from {sources['image_pull_secret']}) needs "
            "--probe-namespace naming the namespace that holds the Secret: a run's own fresh "
            "namespace holds none")
    return Settings(**values, sources=sources)


def settings_from_config(config: pytest.Config, environ: Mapping[str, str]) -> Settings:
    """Adapter from a pytest config to :func:`resolve_settings`."""
    cli = {spec.name: config.getoption(spec.name) for spec in OPTIONS}
    ini = {spec.ini: config.getini(spec.ini) for spec in OPTIONS}
    return resolve_settings(
        cli, environ, ini,
        cwd=config.invocation_params.dir, ini_path=config.inipath, root=config.rootpath,
    )
