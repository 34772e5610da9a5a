"""``nodefacts.sh`` as a shell runs it: iptables-nft-save run once, its rules and its warnings
each in their own section; the kernel switches read without a process each."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from netdoctor.rootcause import facts

FAKE_SAVE = """#!/bin/sh
echo run >> "$0.calls"
echo "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them" >&2
printf '*nat\\n-A KUBE-SERVICES -j KUBE-NODEPORTS\\nCOMMIT\\n'
"""


@pytest.mark.parametrize("shell", ["sh", "busybox"])
def test_one_save_rules_and_warnings(tmp_path: Path, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} here")
    save = tmp_path / "iptables-nft-save"
    save.write_text(FAKE_SAVE)
    save.chmod(0o755)
    argv = [shell, "sh"] if shell == "busybox" else [shell]
    done = subprocess.run([*argv, "-c", facts.script()], capture_output=True, text=True,
                          timeout=30, check=False,
                          env={"PATH": f"{tmp_path}:/usr/sbin:/usr/bin:/sbin:/bin"})
    assert done.returncode == 0, done.stderr
    got = facts.parse("n1", done.stdout)
    assert got.complete
    assert got.nft_rules == ("-A KUBE-SERVICES -j KUBE-NODEPORTS",)
    assert got.nft_warnings == ("# Warning: iptables-legacy tables present, use "
                                "iptables-legacy-save to see them",)
    assert (tmp_path / "iptables-nft-save.calls").read_text() == "run\n"
    assert set(got.sysctls) == {"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables",
                                "net/ipv4/conf/all/rp_filter"}
    assert got.sysctls["net/ipv4/ip_forward"] == \
        Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
