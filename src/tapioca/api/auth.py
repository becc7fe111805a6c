"""Signing in: access and refresh tokens, registration, invitations, the first owner's
setup link (api.md, "Accounts and keys")."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from tapioca.api.access import Access, Who, access
from tapioca.api.responses import JSONBody
from tapioca.api.runtime import Runtime
from tapioca.auth import accounts
from tapioca.auth.accounts import EMAIL_PATTERN, Account
from tapioca.auth.passwords import MAX_LENGTH, MIN_LENGTH
from tapioca.auth.roles import Role
from tapioca.errors import ErrorDetail, TapiocaError, validation_error

router = APIRouter(tags=["accounts"])

_MAX_BODY = 16 * 1024


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type)
    expires_in: int


class RefreshIn(BaseModel):
    refresh_token: str = Field(max_length=200)


# the rules of accounts (auth/accounts.py, auth/passwords.py), stated in the document
Email = Annotated[str, Field(max_length=320, pattern=EMAIL_PATTERN)]
NewPassword = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]


class RegisterIn(BaseModel):
    email: Email
    password: NewPassword
    invitation: str | None = Field(default=None, max_length=200)


class SetupIn(BaseModel):
    token: str = Field(max_length=200)
    email: Email
    password: NewPassword


class InvitationIn(BaseModel):
    email: Email
    site_id: str | None = Field(default=None, max_length=100)
    role: Role | None = None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _pair(runtime: Runtime, account_id: str, refresh: str | None = None) -> dict[str, Any]:
    token = runtime.signer.issue(account_id)
    if refresh is None:
        refresh = await accounts.issue_refresh(runtime.store, account_id, runtime.refresh_ttl)
    return {
        "access_token": token.token,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": token.expires_in,
    }


async def _credentials(request: Request) -> tuple[str, str]:
    """Email and password from JSON ``{"email","password"}`` or the OAuth2 password form
    (``username``, ``password``)."""
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise TapiocaError(413, "payload_too_large", f"At most {_MAX_BODY} bytes.")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    values: dict[str, Any]
    if kind == "application/x-www-form-urlencoded":
        values = dict(parse_qsl(body.decode("utf-8", "replace")))
        values.setdefault("email", values.get("username"))
    else:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise validation_error([ErrorDetail("body", "JSON {email, password}")]) from exc
        values = parsed if isinstance(parsed, dict) else {}
    email, password = values.get("email"), values.get("password")
    problems = [
        ErrorDetail(name, "required, a string")
        for name, value in (("email", email), ("password", password))
        if not isinstance(value, str) or not value
    ]
    if problems:
        raise validation_error(problems)
    assert isinstance(email, str) and isinstance(password, str)
    return email, password


def _strings(*names: str) -> dict[str, Any]:
    """The schema of an object of the required non-empty strings ``names``."""
    return {
        "type": "object",
        "required": list(names),
        "properties": {name: {"type": "string", "minLength": 1} for name in names},
    }


_TOKEN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _strings("email", "password")},
            "application/x-www-form-urlencoded": {"schema": _strings("username", "password")},
        },
    }
}


def _open_with(extra: dict[str, Any], *errors: int) -> dict[str, Any]:
    kwargs = access(Access.OPEN, *errors)
    kwargs["openapi_extra"] = {**kwargs["openapi_extra"], **extra}
    return kwargs


@router.post(
    "/api/v1/auth/token",
    response_model=TokenPair,
    summary="Sign in: an access token and a refresh token",
    **_open_with(_TOKEN_BODY, 401, 429),
)
async def sign_in(request: Request) -> JSONBody:
    runtime = _runtime(request)
    email, password = await _credentials(request)
    ip = request.client.host if request.client else "unknown"
    folded = email.strip().lower()
    await runtime.limits.sign_in_allowed(folded, ip)
    account = await accounts.sign_in(runtime.store, email, password)
    if account is None:
        await runtime.limits.sign_in_failed(folded, ip)
        raise TapiocaError(401, "invalid_credentials", "Wrong email or password.")
    return JSONBody(await _pair(runtime, account.id))


@router.post(
    "/api/v1/auth/refresh",
    response_model=TokenPair,
    summary="A new token pair for a refresh token (which is spent)",
    **access(Access.OPEN, 401),
)
async def refresh(request: Request, body: RefreshIn) -> JSONBody:
    runtime = _runtime(request)
    account_id, token = await accounts.rotate_refresh(
        runtime.store, body.refresh_token, runtime.refresh_ttl
    )
    return JSONBody(await _pair(runtime, account_id, token))


@router.post(
    "/api/v1/auth/logout",
    summary="Revoke a refresh token and every token refreshed from it",
    **access(Access.OPEN),
)
async def logout(request: Request, body: RefreshIn) -> JSONBody:
    await accounts.log_out(_runtime(request).store, body.refresh_token)
    return JSONBody({"status": "logged_out"})


@router.post(
    "/api/v1/auth/register",
    status_code=201,
    summary="A new account: with an invitation, or when sign-up is on",
    **access(Access.OPEN, 403, 409),
)
async def register(request: Request, body: RegisterIn) -> JSONBody:
    runtime = _runtime(request)
    account = await accounts.register(
        runtime.store, body.email, body.password, body.invitation, runtime.settings.signup
    )
    return JSONBody(account.as_dict(), status_code=201)


@router.get(
    "/api/v1/auth/me", summary="The signed-in account and its roles", **access(Access.ACCOUNT)
)
async def me(request: Request, who: Who) -> JSONBody:
    runtime = _runtime(request)
    assert who is not None
    if who.account is None:  # this machine's CLI
        return JSONBody({"account": None, "local": True, "instance_owner": True, "sites": {}})
    return JSONBody(await _me(runtime, who.account))


async def _me(runtime: Runtime, account: Account) -> dict[str, Any]:
    roles = await accounts.roles_of(runtime.store, account)
    return {
        "account": account.as_dict(),
        "instance_owner": account.instance_owner,
        "sites": {site: role.value for site, role in roles.items()},
    }


@router.post(
    "/api/v1/invitations",
    status_code=201,
    summary="Invite someone to register (with a role on a site)",
    **access(Access.ACCOUNT),
)
async def create_invitation(request: Request, who: Who, body: InvitationIn) -> JSONBody:
    runtime = _runtime(request)
    if body.site_id is None:
        runtime.gate.require_instance_owner(who)
    else:
        mine = await runtime.gate.require(who, body.site_id, Role.ADMIN)
        role = body.role or Role.VIEWER
        if role.rank >= mine.rank and mine is not Role.OWNER:
            raise TapiocaError(403, "forbidden", "Admins invite with the viewer role.")
    by = who.account.id if who is not None and who.account is not None else None
    token, expires = await accounts.invite(
        runtime.store,
        body.email,
        body.site_id,
        (body.role or Role.VIEWER) if body.site_id else None,
        by,
        timedelta(days=7),
    )
    return JSONBody(
        {
            "invitation": token,
            "email": accounts.normalize_email(body.email),
            "site_id": body.site_id,
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
        },
        status_code=201,
    )


@router.post(
    "/api/v1/auth/setup",
    status_code=201,
    response_model=TokenPair,
    summary="The first owner of an empty instance, from the setup link",
    **access(Access.OPEN, 403, 409),
)
async def setup(request: Request, body: Annotated[SetupIn, Body()]) -> JSONBody:
    runtime = _runtime(request)
    account = await accounts.complete_setup(runtime.store, body.token, body.email, body.password)
    return JSONBody(await _pair(runtime, account.id), status_code=201)


_SETUP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tapioca setup</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem}
button{margin-top:1rem;padding:.5rem 1rem}#out{margin-top:1rem;white-space:pre-wrap}</style>
</head><body><h1>Tapioca: the first owner</h1>
<p>Make the account that owns this instance. The link works until an owner exists.</p>
<form id="f"><label for="email">Email</label><input id="email" type="email" required>
<label for="password">Password (at least 10 characters)</label>
<input id="password" type="password" minlength="10" required>
<button type="submit">Create the owner</button></form><div id="out"></div>
<script>
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = new URLSearchParams(location.search).get("token") || "";
  const r = await fetch("api/v1/auth/setup", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token, email: document.getElementById("email").value,
                          password: document.getElementById("password").value})});
  const answer = await r.json();
  document.getElementById("out").textContent = r.ok
    ? "Done. Sign in with POST /api/v1/auth/token; the API is described at /docs."
    : answer.error.message;
});
</script></body></html>"""


@router.get("/setup", include_in_schema=False, **access(Access.OPEN))
async def setup_page() -> HTMLResponse:
    return HTMLResponse(_SETUP_PAGE, headers={"Cache-Control": "no-store"})
