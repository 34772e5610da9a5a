"""netdoctor's block at the top of report.html, rendered from the ``summary.json`` document.

First screen: the verdict banner, the top root causes with evidence and the commands to
confirm and fix them, the signals as badges and a heatmap per measured path kind. Below: the
per-node table and, after ``--remediate``, before and after with the applied steps. Nothing is
judged here: every value comes from the summary (and the evidence of the check a cell names);
keys this version does not know are shown as they are, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from netdoctor.model import CheckResult
from netdoctor.plugin.htmlmatrix import heatmaps, node_table
from netdoctor.plugin.htmlstyle import CSS, SCRIPT
from netdoctor.redact import redact, redact_data

SHOWN_CAUSES = 3
"""Causes shown open; the rest are one line each, opened on click (and when printed)."""
NARROW_TABLE = 5
"""A per-node table with at most this many checks goes in the first screen's right column."""
HEADLINES = {"confirmed": "Pod network broken: failure pattern confirmed",
             "partial": "Pod network degraded: failure pattern partly present",
             "none": "No failure pattern",
             "interrupted": "Run interrupted: no verdict"}


def _e(value: object) -> str:
    return escape(redact(str(value)))


def _bad_checks(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in summary.get("tests") or [] if t.get("outcome") in ("failed", "error")]


def healthy(summary: Mapping[str, Any]) -> bool:
    """A run with verdict ``none``, no present signal and no failed or erroring check."""
    return (summary.get("verdict") == "none" and not any((summary.get("signals") or {}).values())
            and not _bad_checks(summary))


def banner(summary: Mapping[str, Any]) -> str:
    """Verdict, score out of the applicable signals, cluster, run id and time."""
    verdict = str(summary.get("verdict", "unknown"))
    css = verdict if verdict in HEADLINES else "unknown"
    if verdict == "none" and not healthy(summary):
        css = "failing"
    headline = "Healthy" if healthy(summary) else HEADLINES.get(verdict, f"Verdict: {verdict}")
    cluster: Mapping[str, Any] = summary.get("cluster") or {}
    nodes = cluster.get("nodes") if isinstance(cluster.get("nodes"), list) else []
    where = " · ".join(x for x in (
        str(cluster.get("server") or ""), f"{len(nodes)} nodes" if nodes else "",
        f"CNI {cluster['cni']}" if cluster.get("cni") else "") if x)
    return (f'<div class="nd-banner nd-v-{escape(css)}" id="nd-verdict" '
            f'data-verdict="{escape(verdict)}"><span class="nd-verdict">{escape(headline)}'
            f'</span><span class="nd-score">score {_e(summary.get("score", "?"))} / '
            f'{_e(summary.get("applicable", "?"))} applicable signals</span>'
            f'<span class="nd-meta">{_e(where or "cluster unknown")} · run '
            f'{_e(summary.get("run_id", "?"))} · {_e(summary.get("generated", ""))}</span></div>')


def one_line(summary: Mapping[str, Any]) -> str:
    """The sentence under the banner: healthy in one line, or what failed in numbers."""
    tests = summary.get("tests") or []
    if healthy(summary):
        flaky = sum(1 for t in tests if t.get("outcome") == "flaky")
        return (f'<p class="nd-oneline" id="nd-healthy">Healthy: no failure signal and no '
                f"failed check ({len(tests)} checks"
                + (f", {flaky} flaky" if flaky else "") + ").</p>")
    bad = _bad_checks(summary)
    causes = summary.get("root_causes")
    said = (f"{len(causes)} root cause(s) found" if causes else
            "no root cause ranked" if causes is not None else "root causes not ranked")
    fixed = summary.get("remediation")
    after = (f" Remediation {_e(fixed.get('mode', '?'))}: score {_e(fixed.get('score_before'))}"
             f" before, {_e('-' if fixed.get('score_after') is None else fixed['score_after'])}"
             " after (below)." if isinstance(fixed, Mapping) else "")
    return (f'<p class="nd-oneline" style="color:#b71c1c">{len(bad)} of {len(tests)} checks '
            f"failed; {said}.{after}</p>")


def _commands(label: str, commands: Sequence[str]) -> str:
    if not commands:
        return ""
    return (f'<div class="nd-label">{escape(label)}</div>'
            f"<pre>{_e(chr(10).join(commands))}</pre>")


