"""Log lines in the Kubernetes components' klog format."""

from __future__ import annotations

import json
from datetime import datetime


def klog(severity: str, where: str, msg: str, **kv: object) -> str:
    """One structured klog line, e.g. ``E1126 03:38:00.000000       1 run.go:74] "msg" k="v"``.

    Args:
        severity: ``I``, ``W``, ``E`` or ``F``.
        where: the ``file.go:line`` the real component logs from.
        msg: the message (quoted, as structured logging does).
        **kv: key/value pairs; strings are quoted, other values printed as JSON.
    """
    now = datetime.now()
    head = f"{severity}{now:%m%d %H:%M:%S.%f} {1:>7} {where}]"
    parts = [head, json.dumps(msg)]
    for key, value in kv.items():
        parts.append(f"{key}={json.dumps(value)}")
    return " ".join(parts)
