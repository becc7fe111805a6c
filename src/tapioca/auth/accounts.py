"""Accounts and what they hold: passwords, roles on sites, refresh tokens, invitations.

Every function here takes the store and answers or raises a TapiocaError, so that the
HTTP routes and the CLI (on the store, or over HTTP to a running server) do the same."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tapioca.auth.passwords import (
    check_new_password,
    hash_off_loop,
    needs_rehash,
    verify_off_loop,
)
from tapioca.auth.roles import Role
from tapioca.auth.tokens import digest, new_id, new_secret
from tapioca.errors import ErrorDetail, TapiocaError, not_found, validation_error
from tapioca.logging import get_logger
from tapioca.storage.base import ReadStore, Store

log = get_logger(__name__)

# No space (Python's \s, spelt out: regular expression engines differ on it) and no
# control character either: PostgreSQL's text cannot hold a NUL. The API documents it.
_NOT_IN_EMAIL = r"@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_PART = f"[^{_NOT_IN_EMAIL}]"
EMAIL_PATTERN = rf"^{_PART}{{1,200}}@{_PART}{{1,200}}\.{_PART}{{1,60}}$"
EMAIL = re.compile(EMAIL_PATTERN)
REFRESH_PREFIX = "tpr_"
INVITE_PREFIX = "tpi_"
SETUP_PREFIX = "tps_"


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    instance_owner: bool
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "instance_owner": self.instance_owner,
            "created_at": _iso(self.created_at),
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


_ACCOUNT = "SELECT id, email, instance_owner, created_at FROM account"


def _account(row: tuple[Any, ...]) -> Account:
    return Account(row[0], row[1], bool(row[2]), row[3])


def normalize_email(email: str, field: str = "email") -> str:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise validation_error([ErrorDetail(field, "an email address")])
    return email


async def account_count(store: Store) -> int:
    rows = await store.fetch("SELECT count(*) FROM account")
    return int(rows[0][0])


async def get_account(store: ReadStore, account_id: str) -> Account | None:
    rows = await store.fetch(f"{_ACCOUNT} WHERE id = $1", [account_id])
    return _account(rows[0]) if rows else None


async def account_by_email(store: Store, email: str) -> Account:
    rows = await store.fetch(f"{_ACCOUNT} WHERE email = $1", [normalize_email(email)])
    if not rows:
        raise not_found("account_not_found", f"No account '{email[:200]}'.", "email")
    return _account(rows[0])


async def list_accounts(store: Store) -> list[Account]:
    return [_account(row) for row in await store.fetch(f"{_ACCOUNT} ORDER BY email")]


async def create_account(
    store: Store, email: str, password: str, *, instance_owner: bool = False
) -> Account:
    email = normalize_email(email)
    check_new_password(password)
    if await store.fetch("SELECT 1 FROM account WHERE email = $1", [email]):
        raise TapiocaError(409, "account_exists", f"An account '{email}' exists already.")
    account = Account(new_id("acc_"), email, instance_owner, _now())
    try:
        await store.execute(
            "INSERT INTO account (id, email, password_hash, instance_owner, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            [account.id, email, await hash_off_loop(password), instance_owner, account.created_at],
        )
    except Exception as exc:  # made at the same moment by another request or process
        if await store.fetch("SELECT 1 FROM account WHERE email = $1", [email]):
            raise TapiocaError(409, "account_exists", f"An account '{email}' exists.") from exc
        raise
    log.info("account_created", account=account.id, instance_owner=instance_owner)
    return account


async def delete_account(store: Store, email: str) -> Account:
    account = await account_by_email(store, email)
    if account.instance_owner:
        owners = await store.fetch("SELECT count(*) FROM account WHERE instance_owner")
        if int(owners[0][0]) <= 1:
            raise TapiocaError(409, "last_owner", "The last instance owner cannot be deleted.", [])
    await store.execute("DELETE FROM site_member WHERE account_id = $1", [account.id])
    await store.execute("DELETE FROM refresh_token WHERE account_id = $1", [account.id])
    await store.execute("DELETE FROM account WHERE id = $1", [account.id])
    log.info("account_deleted", account=account.id)
    return account


async def sign_in(store: Store, email: str, password: str) -> Account | None:
    """The account whose email and password these are, else None (costing the same time
    either way). A hash made with older parameters is made again."""
    try:
        email = normalize_email(email)
    except TapiocaError:
        await verify_off_loop(None, password)
        return None
    rows = await store.fetch(
        "SELECT id, email, instance_owner, created_at, password_hash FROM account WHERE email = $1",
        [email],
    )
    stored = rows[0][4] if rows else None
    if not await verify_off_loop(stored, password) or not rows:
        return None
    if stored is not None and needs_rehash(stored):
        await store.execute(
            "UPDATE account SET password_hash = $2 WHERE id = $1",
            [rows[0][0], await hash_off_loop(password)],
        )
    return _account(rows[0])


# -- roles on sites -----------------------------------------------------------------


async def roles_of(store: Store, account: Account) -> dict[str, Role]:
    """The account's role on each site it has one on (an instance owner: every site)."""
    if account.instance_owner:
        rows = await store.fetch("SELECT id FROM site ORDER BY id")
        return {row[0]: Role.OWNER for row in rows}
    rows = await store.fetch(
        "SELECT site_id, role FROM site_member WHERE account_id = $1 ORDER BY site_id",
        [account.id],
    )
    return {row[0]: Role(row[1]) for row in rows}


