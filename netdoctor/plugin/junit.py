"""``--junitxml``: each check's signals and root causes as properties of its ``<testcase>``.

CI systems read the JUnit file, not the HTML: a failing check there says which signal it
raised and which ranked cause explains it. Signals are known when the check starts and go
in as ``user_properties``; causes are ranked only at the end of the run, so they are added
to the finished testcase elements (found by their ``netdoctor.check`` property) before
pytest writes the file, together with suite-level properties for the verdict and each cause.

Properties (``<property name=... value=...>``):

* testcase: ``netdoctor.check`` (the node id), ``netdoctor.signal`` (one per declared
  signal), ``netdoctor.cause`` (one per ranked cause that explains the check);
* testsuite: ``netdoctor.verdict``, ``netdoctor.score``, ``netdoctor.applicable``,
  ``netdoctor.run_id``, ``netdoctor.cause`` (one per cause, best first).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from netdoctor.plugin import markers

CHECK, SIGNAL, CAUSE = "netdoctor.check", "netdoctor.signal", "netdoctor.cause"
OWN_MARKERS = ("diagnose", "validate")


def _log_xml(config: pytest.Config) -> Any:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # a pytest without the junitxml plugin: nothing to add to
        return None
    return config.stash.get(xml_key, None)


def cause_label(cause: Mapping[str, Any]) -> str:
    """``id (node): summary``, the value of a ``netdoctor.cause`` property."""
    node = f" ({cause['node']})" if cause.get("node") else ""
    return f"{cause.get('id')}{node}: {cause.get('summary', '')}"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the check and its signals in its JUnit testcase."""
    if _log_xml(item.config) is None:
        return
    signals = markers.item_signals(item)
    if not signals and not any(item.get_closest_marker(m) for m in OWN_MARKERS):
        return
    item.user_properties.append((CHECK, item.nodeid))
    item.user_properties.extend((SIGNAL, s) for s in signals)


def causes_by_check(causes: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each test id named in a cause's ``explains``, with the causes that explain it."""
    found: dict[str, list[str]] = {}
    for cause in causes:
        for nodeid in (str(e) for e in cause.get("explains") or [] if "::" in str(e)):
            found.setdefault(nodeid, []).append(cause_label(cause))
    return found


def add_cause_properties(testcases: Iterable[ET.Element],
                         causes: Mapping[str, list[str]]) -> int:
    """Add ``netdoctor.cause`` properties to the testcases of the checks they explain;
    return how many were added."""
    added = 0
    for case in testcases:
        props = case.find("properties")
        check = None if props is None else next(
            (p.get("value") for p in props.iter("property") if p.get("name") == CHECK), None)
        if props is None or check is None:
            continue
        for label in causes.get(check, ()):
            props.append(ET.Element("property", name=CAUSE, value=label))
            added += 1
    return added


def add_properties(summary: dict[str, Any], config: pytest.Config) -> None:
    """Causes on the testcases, the verdict on the suite: called by the engine with the
    reports, once the summary is final (after the ``pytest_netdoctor_summary`` hook)."""
    xml = _log_xml(config)
    if xml is None:
        return
    causes = list(summary.get("root_causes") or [])
    for key in ("verdict", "score", "applicable", "run_id"):
        if key in summary:
            xml.add_global_property(f"netdoctor.{key}", summary[key])
    for cause in causes:
        xml.add_global_property(CAUSE, cause_label(cause))
    # Finished testcases keep their element (pytest's _NodeReporter.finalize); writing
    # happens after this hook, in the junitxml plugin's own sessionfinish.
    add_cause_properties((r.to_xml() for r in getattr(xml, "node_reporters_ordered", ())),
                         causes_by_check(causes))
