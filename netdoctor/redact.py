"""Scrub credentials from text and data before anything reaches a report.

Covers bearer tokens, JWTs (service-account tokens), ``token``/``client-key-data``/``password``
style key-value pairs in YAML, JSON, INI and command-line form, and every value under a
Secret's ``data``/``stringData``.

Example:
    >>> redact("Authorization: Bearer abc.def")
    'Authorization: Bearer <redacted>'
    >>> redact("client-key-data: LS0tLS1CRUdJTi...")
    'client-key-data: <redacted>'
"""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "<redacted>"

_SENSITIVE_KEYS = (
    r"token|id-token|refresh-token|access-token|auth-token|client-key-data|client-key|"
    r"password|passwd|secret|api-key|apikey"
)
_KEY_RE = re.compile(rf"^(?:{_SENSITIVE_KEYS})$|_token$|-token$|_password$", re.IGNORECASE)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {MASK}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # "key": "value" (JSON)
    (re.compile(rf'(?i)("(?:[\w-]*[_-])?(?:{_SENSITIVE_KEYS})"\s*:\s*)"(?:[^"\\]|\\.)*"'),
     rf'\1"{MASK}"'),
    # key: value / key=value (YAML, INI, env, --flag=value)
    (re.compile(rf"(?im)((?:^|[\s{{,;])-{{0,2}}(?:[\w-]*[_-])?(?:{_SENSITIVE_KEYS})\s*[:=][ \t]*)"
                rf"(?![\s\"{{\[]|{MASK})[^\s,;}}\"']+"),
     rf"\1{MASK}"),
    # --flag value (command lines)
    (re.compile(rf"(?i)((?:^|\s)--(?:[\w-]*-)?(?:{_SENSITIVE_KEYS})[ \t]+)(?!-|{MASK})\S+"),
     rf"\1{MASK}"),
)
_SECRET_KIND = re.compile(r"(?m)^\s*kind:\s*[\"']?Secret[\"']?\s*$")
_DATA_BLOCK = re.compile(r"^(\s*)(data|stringData):\s*$")
_ENTRY = re.compile(r"^(\s*[^\s:#][^:]*:\s*)(\S.*)$")


def _redact_secret_yaml(text: str) -> str:
    """Replace every value in ``data:``/``stringData:`` blocks of YAML Secrets."""
    if not _SECRET_KIND.search(text):
        return text
    out: list[str] = []
    block_indent: int | None = None
    for line in text.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if line.strip() and indent <= block_indent and not line.lstrip().startswith("#"):
                block_indent = None
            else:
                m = _ENTRY.match(line.rstrip("\n"))
                if m:
                    line = f"{m.group(1)}{MASK}" + ("\n" if line.endswith("\n") else "")
                out.append(line)
                continue
        m = _DATA_BLOCK.match(line.rstrip("\n"))
        if m:
            block_indent = len(m.group(1))
        out.append(line)
    return "".join(out)


def redact_data(value: Any) -> Any:
    """Redact a JSON-like structure: sensitive keys, Secret data, and every string in it."""
    if isinstance(value, dict):
        is_secret = value.get("kind") == "Secret"
        result: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _KEY_RE.search(key) and isinstance(item, str | int):
                result[key] = MASK
            elif is_secret and key in ("data", "stringData") and isinstance(item, dict):
                result[key] = dict.fromkeys(item, MASK)
            else:
                result[key] = redact_data(item)
        return result
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def redact(text: str) -> str:
    """Return ``text`` with credentials replaced by ``<redacted>``.

    JSON documents are redacted structurally (so Secret ``data`` is caught whatever the layout);
    everything else line by line with patterns.
    """
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and '"kind"' in stripped:
        try:
            doc = json.loads(stripped)
        except ValueError:
            pass
        else:
            return json.dumps(redact_data(doc), indent=2)
    text = _redact_secret_yaml(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
