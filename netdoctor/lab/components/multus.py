"""Multus's thin plugin entrypoint as a built-in container (``--multus-conf-file=auto``).

It waits for the cluster network's config (the lexically first file in the node's CNI
directory other than its own), then writes ``00-multus.conf``: ``type: multus``, the
kubeconfig under ``multus.d/`` and that config as its only delegate, so it sorts first
and the runtime calls Multus, which calls the cluster network. It follows changes of
the master config, and leaves its file in place when it stops (no
``--cleanup-config-on-exit``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from netdoctor.lab import cni
from netdoctor.lab.containers import ContainerContext, builtin

MULTUS_CONF = "00-multus.conf"
KUBECONFIG = "/etc/cni/net.d/multus.d/multus.kubeconfig"
POLL = 0.2


def multus_conf(master: dict[str, Any]) -> dict[str, Any]:
    """The thin entrypoint's config for ``master`` (its cniVersion and capabilities)."""
    conf: dict[str, Any] = {"cniVersion": master.get("cniVersion", "0.3.1"),
                            "name": "multus-cni-network", "type": "multus"}
    caps: dict[str, bool] = {}
    for plugin in master.get("plugins") or [master]:
        caps.update({k: bool(v) for k, v in (plugin.get("capabilities") or {}).items()})
    if caps:
        conf["capabilities"] = caps
    conf["kubeconfig"] = KUBECONFIG
    conf["delegates"] = [master]
    return conf


def master_config(conf_dir: Path) -> dict[str, Any] | None:
    """The first config in ``conf_dir`` that is not Multus's own, parsed."""
    for path in cni.config_files(conf_dir.parent, conf_dir.name):
        if path.name.startswith(MULTUS_CONF):
            continue
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        return data
    return None


@builtin(r"multus-cni:")
class MultusThin:
    """``/thin_entrypoint``: generate and keep 00-multus.conf current."""

    async def run(self, ctx: ContainerContext) -> int:
        """Write the config once the master config exists; rewrite it when that changes."""
        conf_dir = ctx.node.root / ctx.lab.cni_conf_dir
        written: dict[str, Any] | None = None
        while True:
            master = master_config(conf_dir)
            if master is not None and master != written:
                kubeconfig = ctx.node.root / KUBECONFIG.lstrip("/")
                kubeconfig.parent.mkdir(parents=True, exist_ok=True)
                kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
                tmp = conf_dir / f"{MULTUS_CONF}.new"
                tmp.write_text(json.dumps(multus_conf(master), indent=8) + "\n")
                tmp.replace(conf_dir / MULTUS_CONF)
                ctx.log(f"multus config file is created from master {master.get('name')}")
                written = master
            await asyncio.sleep(POLL)
