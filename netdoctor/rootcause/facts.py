"""One node's network facts, parsed from the output of ``nodefacts.sh``.

The script runs in a privileged hostNetwork probe pod with the node's root at
``/host``; it prints sections (``### name``) of JSON from ``ip -j``, CNI config
files, sysctls and ``iptables-*-save`` output. Parsing is pure so that it is
unit-tested on captured output.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from netdoctor.cluster.roles import META_PLUGIN_TYPES, main_types

SYSCTL_IP_FORWARD = "net/ipv4/ip_forward"
SYSCTL_BRIDGE_NF = "net/bridge/bridge-nf-call-iptables"
SYSCTL_RP_FILTER = "net/ipv4/conf/all/rp_filter"
VXLAN_DEVICE = "flannel.1"
CNI_DIRS = ("/etc/cni/net.d", "/var/lib/rancher/k3s/agent/etc/cni/net.d")
"""Where CNI configs live: the default, and k3s's own (its containerd reads only that one)."""


def script() -> str:
    """The shell script that prints a node's facts."""
    return resources.files(__package__).joinpath("nodefacts.sh").read_text()


@dataclass(frozen=True)
class CniFile:
    """One CNI config file: its name, directory and what it configures.

    A meta-plugin (Multus) names what it delegates to: the plugin types of inline
    ``delegates``, or the file or network name of ``clusterNetwork``.
    """

    name: str
    plugins: tuple[str, ...]
    bridge: str | None = None
    subnet: str | None = None
    error: str | None = None
    dir: str = CNI_DIRS[0]
    ipam: str = ""
    delegates: tuple[str, ...] = ()
    cluster_network: str = ""
    network_name: str = ""

    @property
    def meta(self) -> bool:
        """A meta-plugin that calls another CNI's config."""
        return bool(self.plugins) and self.plugins[0] in META_PLUGIN_TYPES

    @property
    def path(self) -> str:
        """The file's path on the node."""
        return f"{self.dir}/{self.name}"


@dataclass(frozen=True)
class Route:
    """A route in the node's main table."""

    dst: str
    dev: str
    gateway: str | None = None


@dataclass(frozen=True)
class NodeFacts:
    """What a node probe saw on one node."""

    node: str
    cni_files: tuple[CniFile, ...] = ()
    cni_binaries: frozenset[str] = frozenset()
    flannel_subnet: str | None = None
    flannel_mtu: int | None = None
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mtus: dict[str, int] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)  # link -> MAC address
    routes: tuple[Route, ...] = ()
    vxlan_neighbors: dict[str, str] = field(default_factory=dict)  # ip -> mac
    vxlan_fdb: dict[str, str] = field(default_factory=dict)  # mac -> underlay ip
    sysctls: dict[str, str] = field(default_factory=dict)
    legacy_tables: tuple[str, ...] = ()
    nft_warnings: tuple[str, ...] = ()
    nft_rules: tuple[str, ...] = ()
    legacy_rules: tuple[str, ...] = ()
    nft_by_table: dict[str, tuple[str, ...]] = field(default_factory=dict)
    legacy_by_table: dict[str, tuple[str, ...]] = field(default_factory=dict)
    native_by_table: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Rules of nftables tables iptables does not manage (``inet hostfw``), written in
    iptables' words (:func:`nft_rules`)."""
    complete: bool = False

    @property
    def cni_dir(self) -> str:
        """The directory the runtime reads: k3s's own when it holds configs, else the
        default."""
        dirs = {c.dir for c in self.cni_files}
        return next((d for d in reversed(CNI_DIRS) if d in dirs), CNI_DIRS[0])

    @property
    def active_files(self) -> tuple[CniFile, ...]:
        """The configs in the directory the runtime reads, in the order it reads them."""
        return tuple(c for c in self.cni_files if c.dir == self.cni_dir)

    @property
    def active_cni(self) -> CniFile | None:
        """The config the container runtime uses: the lexically first file."""
        files = self.active_files
        return files[0] if files else None

    def delegate_of(self, meta: CniFile) -> CniFile | None:
        """The config a meta-plugin hands pods to: its ``clusterNetwork`` file or network
        name, else the next non-meta config (what Multus's automatic configuration takes)."""
        rest = [c for c in self.active_files if not c.meta]
        if meta.cluster_network:
            wanted = meta.cluster_network.rsplit("/", 1)[-1]
            return next((c for c in rest if wanted in (c.name, c.network_name)), None)
        return rest[0] if rest else None

    def effective_types(self) -> tuple[str, ...]:
        """Plugin types pods really get: the active config's, through a meta-plugin's
        inline delegates or the config it delegates to."""
        active = self.active_cni
        if active is None:
            return ()
        if not active.meta:
            return active.plugins
        if active.delegates:
            return active.delegates
        target = self.delegate_of(active)
        return target.plugins if target else ()

    def serves(self, cni: str) -> bool:
        """The config in use (followed through a meta-plugin) is ``cni``'s own."""
        return bool(set(main_types(cni)) & set(self.effective_types()))

    def owns(self, f: CniFile, cni: str) -> bool:
        """``f`` is ``cni``'s own config, or a meta-plugin that delegates to it."""
        if not f.meta:
            return bool(set(main_types(cni)) & set(f.plugins))
        types = f.delegates or ((self.delegate_of(f) or CniFile("", ())).plugins)
        return bool(set(main_types(cni)) & set(types))

    @property
    def nft_incompatible(self) -> bool:
        """iptables-nft cannot manage some table (another tool wrote nf_tables directly)."""
        return any("incompatible" in w for w in self.nft_warnings)

    def kube_rules(self, backend: str) -> tuple[str, ...]:
        """``-A KUBE-...`` rules held by ``backend`` (``nft`` or ``legacy``)."""
        rules = self.nft_rules if backend == "nft" else self.legacy_rules
        return tuple(r for r in rules if r.startswith("-A KUBE-"))

    def table_rules(self, backend: str, table: str) -> tuple[str, ...]:
        """``-A`` rules of one ``table`` (``filter``, ``nat``...) held by ``backend``."""
        by_table = self.nft_by_table if backend == "nft" else self.legacy_by_table
        return by_table.get(table, ())

    def device_of(self, ip: str) -> str | None:
        """The link that holds address ``ip`` (the underlay device for a node's InternalIP)."""
        return next((dev for dev, addrs in self.addresses.items()
                     if any(a.split("/")[0] == ip for a in addrs)), None)

    def all_rules(self) -> tuple[tuple[str, str, str], ...]:
        """Every ``-A`` rule as ``(backend, table, rule)``, both backends, every table."""
        return tuple((backend, table, rule)
                     for backend, by_table in (("nft", self.nft_by_table),
                                               ("legacy", self.legacy_by_table),
                                               ("native-nft", self.native_by_table))
                     for table, rules in sorted(by_table.items()) for rule in rules)

    def bridge_gateway(self, bridge: str = "cni0") -> tuple[str, ...]:
        """IPv4 addresses (CIDR) on a bridge."""
        return self.addresses.get(bridge, ())


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = out.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
    return out


