"""Batched probe commands: the script runs them side by side and its output splits back."""

from __future__ import annotations

import subprocess

import pytest

from netdoctor.cluster.exec import batch_script, split_batch

COMMANDS = [("sh", "-c", "echo out; echo err >&2; exit 3"),
            ("printf", "no newline"),
            ("sh", "-c", "printf 'a\\n\\nb\\n'"),
            ("sh", "-c", "sleep 0.2; echo late")]


@pytest.mark.parametrize("shell", ["sh", "busybox"])
def test_batch_round_trip(shell: str) -> None:
    argv = ["busybox", "sh", "-c"] if shell == "busybox" else ["sh", "-c"]
    done = subprocess.run([*argv, batch_script(COMMANDS)], capture_output=True, text=True,
                          timeout=20, check=True)
    parts = split_batch(done.stdout, len(COMMANDS))
    assert parts == [(3, "out\n", "err\n"), (0, "no newline", ""), (0, "a\n\nb\n", ""),
                     (0, "late\n", "")]


def test_truncated_batch_output_is_rejected() -> None:
    done = subprocess.run(["sh", "-c", batch_script(COMMANDS)], capture_output=True, text=True,
                          timeout=20, check=True)
    assert split_batch(done.stdout[: len(done.stdout) // 2], len(COMMANDS)) is None
    assert split_batch("", 1) is None
