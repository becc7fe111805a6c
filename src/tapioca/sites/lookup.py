"""Which site a report is about: the one named, or the only one of the instance."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from tapioca.errors import ErrorDetail, TapiocaError, invalid_parameter, not_found
from tapioca.model.derived import DERIVED_SEQ, DERIVED_SINCE
from tapioca.sites.site import SITE_COLUMNS, SITE_ID_RULE, Site, site_from_row, valid_site_id
from tapioca.storage.base import ReadStore

# The site, whether its daily rollups are being redone (in a new time zone: reports then
# count its visitors from events) and the last event seq the derived tables hold, in one
# statement; DuckDB runs the EXISTS on the named id faster than one correlated with the row.
_SITE = (
    f"SELECT {SITE_COLUMNS}, EXISTS (SELECT 1 FROM rollup_redo r WHERE r.site_id = {{id}}), "
    f"{DERIVED_SEQ}, {DERIVED_SINCE} FROM site"
)


class SiteState(NamedTuple):
    site: Site
    redoing: bool  # its daily rollups are being redone
    derived: int  # the last event seq that sessions and rollups hold (0: none yet)
    since: datetime | None = None  # when that position was set from nothing


async def resolve_site(db: ReadStore, site_id: str | None) -> SiteState:
    """The named site, or the only one when the instance has exactly one; whether its
    daily rollups are being redone; how far the derived tables are."""
    if site_id is None:
        rows = await db.fetch(_SITE.format(id="site.id") + " ORDER BY id LIMIT 2")
        if len(rows) != 1:
            raise TapiocaError(
                422,
                "validation_error",
                "site_id is required when the instance does not have exactly one site.",
                [ErrorDetail("site_id", "required")],
            )
    else:
        if not valid_site_id(site_id):
            raise invalid_parameter("site_id", SITE_ID_RULE)
        rows = await db.fetch(_SITE.format(id="$1") + " WHERE id = $1", [site_id])
        if not rows:
            raise not_found("site_not_found", f"Site '{site_id}' does not exist.", "site_id")
    *columns, redoing, derived, since = rows[0]
    try:
        site = site_from_row(tuple(columns))
    except ValueError as exc:
        raise invalid_parameter("site.timezone", str(exc)) from exc
    return SiteState(site, bool(redoing), int(derived or 0), since)