def _signal_badges(names: Sequence[str]) -> str:
    return "".join(f'<span class="nd-b nd-b-sig">{_e(n)}</span>' for n in names)


def cause_html(n: int, cause: Mapping[str, Any], open_: bool) -> str:
    """One cause: summary, signals it explains, evidence, confirm and fix commands."""
    explains = [str(e) for e in cause.get("explains") or [] if "::" not in str(e)]
    tests = [str(e) for e in cause.get("explains") or [] if "::" in str(e)]
    evidence = "".join(f"<li>{_e(e)}</li>" for e in [*(cause.get("contrast") or []),
                                                      *(cause.get("evidence") or [])])
    conf = cause.get("confidence")
    peer = f" · between {_e(cause.get('node'))} and {_e(cause['peer'])}" if cause.get(
        "peer") else ""
    meta = (f'<div class="nd-muted">confidence {conf:.2f}{peer}</div>'
            if isinstance(conf, int | float) else "")
    tests = [str(t) for t in cause.get("explains_tests") or []] or tests
    summary_line = (f'<span class="nd-sum">{n}. {_e(cause.get("summary") or cause.get("id"))}'
                    f'</span> <code class="nd-muted">{_e(cause.get("id", ""))}</code>')
    body = (f'<div class="nd-badges">{_signal_badges(explains)}</div>{meta}'
            + (f"<ul>{evidence}</ul>" if evidence else "")
            + _commands("Confirm", [str(c) for c in cause.get("confirm") or []])
            + _commands("Fix", [str(c) for c in cause.get("fix") or []])
            + (f'<div class="nd-muted">explains {len(tests)} failed or flaky check(s): '
               f'{_e(", ".join(tests))}</div>' if tests else ""))
    start = f'<div class="nd-cause" data-cause="{_e(cause.get("id", ""))}">'
    if open_:
        return f"{start}{summary_line}{body}</div>"
    return (f'{start}<details class="nd-more"><summary>{summary_line}</summary>{body}'
            "</details></div>")


def causes_html(summary: Mapping[str, Any]) -> str:
    """The ranked causes; the top ones open."""
    causes = summary.get("root_causes")
    if causes is None:
        return ('<section id="nd-causes"><h2>Root causes</h2><p class="nd-muted">Not ranked in '
                "this run.</p></section>")
    if not causes:
        text = ("Nothing to explain." if healthy(summary)
                else "No known cause explains the present signals: see the failing checks.")
        return (f'<section id="nd-causes"><h2>Root causes</h2><p>{escape(text)}</p>'
                f"{unexplained_html(summary)}</section>")
    items = "".join(cause_html(n, c, n <= SHOWN_CAUSES) for n, c in enumerate(causes, 1))
    return (f'<section id="nd-causes"><h2>Top causes (most explanatory first)</h2>{items}'
            f"{unexplained_html(summary)}</section>")


def unexplained_html(summary: Mapping[str, Any]) -> str:
    """Failed or flaky checks no ranked cause explains (empty when every one is)."""
    left = [str(t) for t in summary.get("unexplained") or []]
    if not left:
        return ""
    items = "".join(f"<li><code>{_e(t)}</code></li>" for t in left)
    return (f'<div id="nd-unexplained"><h3>Unexplained ({len(left)})</h3><p class="nd-muted">'
            f"Failed or flaky checks no ranked cause explains.</p><ul>{items}</ul></div>")


def signals_html(summary: Mapping[str, Any]) -> str:
    """A badge per signal: present, absent, or not applicable with the reason."""
    reasons: Mapping[str, str] = summary.get("signal_reasons") or {}
    badges = []
    for name, flag in (summary.get("signals") or {}).items():
        if flag is None:
            cls, state = "nd-b-na", f"not applicable: {reasons.get(name, 'no reason given')}"
        elif flag:
            cls, state = "nd-b-present", "present"
        else:
            cls, state = "nd-b-absent", "absent"
        badges.append(f'<span class="nd-b {cls}" title="{_e(state)}" data-signal="{_e(name)}">'
                      f"{_e(name)}: {_e(state)}</span>")
    return f'<div class="nd-badges" id="nd-signals">{"".join(badges)}</div>'