async def members_of(store: Store, site_id: str) -> list[dict[str, Any]]:
    rows = await store.fetch(
        "SELECT a.email, m.role, m.created_at FROM site_member m "
        "JOIN account a ON a.id = m.account_id WHERE m.site_id = $1 ORDER BY a.email",
        [site_id],
    )
    return [{"email": r[0], "role": r[1], "since": _iso(r[2])} for r in rows]


async def set_role(store: Store, site_id: str, account: Account, role: Role) -> None:
    await store.execute(
        "INSERT INTO site_member (site_id, account_id, role, created_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (site_id, account_id) DO UPDATE SET role = $3",
        [site_id, account.id, role.value, _now()],
    )
    log.info("role_set", site=site_id, account=account.id, role=role.value)


async def role_on(store: ReadStore, site_id: str, account: Account) -> Role | None:
    if account.instance_owner:
        return Role.OWNER
    rows = await store.fetch(
        "SELECT role FROM site_member WHERE site_id = $1 AND account_id = $2",
        [site_id, account.id],
    )
    return Role(rows[0][0]) if rows else None


async def remove_role(store: Store, site_id: str, account: Account) -> bool:
    rows = await store.change(
        "DELETE FROM site_member WHERE site_id = $1 AND account_id = $2 RETURNING role",
        [site_id, account.id],
    )
    return bool(rows)


# -- refresh tokens -----------------------------------------------------------------


async def issue_refresh(
    store: Store, account_id: str, ttl: timedelta, family: str | None = None
) -> str:
    token = new_secret(REFRESH_PREFIX)
    now = _now()
    await store.execute(
        "INSERT INTO refresh_token (token_hash, family, account_id, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        [digest(token), family or new_id("fam_"), account_id, now, now + ttl],
    )
    return token


def _invalid_refresh() -> TapiocaError:
    return TapiocaError(
        401, "invalid_refresh_token", "The refresh token is not valid; sign in again."
    )


async def rotate_refresh(store: Store, token: str, ttl: timedelta) -> tuple[str, str]:
    """Spend ``token`` and give (account id, the next refresh token of its family). A
    token spent before revokes its whole family: someone else holds one of them."""
    now = _now()
    spent = await store.change(
        "UPDATE refresh_token SET spent_at = $2 WHERE token_hash = $1 AND spent_at IS NULL "
        "AND revoked_at IS NULL AND expires_at > $2 RETURNING family, account_id",
        [digest(token), now],
    )
    if not spent:
        rows = await store.fetch(
            "SELECT family, spent_at FROM refresh_token WHERE token_hash = $1", [digest(token)]
        )
        if rows and rows[0][1] is not None:
            await revoke_family(store, rows[0][0])
            log.warning("refresh_token_reused", family=rows[0][0])
        raise _invalid_refresh()
    family, account_id = spent[0]
    if await get_account(store, account_id) is None:
        raise _invalid_refresh()
    return account_id, await issue_refresh(store, account_id, ttl, family)


