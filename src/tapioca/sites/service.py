"""Creating and changing sites (CLI and API)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tapioca.errors import ErrorDetail, TapiocaError, not_found, validation_error
from tapioca.kit.timerange import zone_named
from tapioca.sites.limits import NewSiteLimits, SiteAllowance, too_many_new_sites
from tapioca.sites.site import SITE_COLUMNS, SITE_ID_RULE, Site, site_from_row, valid_site_id
from tapioca.storage.base import Store
from tapioca.storage.rows import INSERT_SITES

CURRENCY = re.compile(r"^[A-Z]{3}$")
# A site's name and domains hold no NUL (PostgreSQL's text cannot); the API's document
# states the same patterns (api/sites.py).
NO_NUL = "must not contain NUL characters"
TEXT_PATTERN = r"^[^\x00]*$"
DOMAIN_PATTERN = r"^[^/ \x00]+$"  # a host name: not empty, no path, no space
DOMAIN = re.compile(DOMAIN_PATTERN).fullmatch


@dataclass
class SiteChanges:
    name: str | None = None
    timezone: str | None = None
    domains: list[str] | None = None
    currency: str | None = None
    page_type_rules: list[tuple[str, str]] | None = None
    public: bool | None = None
    any_origin: bool | None = None
    key_required: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        problems = []
        if self.timezone is not None:
            try:
                zone_named(self.timezone)
            except ValueError:
                problems.append(ErrorDetail("timezone", f"'{self.timezone}' is not an IANA zone"))
        if self.currency is not None and not CURRENCY.match(self.currency.upper()):
            problems.append(ErrorDetail("currency", "a 3-letter ISO 4217 code"))
        if self.name is not None and "\x00" in self.name:
            problems.append(ErrorDetail("name", NO_NUL))
        for domain in self.domains or []:
            if not DOMAIN(domain):
                problems.append(ErrorDetail("domains", f"'{domain}' is not a host name"))
        for pattern, page_type in self.page_type_rules or []:
            if not pattern.startswith("/") or not page_type:
                problems.append(ErrorDetail("page_type_rules", f"'{pattern}={page_type}'"))
        if problems:
            raise validation_error(problems)

    def assignments(self) -> list[tuple[str, Any]]:
        values: list[tuple[str, Any]] = []
        if self.name is not None:
            values.append(("name", self.name))
        if self.timezone is not None:
            values.append(("timezone", self.timezone))
        if self.domains is not None:
            values.append(("domains", orjson.dumps([d.lower() for d in self.domains]).decode()))
        if self.currency is not None:
            values.append(("currency", self.currency.upper()))
        if self.page_type_rules is not None:
            rules = [{"pattern": p, "page_type": t} for p, t in self.page_type_rules]
            values.append(("page_type_rules", orjson.dumps(rules).decode()))
        if self.public is not None:
            values.append(("public", self.public))
        if self.any_origin is not None:
            values.append(("any_origin", self.any_origin))
        if self.key_required is not None:
            values.append(("key_required", self.key_required))
        return values


async def get_site(store: Store, site_id: str) -> Site:
    rows = await store.fetch(f"SELECT {SITE_COLUMNS} FROM site WHERE id = $1", [site_id])
    if not rows:
        raise not_found("site_not_found", f"Site '{site_id}' does not exist.", "site_id")
    return site_from_row(rows[0])


async def create_site(store: Store, site_id: str, changes: SiteChanges) -> Site:
    if not valid_site_id(site_id):
        raise validation_error([ErrorDetail("site_id", SITE_ID_RULE)])
    changes.validate()
    if await store.fetch("SELECT 1 FROM site WHERE id = $1", [site_id]):
        raise TapiocaError(409, "site_exists", f"Site '{site_id}' already exists.")
    await store.execute("INSERT INTO site (id) VALUES ($1)", [site_id])
    return await update_site(store, site_id, changes)


async def update_site(store: Store, site_id: str, changes: SiteChanges) -> Site:
    changes.validate()
    before = await get_site(store, site_id)
    assignments = changes.assignments()
    if assignments:
        columns = ", ".join(f"{name} = ${i + 2}" for i, (name, _) in enumerate(assignments))
        await store.execute(
            f"UPDATE site SET {columns} WHERE id = $1", [site_id, *[v for _, v in assignments]]
        )
    after = await get_site(store, site_id)
    if after.timezone != before.timezone:  # daily visitor rollups are in the site's zone
        for sql in _REDO_DAYS:
            await store.execute(sql, [site_id])
    return after


# Every day of the site is marked to redo in the new zone, then the site is flagged: until
# the derive job has redone them all, reports count its visitors from events. (Rows of the
# old zone are never read: reports ask for the site's zone.) The users' active days go:
# each redone day writes its own again (derive/product.py). Marks before the flag: a flag
# without marks would be cleared by the next derive run with the days not redone.
_REDO_DAYS = (
    "INSERT INTO rollup_dirty_day (site_id, hour) SELECT DISTINCT site_id, hour "
    "FROM rollup_hour WHERE site_id = $1 ON CONFLICT DO NOTHING",
    "INSERT INTO rollup_redo (site_id) VALUES ($1) ON CONFLICT DO NOTHING",
    "DELETE FROM user_day WHERE site_id = $1",  # the daily job writes them again
    "DELETE FROM active_gap WHERE site_id = $1",
    "DELETE FROM cohort_period WHERE site_id = $1",
    "DELETE FROM lifecycle_period WHERE site_id = $1",
)


class SiteMaker:
    """Sites made from the first events that name them, before those events are
    acknowledged: a report asked for right after the answer finds the site (the events
    themselves are written a moment later). New sites are limited per request and per
    minute (sites/limits.py): a request over either is refused whole (429) and makes
    nothing; sites that exist are never limited. Remembers the ids it has seen."""

    def __init__(
        self,
        store: Store,
        limits: NewSiteLimits,
        allowance: SiteAllowance,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._limits = limits
        self._allowance = allowance
        self._clock = clock
        self._known: set[str] = set()

    async def ensure(self, site_ids: Iterable[str]) -> None:
        asked = sorted(set(site_ids) - self._known)
        if not asked:
            return
        found = await self._store.fetch(_EXISTING, [asked])
        self._known.update(row[0] for row in found)
        new = [site for site in asked if site not in self._known]
        if not new:
            return
        self._check(new)
        wait = await self._allowance.take(len(new), self._clock())
        if wait:
            raise too_many_new_sites(
                new,
                f"At most {self._limits.per_minute} new sites are made a minute; "
                "retry after the seconds Retry-After gives.",
                wait,
            )
        await self._store.execute(INSERT_SITES, [new])
        self._known.update(new)

    def _check(self, new: list[str]) -> None:
        cap = self._limits.request_cap
        if len(new) > cap:
            raise too_many_new_sites(
                new, f"The events name {len(new)} new sites; at most {cap} are made a request."
            )


_EXISTING = "SELECT id FROM site WHERE id IN (SELECT unnest($1::text[]))"