def _value(value: object) -> str:
    """A step's value: text as it is, structured values as JSON (keys of later versions)."""
    if isinstance(value, dict | list):
        return f"<pre>{_e(json.dumps(redact_data(value), default=str))}</pre>"
    return "-" if value is None else _e(value)


def _score_box(label: str, score: object, extra: str = "") -> str:
    return (f'<div><div class="nd-label">{escape(label)}</div><div class="nd-big">score '
            f"{_e('-' if score is None else score)}</div>{extra}</div>")


def _before(summary: Mapping[str, Any]) -> str:
    present = [n for n, flag in (summary.get("signals") or {}).items() if flag]
    bad = _bad_checks(summary)
    return (f'<div>verdict {_e(summary.get("verdict", "?"))}, {len(bad)} failed check(s)</div>'
            f'<div class="nd-badges">{_signal_badges(present)}</div>' if summary else "")


def remediation_html(block: Mapping[str, Any], summary: Mapping[str, Any] | None = None) -> str:
    """``--remediate``: before (this run: ``summary``) and after (the verification run) side
    by side, the steps, then any other keys the block carries."""
    known = {"mode", "reason", "steps", "score_before", "score_after", "still_failing"}
    still = [str(s) for s in block.get("still_failing") or []]
    after_extra = ("<div>still failing:</div><ul>" + "".join(f"<li><code>{_e(s)}</code></li>"
                                                             for s in still) + "</ul>"
                   if still else "")
    steps: list[Mapping[str, Any]] = [s for s in block.get("steps") or []
                                      if isinstance(s, Mapping)]
    cols = list(dict.fromkeys(["status", "name", "node", "detail",
                               *(k for s in steps for k in s)]))
    rows = "".join("<tr>" + "".join(f"<td>{_value(s.get(c, ''))}</td>" for c in cols) + "</tr>"
                   for s in steps)
    table = (f'<table class="nd-steps"><thead><tr>{"".join(f"<th>{escape(c)}</th>" for c in cols)}'
             f"</tr></thead><tbody>{rows}</tbody></table>" if steps else
             "<p class=\"nd-muted\">No step.</p>")
    others = "".join(f'<div class="nd-label">{escape(k)}</div><pre>'
                     f"{_e(json.dumps(redact_data(v), indent=1, default=str))}</pre>"
                     for k, v in block.items() if k not in known)
    return (f'<section id="nd-remediation"><h2>Remediation: {_e(block.get("mode", "?"))}</h2>'
            f"<p>{_e(block.get('reason', ''))}</p><div class=\"nd-side\">"
            + _score_box("Before", block.get("score_before"), _before(summary or {}))
            + _score_box("After (verification run)", block.get("score_after"), after_extra)
            + f"</div><h3>Steps</h3>{table}{others}</section>")


def page_block(summary: Mapping[str, Any], results: Mapping[str, CheckResult]) -> str:
    """The whole netdoctor block (style and script included) for pytest-html's summary."""
    causes = summary.get("root_causes") or []
    per_node = summary.get("per_node") or {}
    nodes = node_table(per_node, causes, results)
    table = f'<section><h2>Per node</h2>{nodes}</section>' if nodes else ""
    narrow = len(per_node.get("columns") or {}) <= NARROW_TABLE  # fits under the heatmaps
    first = (f'<div class="nd-grid"><div>{causes_html(summary)}</div><div>'
             f'<section><h2>Signals</h2>{signals_html(summary)}</section>'
             f'<section><h2>Node to node</h2>{heatmaps(summary.get("matrix") or {}, results)}'
             f'</section>{table if narrow else ""}</div></div>')
    remediation = summary.get("remediation")
    statement = (summary.get("coverage") or {}).get("statement")
    coverage = f'<p class="nd-coverage">{_e(statement)}</p>' if statement else ""
    for key in ("diagnose_measured", "validate_measured"):
        measured = summary.get(key) or {}
        if measured.get("narrowed") and measured.get("statement"):
            coverage += f'<p class="nd-coverage">{_e(str(measured["statement"]))}</p>'
    return (f'<style>{CSS}</style><div id="netdoctor">{banner(summary)}{one_line(summary)}'
            f"{coverage}{first}{'' if narrow else table}"
            + (remediation_html(remediation, summary) if isinstance(remediation, Mapping)
               else "")
            + f"<h2>Checks</h2></div><script>{SCRIPT}</script>")
