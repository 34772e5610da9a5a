"""Bearer-token authentication and a small authorizer for "forbidden" scenarios."""

from __future__ import annotations

from dataclasses import dataclass, field

from netdoctor.lab.api.resources import Resource
from netdoctor.lab.api.store import ApiError


@dataclass(frozen=True)
class Access:
    """Who a token belongs to and what it may do.

    Attributes:
        user: The user name shown in "forbidden" messages.
        forbidden: ``(verb, resource)`` pairs refused, where resource is a plural such as
            ``pods`` or ``pods/exec``; ``"*"`` matches any verb or any resource.
        allowed_verbs: When set, every other verb is refused.
    """

    user: str
    forbidden: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    allowed_verbs: frozenset[str] | None = None

    @classmethod
    def admin(cls, user: str = "kubernetes-admin") -> Access:
        """Unrestricted access."""
        return cls(user)

    def permits(self, verb: str, resource: str) -> bool:
        """Whether ``verb`` on ``resource`` (``plural`` or ``plural/sub``) is allowed."""
        if self.allowed_verbs is not None and verb not in self.allowed_verbs:
            return False
        return not any(v in (verb, "*") and r in (resource, "*") for v, r in self.forbidden)


UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")


def authenticate(tokens: dict[str, Access], header: str | None) -> Access:
    """The access for an ``Authorization`` header value.

    Raises:
        ApiError: 401 for a missing or unknown bearer token.
    """
    scheme, _, token = (header or "").partition(" ")
    access = tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    if access is None:
        raise UNAUTHORIZED
    return access


def authorize(access: Access, verb: str, res: Resource, subresource: str | None,
              namespace: str | None, name: str | None) -> None:
    """Refuse a request the way the RBAC authorizer words it.

    Raises:
        ApiError: 403 Forbidden.
    """
    target = f"{res.plural}/{subresource}" if subresource else res.plural
    if access.permits(verb, target):
        return
    what = f"{res.plural}.{res.group}" if res.group else res.plural
    subject = f'{what} "{name}"' if name else what
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (f'{subject} is forbidden: User "{access.user}" cannot {verb} resource '
               f'"{target}" in API group "{res.group}" {scope}')
    details = {"group": res.group, "kind": res.plural}
    if name:
        details = {"name": name, **details}
    raise ApiError(403, "Forbidden", message, details)
