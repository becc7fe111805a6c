"""Pure enrichment of events: bots, device, browser/OS, source, channel, UTM, page type."""

from tapioca.enrich.bots import is_bot
from tapioca.enrich.enrichment import NO_RULES, Enrichment, SiteRules, enrich

__all__ = ["NO_RULES", "Enrichment", "SiteRules", "enrich", "is_bot"]
