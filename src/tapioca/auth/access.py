"""Who is asking (a principal, from the request's credential) and what they may do on a
site. Deny by default: every route states what it needs (api/access.py), and these
checks are the only places that grant anything.

Answers: no credential → 401; a credential that is not valid (expired, tampered with,
revoked) → 401; a valid one without the right → 403 where the caller may see the site,
404 where saying 403 would tell that a private site exists."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tapioca.auth.accounts import Account, get_account, role_on
from tapioca.auth.keys import ApiKey, KeyRing, is_key
from tapioca.auth.roles import Role, Scope
from tapioca.auth.tokens import InvalidToken, TokenSigner, looks_like_jwt
from tapioca.errors import ErrorDetail, TapiocaError, invalid_parameter, not_found
from tapioca.sites.catalog import SiteCatalog
from tapioca.sites.site import SITE_ID_RULE, valid_site_id
from tapioca.storage.base import Params, ReadStore, Rows, Store

LOCAL_PREFIX = "tpl_"


@dataclass(frozen=True, slots=True)
class Principal:
    """An account (from an access token), an API key, or this machine's CLI (the local
    admin credential of the embedded data directory)."""

    account: Account | None = None
    key: ApiKey | None = None
    local: bool = False

    @property
    def instance_owner(self) -> bool:
        return self.local or (self.account is not None and self.account.instance_owner)

    def reads_any_site_row(self, site_id: str) -> bool:
        """May read the site's reports whatever its row says (public or not, members):
        an owner of the instance, or a read key of that site."""
        if self.instance_owner:
            return True
        return self.key is not None and self.key.site_id == site_id and self.key.scope is Scope.READ

    @property
    def limit_key(self) -> str:
        """Whose allowance a request spends (rate limits)."""
        if self.account is not None:
            return f"account:{self.account.id}"
        if self.key is not None:
            return f"key:{self.key.id}"
        return "local"


LOCAL = Principal(local=True)


def auth_required(
    message: str = "This needs a credential: an access token or an API key.",
) -> TapiocaError:
    return TapiocaError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="tapioca"'}
    )


def invalid_token(message: str) -> TapiocaError:
    return TapiocaError(
        401,
        "invalid_token",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="tapioca", error="invalid_token"'},
    )


def forbidden(message: str) -> TapiocaError:
    return TapiocaError(403, "forbidden", message)


def site_not_found(site_id: str) -> TapiocaError:
    return not_found("site_not_found", f"Site '{site_id[:100]}' does not exist.", "site_id")


def credential_of(headers: Mapping[str, str]) -> str | None:
    """The credential a request carries: ``Authorization: Bearer``, ``X-Api-Key``, or
    HTTP Basic with the key as user name (Segment's convention; a key as password is
    taken too). Header names in lower case."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            return value
        if scheme == "basic" and value:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise invalid_token("The Basic credential is not base64 of user:password.") from exc
            return user or password or None
        raise invalid_token("Authorization takes Bearer <token or key> or Basic <key:>.")
    return headers.get("x-api-key") or None


class PrimaryFirst:
    """Where access checks read: the primary, so that a revoked key or a deleted account
    stops counting at once; while the primary does not answer, the read replicas that
    the reports themselves read from (nothing can be revoked meanwhile)."""

    def __init__(self, primary: Store, replicas: ReadStore) -> None:
        self._primary = primary
        self._replicas = replicas

    async def fetch(self, sql: str, params: Params = ()) -> Rows:
        try:
            return await self._primary.fetch(sql, params)
        except Exception as exc:
            if not self._primary.is_unavailable(exc):
                raise
        return await self._replicas.fetch(sql, params)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[ReadStore]:
        yield self


