"""Label and field selectors, parsed as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:\s(in|notin)\s*\(([^)]*)\))?\s*$")


class SelectorError(ValueError):
    """A selector string the API server would reject."""


def _split_terms(text: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    for op in ("!=", "==", "="):
        if op in term and " in " not in term and " notin " not in term:
            key, _, value = term.partition(op)
            key, value = key.strip(), value.strip()
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    m = _SET_RE.match(term)
    if not m:
        raise SelectorError(f"unable to parse requirement: {term!r}")
    neg, key, op, values = m.groups()
    if op is None:
        if neg:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    allowed = {v.strip() for v in values.split(",") if v.strip()}
    if op == "in":
        return lambda labels: labels.get(key) in allowed
    return lambda labels: labels.get(key) not in allowed


def label_matcher(selector: str | None) -> Callable[[Mapping[str, str]], bool]:
    """Compile a label selector such as ``app=x,tier in (a,b),!legacy``."""
    if not selector:
        return lambda _labels: True
    checks = [_label_term(t) for t in _split_terms(selector)]
    return lambda labels: all(c(labels) for c in checks)


def match_labels(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Evaluate a structured LabelSelector (matchLabels + matchExpressions)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _field(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matcher(selector: str | None) -> Predicate:
    """Compile a field selector such as ``spec.nodeName=worker-1,status.phase!=Failed``."""
    if not selector:
        return lambda _obj: True
    checks: list[Predicate] = []
    for term in _split_terms(selector):
        neg = "!=" in term
        path, _, value = term.partition("!=" if neg else ("==" if "==" in term else "="))
        path, value = path.strip(), value.strip()
        if not path:
            raise SelectorError(f"invalid field selector: {term!r}")
        checks.append(_field_check(path, value, neg))
    return lambda obj: all(c(obj) for c in checks)


def _field_check(path: str, value: str, negate: bool) -> Predicate:
    if negate:
        return lambda obj: _field(obj, path) != value
    return lambda obj: _field(obj, path) == value
