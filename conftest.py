"""Load the netdoctor plugin (unless installed, where its entry point loads it) and the
fixtures that connect the checks in tests/ to the cluster."""

from __future__ import annotations

from importlib.metadata import entry_points

_installed = any(ep.name == "netdoctor" for ep in entry_points(group="pytest11"))
pytest_plugins = [
    *([] if _installed else ["netdoctor.plugin"]),
    "netdoctor.plugin.lab_provider",
    "fixtures.cluster",
    "fixtures.observations",
    "fixtures.validation",
    "netdoctor.plugin.validation",
]
