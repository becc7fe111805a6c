"""API keys: one site, one scope (read: its reports; write: its events), shown once and
stored by their SHA-256 (auth/tokens.py), revocable, with the time they were last used.

A key reads ``tpk_`` + 43 URL-safe characters (256 random bits): the prefix makes a
leaked key recognisable to secret scanners and to people."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tapioca.auth.roles import Scope
from tapioca.auth.tokens import digest, new_id, new_secret
from tapioca.errors import TapiocaError, not_found
from tapioca.kit.clock import utc_text
from tapioca.logging import get_logger
from tapioca.storage.base import ReadStore, Store

log = get_logger(__name__)

KEY_PREFIX = "tpk_"
KEY_ID = re.compile(r"^key_[0-9a-f]{16}\Z")  # new_id("key_")
_SHOWN = 8  # characters after the prefix that lists show, to tell keys apart


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    site_id: str
    scope: Scope


def is_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX) and 20 <= len(text) <= 200


async def create_key(
    store: Store, site_id: str, scope: Scope, name: str | None, by: str | None
) -> dict[str, Any]:
    """A new key of the site: the answer holds the key itself, this once."""
    key = new_secret(KEY_PREFIX)
    key_id = new_id("key_")
    now = datetime.now(UTC)
    await store.execute(
        "INSERT INTO api_key (id, site_id, scope, name, key_hash, prefix, created_by, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [key_id, site_id, scope.value, name, digest(key), key[: len(KEY_PREFIX) + _SHOWN],
         by, now],
    )  # fmt: skip
    log.info("api_key_created", site=site_id, key_id=key_id, scope=scope.value)
    return {
        "key_id": key_id,
        "key": key,
        "scope": scope.value,
        "name": name,
        "site_id": site_id,
        "created_at": utc_text(now),
    }


async def list_keys(store: Store, site_id: str) -> list[dict[str, Any]]:
    rows = await store.fetch(
        "SELECT id, scope, name, prefix, created_at, last_used_at, revoked_at FROM api_key "
        "WHERE site_id = $1 ORDER BY created_at, id",
        [site_id],
    )
    return [
        {
            "key_id": r[0],
            "scope": r[1],
            "name": r[2],
            "starts_with": r[3],
            "created_at": utc_text(r[4]),
            "last_used_at": utc_text(r[5]),
            "revoked_at": utc_text(r[6]),
        }
        for r in rows
    ]


async def revoke_key(store: Store, site_id: str, key_id: str) -> None:
    if not KEY_ID.match(key_id):  # made by new_id: no key has another shape
        raise not_found("key_not_found", f"No key '{key_id[:100]}' on this site.", "key_id")
    rows = await store.change(
        "UPDATE api_key SET revoked_at = $3 WHERE id = $1 AND site_id = $2 "
        "AND revoked_at IS NULL RETURNING id",
        [key_id, site_id, datetime.now(UTC)],
    )
    if not rows:
        found = await store.fetch(
            "SELECT 1 FROM api_key WHERE id = $1 AND site_id = $2", [key_id, site_id]
        )
        if not found:
            raise not_found("key_not_found", f"No key '{key_id[:100]}' on this site.", "key_id")
    log.info("api_key_revoked", site=site_id, key_id=key_id)


def invalid_key() -> TapiocaError:
    return TapiocaError(401, "invalid_key", "The API key is not valid (unknown or revoked).")


class KeyRing:
    """Checks keys against the store. What a key is stays known for ``ttl_s`` seconds
    (ingest checks a key per request): a revoked key stops working within that time in
    every process. ``last_used_at`` is written at most once a minute per key, off the
    request's path."""

    def __init__(
        self,
        store: Store,
        ttl_s: float = 2.0,
        touch_every_s: float = 60.0,
        reads: ReadStore | None = None,
    ) -> None:
        self._store = store
        self._reads = reads or store  # where keys are looked up (auth/access.PrimaryFirst)
        self._ttl = ttl_s
        self._touch_every = touch_every_s
        self._known: dict[str, tuple[float, ApiKey | None]] = {}
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def check(self, key: str) -> ApiKey:
        """The key's id, site and scope; 401 for a key that is unknown or revoked."""
        hashed = digest(key)
        now = time.monotonic()
        cached = self._known.get(hashed)
        if cached is not None and now - cached[0] < self._ttl:
            found = cached[1]
        else:
            rows = await self._reads.fetch(
                "SELECT id, site_id, scope FROM api_key WHERE key_hash = $1 AND revoked_at IS NULL",
                [hashed],
            )
            found = ApiKey(rows[0][0], rows[0][1], Scope(rows[0][2])) if rows else None
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[hashed] = (now, found)
        if found is None:
            raise invalid_key()
        if now - self._touched.get(found.id, float("-inf")) >= self._touch_every:
            self._touched[found.id] = now
            task = asyncio.create_task(self._touch(found.id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return found

    async def _touch(self, key_id: str) -> None:
        try:
            await self._store.execute(
                "UPDATE api_key SET last_used_at = $2 WHERE id = $1",
                [key_id, datetime.now(UTC)],
            )
        except Exception as exc:  # the time of use is a hint; the request went through
            log.warning("key_use_not_recorded", key_id=key_id, error=type(exc).__name__)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
