"""``analysis.md``: the run explained for a human, rendered from the :class:`Analysis`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netdoctor.model import CheckResult, Evidence
from netdoctor.plugin.scoring import Analysis


def _fence(text: str, lang: str = "text") -> list[str]:
    """A fenced block that cannot be closed early by backticks inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", text, fence]


def _evidence(ev: Evidence) -> list[str]:
    out = [f"**Evidence: {ev.title}**", ""]
    if ev.lines:
        out += [*_fence(ev.text), ""]
    if ev.command:
        out += ["Reproduce:", "", *_fence(ev.command, "sh"), ""]
    for n, att in enumerate(ev.attempts, 1):
        status = f"exit {att.exit_code}" if att.exit_code is not None else f"no exit ({att.error})"
        out.append(f"- attempt {n}: `{' '.join(att.argv)}` -> {status} in {att.duration:.2f}s")
        tail = (att.stderr or att.stdout).strip()
        if tail and not att.succeeded:
            out.append(f"  last output: `{tail.splitlines()[-1][:200]}`")
    if ev.attempts:
        out.append("")
    return out


def _check(result: CheckResult) -> list[str]:
    out = [f"#### `{result.nodeid}` ({result.outcome})", ""]
    if result.message:
        out += [*("> " + line for line in result.message.splitlines()), ""]
    for ev in result.evidence:
        out += _evidence(ev)
    return out


def _bullets(results: Iterable[CheckResult], what: str) -> list[str]:
    return [f"- `{r.nodeid}`: {getattr(r, what) or '(no reason given)'}" for r in results]


def root_cause_section(causes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``## Root causes`` block of analysis.md, from ``summary.json`` entries."""
    out = ["## Root causes (most explanatory first)", ""]
    for n, c in enumerate(causes, 1):
        signals = [e for e in c.get("explains", ()) if "::" not in e]
        out.append(f"{n}. **{c.get('summary') or c['id']}** (`{c['id']}`"
                   f"{', node ' + str(c['node']) if c.get('node') else ''})"
                   + (f" explains {', '.join(signals)}" if signals else ""))
        conf = c.get("confidence")
        if isinstance(conf, int | float):
            where = f"{c.get('node')} and {c['peer']}" if c.get("peer") else ""
            out.append(f"   - confidence {conf:.2f}" + (f"; between {where}" if where else ""))
        out += [f"   - {e}" for e in c.get("contrast", ())]
        out += [f"   - {e}" for e in c.get("evidence", ())]
        tests = c.get("explains_tests") or []
        if tests:
            out.append(f"   - explains {len(tests)} check(s): "
                       + ", ".join(f"`{t}`" for t in tests))
        for label, key in (("Confirm", "confirm"), ("Fix", "fix")):
            if c.get(key):
                out += ["", f"   {label}:", "",
                        *("   " + line for part in _fence("\n".join(c[key]), "sh")
                          for line in part.splitlines())]
    if not causes:
        out.append("No root cause found.")
    return [*out, ""]


def unexplained_section(unexplained: Sequence[str]) -> list[str]:
    """The ``## Unexplained`` block: failed or flaky checks no ranked cause explains."""
    if not unexplained:
        return ["## Unexplained", "", "Every failed or flaky check is explained by a cause "
                "above.", ""]
    return ["## Unexplained", "", "Failed or flaky checks no ranked cause explains:", "",
            *(f"- `{t}`" for t in unexplained), ""]


def render_markdown(analysis: Analysis,
                    root_causes: Sequence[Mapping[str, Any]] | None = None,
                    unexplained: Sequence[str] = ()) -> str:
    """Render ``analysis.md`` (not yet redacted; the writer redacts); ``root_causes`` are
    ``summary.json``'s entries, shown first when the run ranked any, then the
    ``unexplained`` checks."""
    th = analysis.thresholds
    descriptions = {d.name: d.description for d in analysis.definitions}
    out = [
        f"# netdoctor analysis (run {analysis.run_id})",
        "",
        f"**Verdict: {analysis.verdict}** (score {analysis.score} of {analysis.applicable}; "
        f"confirmed at >= {th.confirmed}, partial at >= {th.partial})",
        "",
        *([f"Undecided signals: {', '.join(analysis.undecided)} (decided {analysis.decided} "
           f"of {analysis.applicable})", ""] if analysis.undecided else []),
        *(root_cause_section(root_causes) if root_causes is not None else []),
        *(unexplained_section(unexplained) if root_causes is not None else []),
        "| Signal | Present | Failing checks |",
        "| --- | --- | --- |",
    ]
    for name, present in analysis.signals.items():
        count = len(analysis.by_signal.get(name, ()))
        shown = ("not applicable: " + analysis.not_applicable.get(name, "")
                 if present is None else "yes" if present else "no")
        out.append(f"| `{name}` | {shown} | {count} |")
    out.append("")
    present_names = [n for n, p in analysis.signals.items() if p]
    if present_names:
        out += ["## Present signals", ""]
    for name in present_names:
        out += [f"### {name}: {descriptions.get(name, '')}".rstrip(": "), ""]
        for result in analysis.by_signal.get(name, ()):
            out += _check(result)
    other = [r for r in analysis.results if r.outcome in ("failed", "error")
             and not any(analysis.signals.get(s) and r.outcome == "failed" for s in r.signals)]
    if other:
        out += ["## Other failures and errors (raise no signal)", ""]
        for result in other:
            out += _check(result)
    flaky = [r for r in analysis.results if r.outcome == "flaky"]
    if flaky:
        out += ["## Flaky checks (passed after retries)", "", *_bullets(flaky, "flaky_reason"), ""]
    unseen = [r for r in analysis.results if r.outcome == "inconclusive"]
    if unseen:
        out += ["## Not observed (inconclusive, raise no signal)", "",
                *_bullets(unseen, "message"), ""]
    if analysis.skipped:
        out += ["## Skipped checks", "", *_bullets(analysis.skipped, "message"), ""]
    counts = {o: sum(1 for r in analysis.results if r.outcome == o)
              for o in ("passed", "flaky", "failed", "error", "skipped", "inconclusive")
              if o != "inconclusive" or unseen}
    out += ["## Checks", "", ", ".join(f"{n} {o}" for o, n in counts.items()), ""]
    if analysis.cluster:
        out += ["## Cluster", "", *_fence(json.dumps(analysis.cluster, indent=2), "json"), ""]
    return "\n".join(out)