async def revoke_family(store: Store, family: str) -> None:
    await store.execute(
        "UPDATE refresh_token SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
        [family, _now()],
    )


async def log_out(store: Store, token: str) -> bool:
    rows = await store.fetch(
        "SELECT family FROM refresh_token WHERE token_hash = $1", [digest(token)]
    )
    if rows:
        await revoke_family(store, rows[0][0])
    return bool(rows)


# -- invitations and the setup link -------------------------------------------------


async def invite(
    store: Store,
    email: str,
    site_id: str | None,
    role: Role | None,
    by: str | None,
    ttl: timedelta,
) -> tuple[str, datetime]:
    """A token that lets ``email`` register (with ``role`` on ``site_id``)."""
    email = normalize_email(email)
    token = new_secret(INVITE_PREFIX)
    now = _now()
    await store.execute(
        "INSERT INTO invitation (token_hash, kind, email, site_id, role, created_by, "
        "created_at, expires_at) VALUES ($1, 'invite', $2, $3, $4, $5, $6, $7)",
        [digest(token), email, site_id, role.value if role else None, by, now, now + ttl],
    )
    return token, now + ttl


async def _use_invitation(store: Store, token: str, kind: str) -> tuple[Any, ...] | None:
    rows = await store.change(
        "UPDATE invitation SET used_at = $2 WHERE token_hash = $1 AND kind = $3 "
        "AND used_at IS NULL AND expires_at > $2 RETURNING email, site_id, role",
        [digest(token), _now(), kind],
    )
    return rows[0] if rows else None


async def register(
    store: Store, email: str, password: str, invitation: str | None, signup_open: bool
) -> Account:
    """A new account: with an invitation for this email, or when sign-up is open."""
    email = normalize_email(email)
    check_new_password(password)
    if invitation:
        rows = await store.fetch(
            "SELECT email FROM invitation WHERE token_hash = $1 AND kind = 'invite' "
            "AND used_at IS NULL AND expires_at > $2",
            [digest(invitation), _now()],
        )
        if not rows or rows[0][0] != email:
            raise TapiocaError(
                403, "invalid_invitation", "The invitation is not valid for this email."
            )
        used = await _use_invitation(store, invitation, "invite")
        if used is None:
            raise TapiocaError(403, "invalid_invitation", "The invitation was used already.")
        account = await create_account(store, email, password)
        _, site_id, role = used
        if site_id and role and await store.fetch("SELECT 1 FROM site WHERE id = $1", [site_id]):
            await set_role(store, site_id, account, Role(role))
        return account
    if not signup_open:
        raise TapiocaError(
            403,
            "signup_closed",
            "Sign-up is off on this instance: ask an admin for an invitation.",
        )
    return await create_account(store, email, password)


async def new_setup_link_token(store: Store, ttl: timedelta) -> str:
    token = new_secret(SETUP_PREFIX)
    now = _now()
    await store.execute(
        "INSERT INTO invitation (token_hash, kind, created_at, expires_at) "
        "VALUES ($1, 'setup', $2, $3)",
        [digest(token), now, now + ttl],
    )
    return token


async def complete_setup(store: Store, token: str, email: str, password: str) -> Account:
    """The first owner, from a setup link (only while the instance has no account)."""
    email = normalize_email(email)
    check_new_password(password)
    if await account_count(store):
        raise TapiocaError(409, "already_set_up", "This instance has an owner already.")
    if await _use_invitation(store, token, "setup") is None:
        raise TapiocaError(403, "invalid_setup_token", "The setup link is not valid.")
    return await create_account(store, email, password, instance_owner=True)


async def bootstrap_owner(store: Store, email: str, password: str) -> Account | None:
    """The first owner from TAPIOCA_OWNER_EMAIL/PASSWORD when no account exists (an
    existing account is never changed)."""
    if await account_count(store):
        return None
    try:
        return await create_account(store, email, password, instance_owner=True)
    except TapiocaError as exc:
        if exc.code == "account_exists":
            return None
        raise
