"""Sites, their members and API keys; the instance's accounts (api.md, "Accounts and
keys"). The same operations as the CLI (auth/, sites/service.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from tapioca.api.access import Access, Who, access
from tapioca.api.auth import Email, NewPassword
from tapioca.api.responses import JSONBody
from tapioca.api.runtime import Runtime
from tapioca.auth import accounts, keys
from tapioca.auth.access import Principal
from tapioca.auth.accounts import EMAIL_PATTERN
from tapioca.auth.roles import Role, Scope
from tapioca.errors import TapiocaError
from tapioca.sites.catalog import load_sites
from tapioca.sites.service import (
    DOMAIN_PATTERN,
    TEXT_PATTERN,
    SiteChanges,
    create_site,
    get_site,
    update_site,
)
from tapioca.sites.site import SITE_ID_MAX, SITE_ID_PATTERN

router = APIRouter(tags=["sites"])


# the rules of sites (sites/service.py, sites/site.py), stated in the document; the
# time zone's is added to it (api/openapi.py)
class PageTypeRule(BaseModel):
    pattern: str = Field(max_length=500, pattern="^/")
    page_type: str = Field(min_length=1, max_length=100)


class SiteFields(BaseModel):
    name: str | None = Field(default=None, max_length=200, pattern=TEXT_PATTERN)
    timezone: str | None = Field(default=None, max_length=64)
    domains: list[Annotated[str, Field(pattern=DOMAIN_PATTERN)]] | None = Field(
        default=None, max_length=100
    )
    currency: str | None = Field(default=None, pattern="^[A-Za-z]{3}$")
    page_type_rules: list[PageTypeRule] | None = Field(default=None, max_length=200)
    public: bool | None = Field(default=None, strict=True)
    any_origin: bool | None = Field(default=None, strict=True)
    key_required: bool | None = Field(default=None, strict=True)

    def changes(self) -> SiteChanges:
        rules = None
        if self.page_type_rules is not None:
            rules = [(rule.pattern, rule.page_type) for rule in self.page_type_rules]
        return SiteChanges(
            self.name, self.timezone, self.domains, self.currency, rules, self.public,
            self.any_origin, self.key_required,
        )  # fmt: skip


class SiteIn(SiteFields):
    site_id: str = Field(max_length=SITE_ID_MAX, pattern=SITE_ID_PATTERN)


class MemberIn(BaseModel):
    role: Role


class KeyIn(BaseModel):
    scope: Scope
    name: str | None = Field(default=None, max_length=200, pattern=TEXT_PATTERN)


class AccountIn(BaseModel):
    email: Email
    password: NewPassword
    instance_owner: bool = Field(default=False, strict=True)


EmailPath = Annotated[str, Path(max_length=320, pattern=EMAIL_PATTERN)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _account_id(who: Principal | None) -> str | None:
    return who.account.id if who is not None and who.account is not None else None


@router.get("/api/v1/sites", summary="The sites the caller may see", **access(Access.ACCOUNT))
async def list_sites(request: Request, who: Who) -> JSONBody:
    runtime = _runtime(request)
    assert who is not None
    sites = await load_sites(runtime.store)
    if who.instance_owner:
        roles = dict.fromkeys(sites, Role.OWNER)
    else:
        assert who.account is not None
        roles = await accounts.roles_of(runtime.store, who.account)
    return JSONBody(
        {
            "sites": [
                {**site.as_dict(), "role": roles[s].value}
                for s, site in sites.items()
                if s in roles
            ]
        }
    )


@router.post("/api/v1/sites", status_code=201, summary="A new site", **access(Access.ACCOUNT, 409))
async def post_site(request: Request, who: Who, body: SiteIn) -> JSONBody:
    runtime = _runtime(request)
    changes = body.changes()
    changes.timezone = changes.timezone or "UTC"
    site = await create_site(runtime.store, body.site_id, changes)
    if who is not None and who.account is not None:
        await accounts.set_role(runtime.store, site.id, who.account, Role.OWNER)
    return JSONBody({**site.as_dict(), "role": Role.OWNER.value}, status_code=201)


@router.get("/api/v1/sites/{site_id}", summary="A site's settings", **access(Access.VIEWER))
async def read_site(request: Request, site_id: str) -> JSONBody:
    return JSONBody((await get_site(_runtime(request).store, site_id)).as_dict())


@router.patch("/api/v1/sites/{site_id}", summary="Change a site's settings", **access(Access.ADMIN))
async def patch_site(request: Request, site_id: str, body: SiteFields) -> JSONBody:
    site = await update_site(_runtime(request).store, site_id, body.changes())
    return JSONBody(site.as_dict())


@router.get(
    "/api/v1/sites/{site_id}/members", summary="Who has a role on the site", **access(Access.ADMIN)
)
async def get_members(request: Request, site_id: str) -> JSONBody:
    return JSONBody({"members": await accounts.members_of(_runtime(request).store, site_id)})


async def _may_manage(runtime: Runtime, who: Principal | None, site_id: str, role: Role) -> None:
    """Admins manage viewers; owners manage every role."""
    mine = await runtime.gate.require(who, site_id, Role.ADMIN)
    if mine is not Role.OWNER and role.at_least(Role.ADMIN):
        raise TapiocaError(403, "forbidden", "Only an owner of the site manages admins and owners.")


@router.put(
    "/api/v1/sites/{site_id}/members/{email}",
    summary="Give an account a role on the site",
    **access(Access.ADMIN),
)
async def put_member(
    request: Request, who: Who, site_id: str, email: EmailPath, body: MemberIn
) -> JSONBody:
    runtime = _runtime(request)
    account = await accounts.account_by_email(runtime.store, email)
    current = await accounts.role_on(runtime.store, site_id, account)
    await _may_manage(runtime, who, site_id, body.role)
    if current is not None:
        await _may_manage(runtime, who, site_id, current)
    await accounts.set_role(runtime.store, site_id, account, body.role)
    return JSONBody({"site_id": site_id, "email": account.email, "role": body.role.value})


@router.delete(
    "/api/v1/sites/{site_id}/members/{email}",
    summary="Take an account's role on the site away",
    **access(Access.ADMIN),
)
async def delete_member(request: Request, who: Who, site_id: str, email: EmailPath) -> JSONBody:
    runtime = _runtime(request)
    account = await accounts.account_by_email(runtime.store, email)
    current = await accounts.role_on(runtime.store, site_id, account)
    if current is None or account.instance_owner:
        raise TapiocaError(404, "member_not_found", f"'{account.email}' has no role to take away.")
    await _may_manage(runtime, who, site_id, current)
    await accounts.remove_role(runtime.store, site_id, account)
    return JSONBody({"site_id": site_id, "email": account.email, "role": None})


@router.post(
    "/api/v1/sites/{site_id}/keys",
    status_code=201,
    summary="A new API key (shown once)",
    **access(Access.ADMIN),
)
async def post_key(request: Request, who: Who, site_id: str, body: KeyIn) -> JSONBody:
    created = await keys.create_key(
        _runtime(request).store, site_id, body.scope, body.name, _account_id(who)
    )
    return JSONBody(created, status_code=201, headers={"Cache-Control": "no-store"})


@router.get(
    "/api/v1/sites/{site_id}/keys", summary="The site's keys (no secrets)", **access(Access.ADMIN)
)
async def get_keys(request: Request, site_id: str) -> JSONBody:
    return JSONBody({"keys": await keys.list_keys(_runtime(request).store, site_id)})


@router.delete(
    "/api/v1/sites/{site_id}/keys/{key_id}", summary="Revoke a key", **access(Access.ADMIN)
)
async def delete_key(request: Request, site_id: str, key_id: str) -> JSONBody:
    await keys.revoke_key(_runtime(request).store, site_id, key_id)
    return JSONBody({"key_id": key_id, "revoked": True})


@router.get("/api/v1/users", summary="The instance's accounts", **access(Access.INSTANCE_OWNER))
async def get_users(request: Request) -> JSONBody:
    found = await accounts.list_accounts(_runtime(request).store)
    return JSONBody({"users": [account.as_dict() for account in found]})


@router.post(
    "/api/v1/users", status_code=201, summary="A new account", **access(Access.INSTANCE_OWNER, 409)
)
async def post_user(request: Request, body: AccountIn) -> JSONBody:
    account = await accounts.create_account(
        _runtime(request).store, body.email, body.password, instance_owner=body.instance_owner
    )
    return JSONBody(account.as_dict(), status_code=201)


@router.delete(
    "/api/v1/users/{email}", summary="Delete an account", **access(Access.INSTANCE_OWNER, 409)
)
async def delete_user(request: Request, email: EmailPath) -> JSONBody:
    account = await accounts.delete_account(_runtime(request).store, email)
    return JSONBody({**account.as_dict(), "deleted": True})
