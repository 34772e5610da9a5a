"""Bearer-token authentication, ServiceAccount tokens, and authorization.

Tokens of fixed users carry static restrictions (``forbidden``, ``allowed_verbs``); tokens
with ``rbac`` set (ServiceAccounts, and the admin through ``system:masters``) are decided
by the :class:`~netdoctor.lab.api.rbac.Authorizer` from the cluster's RBAC objects.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from netdoctor.lab.api.rbac import AUTHENTICATED, MASTERS, SA_PREFIX, Attributes, Authorizer
from netdoctor.lab.api.resources import Resource, resource
from netdoctor.lab.api.store import ApiError, Obj, Store

SERVICE_ACCOUNTS = resource("", "serviceaccounts")
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600


@dataclass(frozen=True)
class Access:
    """Who a token belongs to and what it may do.

    Attributes:
        user: The user name shown in "forbidden" messages.
        forbidden: ``(verb, resource)`` pairs refused, where resource is a plural such as
            ``pods`` or ``pods/exec``; ``"*"`` matches any verb or any resource.
        allowed_verbs: When set, every other verb is refused.
        groups: The user's groups (``system:masters`` is allowed everything).
        rbac: Decide through the RBAC objects (after the static restrictions above).
        service_account: ``(namespace, name, uid)`` of the ServiceAccount the token was
            issued for: the token stops working when that account is deleted.
        expires: ``time.time()`` after which the token is rejected (0: never).
    """

    user: str
    forbidden: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    allowed_verbs: frozenset[str] | None = None
    groups: tuple[str, ...] = ()
    rbac: bool = False
    service_account: tuple[str, str, str] | None = None
    expires: float = 0.0

    @classmethod
    def admin(cls, user: str = "kubernetes-admin") -> Access:
        """Unrestricted access, as kubeadm's admin.conf user (group ``system:masters``)."""
        return cls(user, groups=(MASTERS, AUTHENTICATED), rbac=True)

    def permits(self, verb: str, resource: str) -> bool:
        """Whether ``verb`` on ``resource`` (``plural`` or ``plural/sub``) is allowed."""
        if self.allowed_verbs is not None and verb not in self.allowed_verbs:
            return False
        return not any(v in (verb, "*") and r in (resource, "*") for v, r in self.forbidden)


UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")


def authenticate(tokens: dict[str, Access], header: str | None,
                 store: Store | None = None) -> Access:
    """The access for an ``Authorization`` header value.

    Raises:
        ApiError: 401 for a missing, unknown or expired bearer token, or one whose
            ServiceAccount is gone.
    """
    scheme, _, token = (header or "").partition(" ")
    access = tokens.get(token.strip()) if scheme.lower() == "bearer" else None
    if access is None or (access.expires and time.time() > access.expires):
        raise UNAUTHORIZED
    if access.service_account is not None and store is not None:
        ns, name, uid = access.service_account
        sa = store.peek(SERVICE_ACCOUNTS, ns, name)
        if sa is None or sa["metadata"].get("uid") != uid:
            raise UNAUTHORIZED
    return access


def service_account_access(sa: Obj, seconds: float = 0.0) -> Access:
    """The identity a token of ServiceAccount ``sa`` authenticates as."""
    ns, name = sa["metadata"]["namespace"], sa["metadata"]["name"]
    return Access(f"{SA_PREFIX}{ns}:{name}",
                  groups=("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                          AUTHENTICATED),
                  rbac=True, service_account=(ns, name, sa["metadata"]["uid"]),
                  expires=time.time() + seconds if seconds else 0.0)


def issue_token(tokens: dict[str, Access], store: Store, namespace: str, name: str,
                body: Obj | None) -> Obj:
    """``POST serviceaccounts/NAME/token`` (TokenRequest): a new bearer token.

    Raises:
        ApiError: 404 when the ServiceAccount does not exist.
    """
    sa = store.get(SERVICE_ACCOUNTS, namespace, name)
    spec = dict((body or {}).get("spec") or {})
    seconds = max(int(spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS), MIN_TOKEN_SECONDS)
    token = secrets.token_urlsafe(32)
    tokens[token] = service_account_access(sa, seconds)
    expiry = datetime.fromtimestamp(time.time() + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": None},
            "spec": {"audiences": spec.get("audiences") or ["https://kubernetes.default.svc"],
                     "expirationSeconds": seconds, "boundObjectRef": spec.get("boundObjectRef")},
            "status": {"token": token, "expirationTimestamp": expiry}}


def authorize_path(access: Access, verb: str, path: str,
                   authorizer: Authorizer | None) -> None:
    """Refuse a non-resource request (discovery) the RBAC way.

    Raises:
        ApiError: 403 Forbidden.
    """
    if not access.rbac or authorizer is None:
        return
    if authorizer.allows(Attributes(access.user, access.groups, verb, "", "", None, None, None,
                                    path=path)):
        return
    raise ApiError(403, "Forbidden",
                   f'forbidden: User "{access.user}" cannot {verb} path "{path}"', {})


def authorize(access: Access, verb: str, res: Resource, subresource: str | None,
              namespace: str | None, name: str | None,
              authorizer: Authorizer | None = None) -> None:
    """Refuse a request the way the RBAC authorizer words it.

    Raises:
        ApiError: 403 Forbidden.
    """
    target = f"{res.plural}/{subresource}" if subresource else res.plural
    if access.permits(verb, target) and (not access.rbac or authorizer is None or
                                         authorizer.allows(Attributes(
                                             access.user, access.groups, verb, res.group,
                                             res.plural, subresource, namespace, name))):
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


def self_access_review(access: Access, authorizer: Authorizer, body: Obj | None) -> Obj:
    """``POST selfsubjectaccessreviews``: may the caller do what ``spec`` describes?"""
    spec = dict((body or {}).get("spec") or {})
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if ra:
        verb = str(ra.get("verb", ""))
        target = str(ra.get("resource", "")) + (f"/{ra['subresource']}"
                                                if ra.get("subresource") else "")
        attrs = Attributes(access.user, access.groups, verb, str(ra.get("group", "")),
                           str(ra.get("resource", "")), ra.get("subresource") or None,
                           ra.get("namespace") or None, ra.get("name") or None)
        static_ok = access.permits(verb, target)
    elif nra:
        attrs = Attributes(access.user, access.groups, str(nra.get("verb", "")), "", "", None,
                           None, None, path=str(nra.get("path", "")))
        static_ok = True
    else:
        raise ApiError(422, "Invalid", "SelfSubjectAccessReview.authorization.k8s.io is invalid: "
                       "spec: Invalid value: exactly one of nonResourceAttributes or "
                       "resourceAttributes must be specified")
    allowed = static_ok and (not access.rbac or authorizer.allows(attrs, record=False))
    status: Obj = {"allowed": allowed}
    if allowed and access.rbac:
        status["reason"] = "allowed by RBAC"
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
