"""What each route needs, declared on the route, and the dependencies that check it.

Every route of the app states its access level (``access(...)``); create_app refuses to
build an app with a route that does not (deny by default), and the authorization tests
are generated from the same table. The checks themselves are in auth/access.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount

from tapioca.api.errors import ErrorBody
from tapioca.auth.access import Gate, Principal, auth_required, forbidden, forwarded
from tapioca.auth.ratelimit import RateLimits
from tapioca.auth.roles import Role

ACCESS_KEY = "x-tapioca-access"


class Access(StrEnum):
    OPEN = "open"  # anyone: health, docs, signing in
    READ = "site:read"  # a site's reports: a credential for it, or a public site
    ACCOUNT = "account"  # any signed-in account
    VIEWER = "site:viewer"  # a role on the site in the path
    ADMIN = "site:admin"
    OWNER = "site:owner"
    INSTANCE_OWNER = "instance:owner"
    LOCAL_OR_ADMIN = "local-or-owner"  # this machine, or an owner of the instance


async def principal(request: Request) -> Principal | None:
    """The request's principal (None: anonymous), resolved once per request."""
    if "principal" in request.scope.setdefault("state", {}):
        found: Principal | None = request.scope["state"]["principal"]
        return found
    gate: Gate = request.app.state.gate
    client = request.client.host if request.client else None
    who = await gate.principal(request.headers, client)
    request.scope["state"]["principal"] = who
    return who


Who = Annotated[Principal | None, Depends(principal)]


def _gate(request: Request) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


async def _limit_reports(request: Request, who: Principal | None) -> None:
    if who is not None and who.local:
        return  # this machine's CLI
    limits: RateLimits = request.app.state.limits
    client = request.client.host if request.client else "unknown"
    await limits.reports(who.limit_key if who is not None else f"ip:{client}")


async def _read(request: Request, who: Who) -> None:
    await _gate(request).read(who, request.query_params.get("site_id"))
    await _limit_reports(request, who)


async def _account(request: Request, who: Who) -> None:
    _gate(request).account_of(who)
    await _limit_reports(request, who)


def _site_role(need: Role) -> Any:
    async def check(request: Request, who: Who) -> None:
        site_id = request.path_params.get("site_id")
        assert isinstance(site_id, str), "a site route has {site_id} in its path"
        await _gate(request).require(who, site_id, need)
        await _limit_reports(request, who)

    return check


async def _instance_owner(request: Request, who: Who) -> None:
    _gate(request).require_instance_owner(who)


LOOPBACK = frozenset({"127.0.0.1", "::1"})


async def _local_or_owner(request: Request) -> None:
    client = request.client.host if request.client else None
    if client in LOOPBACK and not _forwarded(request):
        return
    who = await principal(request)
    if who is None:
        raise auth_required("/metrics answers this machine, or an owner of the instance.")
    if not who.instance_owner:
        raise forbidden("/metrics answers this machine, or an owner of the instance.")


def _forwarded(request: Request) -> bool:
    """A request a proxy on this machine passed on (it is not this machine's own)."""
    return forwarded(request.headers)


_CHECKS: dict[Access, Any] = {
    Access.READ: _read,
    Access.ACCOUNT: _account,
    Access.VIEWER: _site_role(Role.VIEWER),
    Access.ADMIN: _site_role(Role.ADMIN),
    Access.OWNER: _site_role(Role.OWNER),
    Access.INSTANCE_OWNER: _instance_owner,
    Access.LOCAL_OR_ADMIN: _local_or_owner,
}

_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {"basic": []}]


# The answers of access checks and of the account routes (the errors every route may
# give are api/errors.py's ERROR_RESPONSES).
_ERRORS = {
    401: "No credential, or one that is not valid: unauthorized, invalid_token, "
    "invalid_credentials, invalid_key, invalid_refresh_token (WWW-Authenticate)",
    403: "The credential does not allow this: forbidden (or an invitation, setup link or "
    "sign-up that is not open)",
    409: "Conflicts with what exists: account_exists, site_exists, last_owner, already_set_up",
    429: "rate_limited: too many requests, or failed sign-ins (Retry-After)",
}
# the levels whose checks count the caller's requests (_limit_reports)
_LIMITED = frozenset({Access.READ, Access.ACCOUNT, Access.VIEWER, Access.ADMIN, Access.OWNER})


def access(level: Access, *errors: int) -> dict[str, Any]:
    """Keyword arguments of a route decorator: the check of ``level`` and its
    declaration (in the OpenAPI document too, with the credentials it takes and the
    answers of the check: 401, 403, 429); ``errors``: more statuses the route answers."""
    extra: dict[str, Any] = {ACCESS_KEY: level.value}
    statuses = set(errors)
    if level is not Access.OPEN:
        extra["security"] = _SECURITY if level is Access.READ else [{"bearer": []}]
        if level is Access.LOCAL_OR_ADMIN:  # this machine needs none
            extra["security"] = [{}, *extra["security"]]
        statuses |= {401, 403}
    if level in _LIMITED:
        statuses.add(429)
    check = _CHECKS.get(level)
    return {
        "dependencies": [Depends(check)] if check is not None else [],
        "openapi_extra": extra,
        "responses": {
            status: {"model": ErrorBody, "description": _ERRORS[status]}
            for status in sorted(statuses)
        },
    }


def access_of(route: BaseRoute) -> Access | None:
    """The access level a route declares (None: it declares none)."""
    if isinstance(route, APIRoute) and route.openapi_extra:
        level = route.openapi_extra.get(ACCESS_KEY)
        return Access(level) if level else None
    if isinstance(route, Mount) and route.path.startswith("/docs"):
        return Access.OPEN  # the documentation pages' scripts and styles
    return None


def every_route(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes of an app, those of the routers it includes among them."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from every_route(included.routes)
        else:
            yield route


def undeclared(routes: Iterable[BaseRoute]) -> list[str]:
    """Routes without an access level, by path (FastAPI's own /openapi.json is open)."""
    return [
        getattr(route, "path", repr(route))
        for route in every_route(routes)
        if access_of(route) is None and getattr(route, "path", "") != "/openapi.json"
    ]
