"""A site: its id, its settings (time zone, own domains, currency, page-type rules, public
flag, origins its browsers may send from, whether its events need a write key) and what
enrichment takes from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tapioca.enrich import SiteRules
from tapioca.kit.timerange import zone_named
from tapioca.model.event import BY_NAME, full_match

# The one rule of a site id: that of the events' site_id (model/event.py).
_SENT = BY_NAME["site_id"].sent
assert _SENT is not None and _SENT.pattern is not None and _SENT.max_length is not None
_SITE_ID = full_match(_SENT.pattern)
SITE_ID_MAX = _SENT.max_length
SITE_ID_PATTERN = _SENT.pattern
SITE_ID_RULE = f"letters, digits and _.:- only (at most {SITE_ID_MAX})"

UTC_ZONE = ZoneInfo("UTC")


def valid_site_id(text: str) -> bool:
    return len(text) <= SITE_ID_MAX and _SITE_ID(text) is not None


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str | None = None
    timezone: ZoneInfo = UTC_ZONE  # of its reports and daily rollups
    domains: tuple[str, ...] = ()  # its own hosts: a referrer there is no referrer
    currency: str = "USD"  # of its reports
    page_type_rules: tuple[tuple[str, str], ...] = ()  # (path glob, page type), in order
    public: bool = False
    any_origin: bool | None = None  # browsers anywhere may send its events (None: default)
    key_required: bool = False  # events only with one of its write keys (else anyone's)

    @property
    def rules(self) -> SiteRules:
        return SiteRules(self.domains, self.page_type_rules)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "timezone": self.timezone.key,
            "domains": list(self.domains),
            "currency": self.currency,
            "page_type_rules": [{"pattern": p, "page_type": t} for p, t in self.page_type_rules],
            "public": self.public,
            "any_origin": self.any_origin,
            "key_required": self.key_required,
        }


SITE_COLUMNS = (
    "id, name, timezone, domains, currency, page_type_rules, public, any_origin, key_required"
)


def site_from_row(row: tuple[Any, ...]) -> Site:
    """A site from its row (SITE_COLUMNS); ValueError for a time zone that is none."""
    site_id, name, zone, domains, currency, rules, public, any_origin, key_required = row
    parsed_rules = orjson.loads(rules or "[]")
    return Site(
        id=site_id,
        name=name,
        timezone=zone_named(zone or "UTC"),
        domains=tuple(orjson.loads(domains or "[]")),
        currency=currency or "USD",
        page_type_rules=tuple((r["pattern"], r["page_type"]) for r in parsed_rules),
        public=bool(public),
        any_origin=None if any_origin is None else bool(any_origin),
        key_required=bool(key_required),
    )
