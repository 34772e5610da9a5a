"""Helpers shared by netdoctor's own tests."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

SAMPLES = Path(__file__).parent / "data" / "samples"


class Sample(NamedTuple):
    """One captured command run (see selftests/data/capture_samples.sh)."""

    stdout: str
    stderr: str
    exit_code: int


def load_sample(name: str) -> Sample:
    """Read ``<name>.stdout``, ``.stderr`` and ``.rc`` from the captured samples."""
    return Sample(
        (SAMPLES / f"{name}.stdout").read_text(),
        (SAMPLES / f"{name}.stderr").read_text(),
        int((SAMPLES / f"{name}.rc").read_text()),
    )