def _json(lines: list[str]) -> list[dict[str, Any]]:
    text = "\n".join(lines).strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _cni_files(lines: list[str]) -> tuple[CniFile, ...]:
    files: list[tuple[str, str, list[str]]] = []
    where = CNI_DIRS[0]
    for line in lines:
        if line.startswith("+++ "):  # the directory the following files are in
            where = line[4:].strip().removeprefix("/host")
        elif line.startswith("--- "):
            files.append((where, line[4:].strip(), []))
        elif files:
            files[-1][2].append(line)
    return tuple(_cni_file(name, "\n".join(body), where) for where, name, body in files)


def _types(conf: dict[str, Any]) -> tuple[str, ...]:
    plugins = conf.get("plugins") or [conf]
    return tuple(str(p.get("type", "")) for p in plugins if isinstance(p, dict))


def _cni_file(name: str, body: str, where: str = CNI_DIRS[0]) -> CniFile:
    try:
        conf = json.loads(body)
    except ValueError as exc:
        return CniFile(name, (), error=f"not valid JSON: {exc}", dir=where)
    if not isinstance(conf, dict):
        return CniFile(name, (), error="not a JSON object", dir=where)
    plugins = conf.get("plugins") or [conf]
    first = plugins[0] if plugins and isinstance(plugins[0], dict) else {}
    ipam = first.get("ipam") or {}
    subnet = ipam.get("subnet") or (ipam.get("ranges") or [[{}]])[0][0].get("subnet")
    # Flannel delegates to the bridge plugin with its default bridge, cni0.
    bridge = first.get("bridge") or ("cni0" if first.get("type") == "flannel" else None)
    delegates = tuple(t for d in first.get("delegates") or [] if isinstance(d, dict)
                      for t in _types(d))
    return CniFile(name, _types(conf), bridge=bridge, subnet=subnet, dir=where,
                   ipam=str(ipam.get("type", "")), delegates=delegates,
                   cluster_network=str(first.get("clusterNetwork") or ""),
                   network_name=str(conf.get("name") or ""))


def _by_table(lines: list[str]) -> dict[str, tuple[str, ...]]:
    """``iptables-save`` rules grouped by the ``*table`` line they follow.

    Example:
        >>> _by_table(["*filter", "-A INPUT -j DROP", "COMMIT", "*nat", "-A OUTPUT -j X"])
        {'filter': ('-A INPUT -j DROP',), 'nat': ('-A OUTPUT -j X',)}
    """
    out: dict[str, list[str]] = {}
    table = ""
    for line in lines:
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith("-A "):
            out.setdefault(table, []).append(line)
    return {t: tuple(rules) for t, rules in out.items()}


IPTABLES_OWN = {f"{family} {table}" for family in ("ip", "ip6")
                for table in ("filter", "nat", "mangle", "raw", "security")}
"""nftables tables iptables-nft manages (read through ``iptables-nft-save``)."""
_NFT_WORDS = {"saddr": "-s", "daddr": "-d", "dport": "--dport", "sport": "--sport"}


