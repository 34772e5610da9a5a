"""Bad input ends the run before it starts: one line naming what is wrong, exit status 4,
no report directory left behind. No cluster is needed: every case fails before connecting."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

PLUGIN = ("-p", "no:netdoctor", "-p", "netdoctor.plugin")
CHECK = """
import pytest

pytestmark = pytest.mark.diagnose


def test_a(cluster):
    pass
"""
"""A check that needs the cluster: only a run with checks connects (or plans reports)."""
SERVER = "https://127.0.0.1:1"  # never contacted: each kubeconfig is refused before


def kubeconfig(*, ca: str = "", cert: str = "", key: str = "", current: str = "lab",
               context_cluster: str = "lab") -> str:
    """A small kubeconfig; the optional fields name files."""
    cluster = [f"    server: {SERVER}"]
    if ca:
        cluster.append(f"    certificate-authority: {ca}")
    else:
        data = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
        cluster.append(f"    certificate-authority-data: {data}")
    user = ["    token: abc"]
    if cert:
        user.append(f"    client-certificate: {cert}")
    if key:
        user.append(f"    client-key: {key}")
    lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: lab", "  cluster:",
             *cluster, "contexts:", "- name: lab", "  context:",
             f"    cluster: {context_cluster}", "    user: me", "users:", "- name: me",
             "  user:", *user]
    if current:
        lines.append(f"current-context: {current}")
    return "\n".join(lines) + "\n"


CASES = {
    "missing-file": (None, ["kubeconfig *nope.yaml does not exist"]),
    "empty": ("", ["kubeconfig *kc.yaml is empty"]),
    "blank": ("\n  \n", ["kubeconfig *kc.yaml is empty"]),
    "not-a-mapping": ("- a\n- b\n", ["*kc.yaml is not a kubeconfig: a YAML mapping was "
                                     "expected, found list"]),
    "scalar": ("just text\n", ["*kc.yaml is not a kubeconfig*found str"]),
    "malformed-yaml": ("clusters: [oops\n", ["*kc.yaml is not valid YAML at line 2*"]),
    "no-current-context": (kubeconfig(current=""), ["*kc.yaml has no current-context; pass "
                                                    "--context (contexts in the file: lab)"]),
    "unknown-context": (kubeconfig(current="prod"), ["*current-context 'prod' is not among "
                                                     "its contexts (lab)"]),
    "unknown-cluster": (kubeconfig(context_cluster="gone"), ["*context 'lab' field cluster "
                                                             "names 'gone'*"]),
    "missing-ca": (kubeconfig(ca="ca.crt"), ["*cluster 'lab' field certificate-authority: "
                                             "file */ca.crt does not exist"]),
    "missing-cert": (kubeconfig(cert="/nonexistent/me.crt"),
                     ["*user 'me' field client-certificate: file /nonexistent/me.crt does "
                      "not exist"]),
    "missing-key": (kubeconfig(key="keys/me.key"),
                    ["*user 'me' field client-key: file */keys/me.key does not exist"]),
}


def _one_line(result: pytest.RunResult, pattern: str) -> None:
    text = result.stdout.str() + "\n" + result.stderr.str()
    mine = [line for line in text.splitlines() if "netdoctor:" in line]
    assert len(mine) == 1, text
    result.stderr.fnmatch_lines([f"ERROR: netdoctor: {pattern}"])
    assert "Traceback" not in text, text
    assert "INTERNALERROR" not in text, text
    assert result.ret == 4, text


@pytest.mark.parametrize("case", list(CASES))
def test_kubeconfig_problem(pytester: pytest.Pytester, case: str) -> None:
    content, patterns = CASES[case]
    path = pytester.path / ("nope.yaml" if content is None else "kc.yaml")
    if content is not None:
        path.write_text(content)
    pytester.makepyfile(CHECK)
    result = pytester.runpytest(*PLUGIN, f"--kubeconfig={path}",
                                           "--report-dir=out")
    _one_line(result, patterns[0])
    assert not (pytester.path / "out").exists()  # no empty report dir on a failed connect


@pytest.mark.parametrize(("arg", "pattern"), [
    ("--probe-timeout=1e9", "invalid value from --probe-timeout: expected 0.5 to 60 seconds*"),
    ("--probe-timeout=0.1", "invalid value from --probe-timeout: expected 0.5 to 60 seconds*"),
    ("--probe-timeout=nan", "invalid value from --probe-timeout*"),
    ("--setup-timeout=100000", "invalid value from --setup-timeout: expected 1 to 3600*"),
    ("--setup-timeout=-5", "invalid value from --setup-timeout*"),
], ids=["probe-1e9", "probe-0.1", "probe-nan", "setup-100000", "setup-negative"])
def test_timeout_out_of_range(pytester: pytest.Pytester, arg: str, pattern: str) -> None:
    pytester.makepyfile(CHECK)
    _one_line(pytester.runpytest(*PLUGIN, arg), pattern)


def test_timeout_bounds_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:netdoctor", "-p", "netdoctor.plugin",
                                           "--help")
    result.stdout.fnmatch_lines(["*--probe-timeout=SECONDS*", "*(0.5 to 60)*"])
    result.stdout.fnmatch_lines(["*--setup-timeout=SECONDS*", "*(1 to", "*3600)"])


@pytest.mark.parametrize(("where", "pattern"), [
    ("afile", "report directory *afile (from --report-dir) is unusable: *afile is not a "
              "directory"),
    ("afile/sub", "report directory *sub (from --report-dir) is unusable: *afile is not a "
                  "directory"),
    ("/proc/netdoctor-reports", "report directory /proc/netdoctor-reports * unusable: "
                                "cannot create /proc/netdoctor-reports*"),
    ("/proc", "report directory /proc * unusable: cannot write in /proc*"),
], ids=["a-file", "under-a-file", "not-creatable", "not-writable"])
def test_unusable_report_dir(pytester: pytest.Pytester, where: str, pattern: str) -> None:
    (pytester.path / "afile").write_text("x")
    pytester.makepyfile(CHECK)
    target = where if where.startswith("/") else str(pytester.path / where)
    _one_line(pytester.runpytest(*PLUGIN, f"--report-dir={target}"), pattern)
    assert not Path("/proc/netdoctor-reports").exists()


def test_usable_report_dir_is_not_created_early(pytester: pytest.Pytester) -> None:
    # The check leaves nothing: the directory appears only when reports are written.
    pytester.makepyfile(CHECK)
    nope = pytester.path / "nope.yaml"
    result = pytester.runpytest(*PLUGIN, f"--kubeconfig={nope}",
                                           f"--report-dir={pytester.path / 'a' / 'b'}")
    assert result.ret == 4
    assert not (pytester.path / "a").exists()
