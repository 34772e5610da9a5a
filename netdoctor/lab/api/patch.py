"""The three patch formats the API server accepts.

JSON merge patch (RFC 7386), strategic merge patch (merge patch where known lists
merge by a key, plus the ``$patch``/``$retainKeys``/``$setElementOrder`` directives
kubectl apply sends) and JSON patch (RFC 6902).
"""

from __future__ import annotations

import copy
from typing import Any

from netdoctor.lab.api.store import ApiError

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Lists that the Kubernetes types declare with patchStrategy "merge", by their patchMergeKey.
# Every other list is atomic and replaced as a whole.
MERGE_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "conditions": "type", "hostAliases": "ip",
    "ownerReferences": "uid", "topologySpreadConstraints": "topologyKey",
    "readinessGates": "conditionType",
}
# Lists of scalars that merge as a set.
MERGE_SCALAR_LISTS = {"finalizers"}


def bad_request(message: str) -> ApiError:
    """The 400 a malformed patch earns."""
    return ApiError(400, "BadRequest", message)


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch and return the result (inputs are not changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _merge_key(field: str, items: list[Any]) -> str | None:
    # "ports" merges by containerPort in a container and by port in a Service.
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    if field in MERGE_SCALAR_LISTS:
        return target + [v for v in patch if v not in target]
    key = _merge_key(field, target + patch)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [strategic_merge(None, i) for i in patch]
    out = copy.deepcopy(target)
    for item in patch:
        directive = item.get("$patch")
        idx = next((n for n, cur in enumerate(out)
                    if isinstance(cur, dict) and cur.get(key) == item.get(key)), None)
        if directive == "delete":
            if idx is not None:
                out.pop(idx)
        elif directive == "replace" or idx is None:
            body = {k: v for k, v in item.items() if k != "$patch"}
            if idx is None:
                out.append(strategic_merge(None, body))
            else:
                out[idx] = strategic_merge(None, body)
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out


def strategic_merge(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch and return the result (inputs are not changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    base = {} if directive == "replace" or not isinstance(target, dict) else target
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.partition("/")[2]
            out[field] = [v for v in out.get(field) or [] if v not in value]
        elif value is None:
            out.pop(key, None)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _merge_list(key, out[key], value)
        else:
            merged = strategic_merge(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
    if isinstance(patch.get("$retainKeys"), list):
        keep = set(patch["$retainKeys"])
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for part in parts[:-1]:
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise bad_request(f"path not found: /{'/'.join(parts)}") from err
    return cur


def _index(container: list[Any], part: str, *, adding: bool) -> int:
    if adding and part == "-":
        return len(container)
    try:
        idx = int(part)
    except ValueError as err:
        raise bad_request(f"invalid array index: {part!r}") from err
    if not 0 <= idx <= len(container) - (0 if adding else 1):
        raise bad_request(f"array index out of range: {idx}")
    return idx


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    try:
        if isinstance(parent, list):
            return parent[_index(parent, parts[-1], adding=False)]
        return parent[parts[-1]]
    except (KeyError, TypeError) as err:
        raise bad_request(f"path not found: /{'/'.join(parts)}") from err


def _remove(doc: Any, parts: list[str]) -> Any:
    value = _get(doc, parts)
    parent = _parent(doc, parts)
    if isinstance(parent, list):
        parent.pop(_index(parent, parts[-1], adding=False))
    else:
        del parent[parts[-1]]
    return value


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    if isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], adding=True), value)
    elif isinstance(parent, dict):
        parent[parts[-1]] = value
    else:
        raise bad_request(f"path not found: /{'/'.join(parts)}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch and return the result (``target`` is not changed).

    Raises:
        ApiError: 400 for a malformed patch, 422 when a ``test`` operation fails.
    """
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        kind, path = op.get("op"), _pointer(op["path"])
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # replace requires the target to exist
            if path:
                _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value {op['path']} failed")
        else:
            raise bad_request(f"unknown json patch operation: {kind!r}")
    return doc


def apply_patch(content_type: str, target: Obj, patch: Any) -> Obj:
    """Apply ``patch`` of the given content type to ``target``.

    Raises:
        ApiError: 415 for an unsupported patch type (including server-side apply),
            400/422 for a patch that cannot be applied.
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind == MERGE_PATCH:
        result = merge_patch(target, patch)
    elif kind == STRATEGIC_PATCH:
        result = strategic_merge(target, patch)
    elif kind == JSON_PATCH:
        result = json_patch(target, patch)
    else:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types "
                       f"include: {JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}")
    if not isinstance(result, dict):
        raise bad_request("the patch does not result in an object")
    return result