def _nft_rule(chain: str, text: str) -> str:
    """One nft rule in iptables' words, the original kept after ``[nft:``.

    Example:
        >>> _nft_rule("input", "ip saddr 192.0.2.7 udp dport { 53, 5353 } drop")[:54]
        '-A input -s 192.0.2.7 -p udp --dport 53,5353 -j DROP ['
    """
    words = text.replace("{ ", "{").replace(" }", "}").replace(", ", ",").split()
    out = ["-A", chain]
    for i, w in enumerate(words):
        value = words[i + 1] if i + 1 < len(words) else ""
        neg = value == "!="
        if neg:
            value = words[i + 2] if i + 2 < len(words) else ""
        value = value.strip("{}").replace("-", ":") if w in ("dport", "sport") else \
            value.strip("{}")
        if w in _NFT_WORDS and value:
            if w in ("dport", "sport") and words[i - 1] in ("tcp", "udp"):
                out += ["-p", words[i - 1]]
            out += [*(["!"] if neg else []), _NFT_WORDS[w], value]
        elif w in ("l4proto", "protocol") and value:
            out += ["-p", value]
        elif w == "state" and i and words[i - 1] == "ct":
            out += ["--ctstate", value.upper()]
    verdict = next((v.upper() for v in ("drop", "reject", "accept") if v in words), "")
    return " ".join([*out, *(["-j", verdict] if verdict else []), f"[nft: {text}]"])


def nft_rules(lines: list[str]) -> dict[str, tuple[str, ...]]:
    """Rules of ``nft list ruleset`` by ``family table``, outside iptables-nft's tables."""
    out: dict[str, list[str]] = {}
    table = chain = ""
    for raw in lines:
        line = raw.strip()
        if line.startswith("table "):
            table, chain = " ".join(line.split()[1:3]), ""
        elif line.startswith("chain "):
            chain = line.split()[1]
        elif line in ("}", "") or line.startswith(("type ", "policy ", "#")) or not chain:
            continue
        elif table not in IPTABLES_OWN and not line.startswith(("set ", "map ", "elements")):
            # Counters change from one read to the next; the rule is the same.
            line = re.sub(r"counter packets \d+ bytes \d+", "counter", line)
            out.setdefault(table, []).append(_nft_rule(chain, line))
    return {t: tuple(r) for t, r in out.items()}


def _env(lines: list[str]) -> dict[str, str]:
    return {k.strip(): v.strip() for k, sep, v in (ln.partition("=") for ln in lines) if sep}


def parse(node: str, text: str) -> NodeFacts:
    """Parse the script's output for ``node``; missing sections stay empty."""
    s = _sections(text)
    env = _env(s.get("subnet-env", []))
    addresses: dict[str, tuple[str, ...]] = {}
    mtus: dict[str, int] = {}
    macs: dict[str, str] = {}
    for link in _json(s.get("addr", [])):
        name = str(link.get("ifname", ""))
        mtus[name] = int(link.get("mtu", 0))
        if link.get("address"):
            macs[name] = str(link["address"])
        addresses[name] = tuple(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                                if a.get("family") == "inet")
    routes = tuple(Route(str(r.get("dst", "")), str(r.get("dev", "")), r.get("gateway"))
                   for r in _json(s.get("route", [])))
    return NodeFacts(
        node=node,
        cni_files=_cni_files(s.get("cni-files", [])),
        cni_binaries=frozenset(ln.strip() for ln in s.get("cni-bin", []) if ln.strip()),
        flannel_subnet=env.get("FLANNEL_SUBNET"),
        flannel_mtu=int(env["FLANNEL_MTU"]) if env.get("FLANNEL_MTU", "").isdigit() else None,
        addresses=addresses, mtus=mtus, macs=macs, routes=routes,
        vxlan_neighbors={str(n["dst"]): str(n.get("lladdr", "")) for n in _json(s.get("neigh", []))
                         if "dst" in n},
        vxlan_fdb={str(f["mac"]): str(f.get("dst", "")) for f in _json(s.get("fdb", []))
                   if "mac" in f and f.get("dst")},
        sysctls=_env(s.get("sysctl", [])),
        legacy_tables=tuple(ln.strip() for ln in s.get("legacy-tables", []) if ln.strip()),
        # iptables-nft-save reports tables it cannot manage as comments on stdout.
        nft_warnings=tuple(ln for ln in s.get("nft-warnings", []) + [
            c for c in s.get("nft-save", []) if c.startswith("# ") and "incompatible" in c]
            if ln.strip()),
        nft_rules=tuple(ln for ln in s.get("nft-save", []) if ln.startswith("-A ")),
        legacy_rules=tuple(ln for ln in s.get("legacy-save", []) if ln.startswith("-A ")),
        nft_by_table=_by_table(s.get("nft-save", [])),
        legacy_by_table=_by_table(s.get("legacy-save", [])),
        native_by_table=nft_rules(s.get("nft-ruleset", [])),
        complete="end" in s,
    )


def in_cidr(ip: str, cidr: str) -> bool:
    """Whether ``ip`` lies in ``cidr`` (False for anything unparsable)."""
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
