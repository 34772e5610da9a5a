"""A lab's state directory: where its kubeconfig, logs, node roots and status live."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
CONTROL_SOCKET = "control.sock"


def default_state_dir() -> Path:
    """``$NETDOCTOR_LAB_DIR``, else a per-user folder under ``$XDG_RUNTIME_DIR`` or /tmp."""
    if os.environ.get("NETDOCTOR_LAB_DIR"):
        return Path(os.environ["NETDOCTOR_LAB_DIR"])
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return Path(base) / f"netdoctor-lab-{os.getuid()}"


def prefix_for(state_dir: Path) -> str:
    """Short name prefix of every namespace this lab makes (labs side by side differ)."""
    return "nd" + hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:4]


@dataclass
class LabState:
    """What ``state.json`` records about a lab."""

    state_dir: str
    prefix: str
    workers: int
    scenario: str
    pid: int = 0
    api_port: int = 0
    phase: str = "starting"  # starting | ready | failed | stopping
    error: str = ""
    faults: list[dict[str, Any]] = field(default_factory=list)
    profile: str = "kubeadm-flannel"
    dns_replicas: int = 1  # replicas of the profile's DNS Deployment

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig of this lab."""
        return Path(self.state_dir) / "kubeconfig"

    def save(self) -> None:
        """Write atomically so readers never see half a file."""
        path = Path(self.state_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        """The recorded state, or ``None`` when there is no lab here."""
        try:
            data = json.loads((state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return cls(**data)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