class Gate:
    """Resolves credentials and checks access against the store (``store``: where it
    reads, e.g. PrimaryFirst)."""

    def __init__(
        self,
        store: ReadStore,
        signer: TokenSigner,
        keys: KeyRing,
        sites: SiteCatalog,
        local_token: str | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self.keys = keys
        self._sites = sites
        self.local_token = local_token

    # -- who ----------------------------------------------------------------------

    async def principal(
        self, headers: Mapping[str, str], client_host: str | None
    ) -> Principal | None:
        """The principal of a request's credential; None without one; 401 for one that
        is not valid."""
        credential = credential_of(headers)
        if credential is None:
            return None
        if credential.startswith(LOCAL_PREFIX):
            if (
                self.local_token is not None
                and client_host in _LOOPBACK
                and not forwarded(headers)
                and hmac.compare_digest(credential.encode(), self.local_token.encode())
            ):
                return LOCAL
            raise invalid_token("The local admin credential is not valid here.")
        if is_key(credential):
            return Principal(key=await self.keys.check(credential))
        if looks_like_jwt(credential):
            try:
                account_id = self._signer.verify(credential)
            except InvalidToken as exc:
                raise invalid_token("The access token is not valid or has expired.") from exc
            account = await get_account(self._store, account_id)
            if account is None:
                raise invalid_token("The access token's account no longer exists.")
            return Principal(account=account)
        raise invalid_token("The credential is neither an access token nor an API key.")

    # -- reading reports ------------------------------------------------------------

    async def read(self, who: Principal | None, site_id: str | None) -> None:
        """Whether ``who`` may read the reports of ``site_id`` (None: the instance's only
        site, when it has one; else the report itself says site_id is required)."""
        if site_id is None:
            site_id = await self._only_site(who)
            if site_id is None:
                return  # the report says that site_id is required
        elif not valid_site_id(site_id):  # no site has it: the report's own 422, as it says
            raise invalid_parameter("site_id", SITE_ID_RULE)
        if who is not None and who.reads_any_site_row(site_id):
            return  # a site that does not exist is the report's own 404, in its snapshot
        account_id = who.account.id if who is not None and who.account is not None else ""
        rows = await self._store.fetch(_SITE_AND_ROLE, [site_id, account_id])
        if rows and rows[0][0]:
            return  # a public site
        if who is None:
            raise auth_required("This site's reports need a credential for it.")
        if not rows:
            raise site_not_found(site_id)
        if who.key is not None:  # not a read key of this site (reads_any_site_row)
            if who.key.site_id != site_id:
                raise site_not_found(site_id)
            raise forbidden("A write key sends events; reading reports takes a read key.")
        if rows[0][1] is None:  # no role on it
            raise site_not_found(site_id)

    async def _only_site(self, who: Principal | None) -> str | None:
        """The instance's only site; None when it has none or several (401 anonymous)."""
        rows = await self._store.fetch("SELECT id FROM site ORDER BY id LIMIT 2")
        if len(rows) == 1:
            only: str = rows[0][0]
            return only
        if who is None:
            raise auth_required()
        return None

    # -- managing sites -------------------------------------------------------------

    def account_of(self, who: Principal | None) -> Principal:
        """An account (or the local CLI), for what keys may not do."""
        if who is None:
            raise auth_required("This needs an account's access token.")
        if who.key is not None:
            raise forbidden("API keys read reports or send events; this needs an account.")
        return who

    async def require(self, who: Principal | None, site_id: str, need: Role) -> Role:
        """The caller's role on the site, at least ``need``: 404 when the caller has
        none (or the site does not exist), 403 when it is lower."""
        who = self.account_of(who)
        if not valid_site_id(site_id):  # no site has it (nor could PostgreSQL read a NUL)
            raise site_not_found(site_id)
        exists = await self._store.fetch("SELECT 1 FROM site WHERE id = $1", [site_id])
        if not exists:
            raise site_not_found(site_id)
        role = Role.OWNER if who.instance_owner else None
        if role is None and who.account is not None:
            role = await role_on(self._store, site_id, who.account)
        if role is None:
            raise site_not_found(site_id)
        if not role.at_least(need):
            raise forbidden(f"This needs the {need.value} role on site '{site_id}'.")
        return role

    def require_instance_owner(self, who: Principal | None) -> Principal:
        who = self.account_of(who)
        if not who.instance_owner:
            raise forbidden("This needs an owner of the instance.")
        return who

    # -- sending events -------------------------------------------------------------

    async def send(
        self, headers: Mapping[str, str], client_host: str | None, site_ids: Iterable[str]
    ) -> ApiKey | None:
        """Whether a request may send events of ``site_ids``: a site that takes public
        tracking takes them from anyone; one that requires a key, only with a write key
        of its own (or from this machine's CLI). A key that is sent must be valid. Only
        ``tpk_`` keys and the local credential count here: trackers put other things in
        the same headers (Segment's write key, a site id)."""
        credential = credential_of_ingest(headers)
        key: ApiKey | None = None
        local = False
        if credential is not None:
            if credential.startswith(LOCAL_PREFIX):
                local = (await self.principal(headers, client_host)) is LOCAL
            else:
                key = await self.keys.check(credential)
        wanted = set(site_ids)
        await self._sites.unknown(wanted)  # looks up sites made a moment ago
        closed = sorted(
            site for site in wanted if (found := self._sites.get(site)) and found.key_required
        )
        if not closed or local:
            return key
        if key is None:
            raise auth_required(
                f"Site(s) {', '.join(closed)[:200]} take events only with a write key."
            )
        refused = [site for site in closed if key.site_id != site or key.scope is not Scope.WRITE]
        if refused:
            raise TapiocaError(
                403,
                "forbidden",
                "This key may not send events of site(s) " + ", ".join(refused)[:200] + ".",
                [
                    ErrorDetail("site_id", f"'{site}' needs a write key of its own")
                    for site in refused
                ][:20],
            )
        return key


# Whether the site is public, and the account's role on it, in one round trip.
_SITE_AND_ROLE = (
    "SELECT s.public, (SELECT m.role FROM site_member m WHERE m.site_id = s.id "
    "AND m.account_id = $2) FROM site s WHERE s.id = $1"
)
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def forwarded(headers: Mapping[str, str]) -> bool:
    """A request a proxy on this machine passed on: not this machine's own."""
    return "x-forwarded-for" in headers or "forwarded" in headers


def credential_of_ingest(headers: Mapping[str, str]) -> str | None:
    """The credential of an ingest request, when it is one of ours (a key or the local
    credential); anything else in those headers belongs to the tracker's protocol."""
    try:
        credential = credential_of(headers)
    except TapiocaError:
        credential = None
    if credential is None or not _ours(credential):
        credential = headers.get("x-api-key")  # a tracker's own Authorization, and a key
    return credential if credential is not None and _ours(credential) else None


def _ours(credential: str) -> bool:
    return is_key(credential) or credential.startswith(LOCAL_PREFIX)
