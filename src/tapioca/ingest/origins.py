"""The origins browsers may send events from (sites/origins.py has the rule), checked
against the sites this process knows: for a preflight, whether any site accepts the
origin; for the events themselves, whether each one's site does."""

from __future__ import annotations

from collections.abc import Mapping

from tapioca.errors import ErrorDetail, TapiocaError
from tapioca.ingest.protocols.base import Parsed
from tapioca.sites.catalog import SiteCatalog
from tapioca.sites.origins import OriginPolicy, parse_origin, policy_of, site_accepts
from tapioca.sites.site import Site


class OriginCheck:
    """``any_by_default``: whether a site that does not say accepts any origin
    (TAPIOCA_CORS_ANY_ORIGIN); ``new_sites``: events of unknown sites make them."""

    def __init__(self, sites: SiteCatalog, *, any_by_default: bool, new_sites: bool) -> None:
        self._sites = sites
        self._any_by_default = any_by_default
        self._new_sites = new_sites
        self._seen: Mapping[str, Site] | None = None
        self._policy = OriginPolicy(False, ())

    async def anyone_accepts(self, origin: str) -> bool:
        """Whether some site accepts events from ``origin`` (the Origin header)."""
        await self._sites.refresh()
        known = self._sites.sites
        if known is not self._seen:  # the catalog replaces its mapping when sites change
            self._policy = policy_of(known.values(), self._any_by_default, self._new_sites)
            self._seen = known
        return self._policy.accepts(parse_origin(origin))

    async def check(self, origin: str, parsed: Parsed) -> None:
        """Refuse (403) the request when one of its events names a site that does not
        accept ``origin``. A site not made yet is one with the default settings."""
        site_ids = {event.site_id for event in parsed.events if event is not None}
        await self._sites.unknown(site_ids)  # looks up sites made a moment ago
        where = parse_origin(origin)
        refused = {
            site_id
            for site_id in site_ids
            if not site_accepts(self._site(site_id), where, self._any_by_default)
        }
        if not refused:
            return
        details = [
            ErrorDetail(
                f"{i}.site_id" if parsed.indexed else "site_id",
                f"site '{event.site_id}' does not accept events from this origin",
            )
            for i, event in enumerate(parsed.events)
            if event is not None and event.site_id in refused
        ]
        raise TapiocaError(
            403,
            "origin_not_allowed",
            f"Events from {origin[:200]} are not accepted for site(s): "
            f"{', '.join(sorted(refused))}.",
            details[:100],
        )

    def _site(self, site_id: str) -> Site:
        return self._sites.get(site_id) or Site(site_id)  # not made yet: the defaults
