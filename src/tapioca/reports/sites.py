"""Which site a report is about, and its time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tapioca.errors import ErrorDetail, TapiocaError, not_found
from tapioca.kit.timerange import parse_zone
from tapioca.storage.base import ReadStore

SITE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    timezone: ZoneInfo
    days_redoing: bool = False  # its daily visitor rollups are being redone (a new zone)


# The site and whether its daily rollups are being redone, in one statement (DuckDB runs
# the EXISTS on the named id faster than one correlated with the row).
_SITE = (
    "SELECT s.id, s.timezone, EXISTS (SELECT 1 FROM rollup_redo r WHERE r.site_id = {id}) "
    "FROM site s"
)


async def resolve_site(db: ReadStore, site_id: str | None) -> Site:
    """The named site, or the only one when the instance has exactly one."""
    if site_id is None:
        rows = await db.fetch(_SITE.format(id="s.id") + " ORDER BY s.id LIMIT 2")
        if len(rows) != 1:
            raise TapiocaError(
                422,
                "validation_error",
                "site_id is required when the instance does not have exactly one site.",
                [ErrorDetail("site_id", "required")],
            )
    else:
        if not SITE_ID.fullmatch(site_id):
            raise TapiocaError(
                422,
                "validation_error",
                "Invalid parameter 'site_id'.",
                [ErrorDetail("site_id", "letters, digits and _.:- only (at most 100)")],
            )
        rows = await db.fetch(_SITE.format(id="$1") + " WHERE s.id = $1", [site_id])
        if not rows:
            raise not_found("site_not_found", f"Site '{site_id}' does not exist.", "site_id")
    site_id, zone, redoing = rows[0]
    return Site(site_id, parse_zone(zone or "UTC", "site.timezone"), bool(redoing))
