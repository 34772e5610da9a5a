"""The cluster's own components, run by the lab as built-in containers."""

from __future__ import annotations

import importlib

BUILTIN_MODULES = ("flannel", "kube_proxy", "coredns", "echo", "calico", "cilium", "idle",
                   "multus")


def load_builtins() -> None:
    """Import every component module so that each registers its image pattern."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{name}")
