"""enrich(): one event's raw fields → the derived dimensions of metrics.md (Identity, Device,
Page type, Source and channel). Pure: reads packaged data files once, caches per distinct
User-Agent, URL, referrer and rule set, and does no other I/O.

Decisions where metrics.md is silent:
- Client-sent device, channel and page type win unchanged (only an empty string is "not sent").
- browser/os are ua-parser families; a UA it does not recognise gives "Other"; no UA gives None.
- A UA that no browser sent (curl, python-requests, Go-http-client, a server SDK, a native
  app; crawlers aside) says nothing of the device, as no UA does: the screen width decides,
  else "unknown". Its events are counted as any others.
- The source of a utm_source or ref/source parameter is the known name it stands for,
  matched case-insensitively (sources.resolve_source), else its site's first spelling
  (sites/spellings.py);
  referrer hosts map to known names too. A gclid/msclkid with no other source makes the
  source Google/Bing. The utm_source dimension keeps the value as sent.
- The page URL's own host counts as the site's domain, so internal navigation is no referrer.
- Referral: a referral/app/link medium, an external referrer, or a ref/source parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from tapioca.enrich.channel import classify_channel
from tapioca.enrich.device import device_from_screen_width, parse_user_agent
from tapioca.enrich.page_type import page_type_for
from tapioca.enrich.sources import resolve_source
from tapioca.enrich.urls import NO_URL, Referrer, external_referrer, parse_page_url

UNKNOWN_DEVICE = "unknown"


@dataclass(frozen=True, slots=True)
class SiteRules:
    """Per-site settings that enrichment needs."""

    # The site's own hosts; a referrer on one of them or any subdomain is no referrer.
    domains: tuple[str, ...] = ()
    # Ordered (glob on the path, page_type); the first match wins, before the defaults.
    page_type_rules: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Enrichment:
    """The derived dimensions of one event (equal results may be the same instance)."""

    is_bot: bool  # known crawler UA (bots.txt)
    device: str  # client value, else a browser's UA, else screen width, else "unknown"
    browser: str | None  # ua-parser family; None without a UA
    os: str | None  # ua-parser family; None without a UA
    source: str | None  # None = direct
    channel: str  # client value, else the metrics.md channel table
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None  # utm_*: the event's field, else the URL's query parameter
    page_type: str | None  # client value, else the site's rules or the defaults; None: no path


NO_RULES = SiteRules()  # a site without settings

# Enrichments are immutable, so equal results share one instance: a hit costs a dictionary
# lookup instead of the frozen dataclass's twelve object.__setattr__ calls.
_interned = lru_cache(maxsize=16384)(Enrichment)


@lru_cache(maxsize=16384)
def _attribute(
    utm_source: str | None,
    page_ref: str | None,
    referrer: Referrer | None,
    utm_medium: str | None,
    click_source: str | None,
) -> tuple[str | None, str]:
    """(source, channel): utm_source, else ref/source parameter, else the external referrer,
    else the click id's engine, each as the source dimension names it; the channel by the
    metrics.md table."""
    tagged = utm_source or page_ref
    if tagged:
        known = resolve_source(tagged)
        source: str | None = known.name or None
        categories = known.categories
        referred = referrer is not None or not utm_source
    elif referrer is not None:
        source, categories, referred = referrer.name, referrer.categories, True
    else:
        source, referred = click_source, False
        categories = resolve_source(click_source).categories if click_source else frozenset()
    channel = classify_channel(source, utm_medium, categories, referred, click_source is not None)
    return source, channel


def enrich(
    *,
    user_agent: str | None,
    screen_width: int | None,
    url: str | None,
    path: str | None,
    referrer: str | None,
    utm_source: str | None,
    utm_medium: str | None,
    utm_campaign: str | None,
    utm_term: str | None,
    utm_content: str | None,
    device: str | None,
    channel: str | None,
    page_type: str | None,
    site: SiteRules = NO_RULES,
) -> Enrichment:
    """Derive the event's dimensions; a value sent by the client wins where metrics.md says so."""
    ua = parse_user_agent(user_agent) if user_agent else None
    page = parse_page_url(url) if url else NO_URL
    url_source, url_medium, url_campaign, url_term, url_content = page.utm
    utm_source = utm_source or url_source
    utm_medium = utm_medium or url_medium
    external = external_referrer(referrer, site.domains, page.host) if referrer else None
    source, derived_channel = _attribute(
        utm_source, page.ref, external, utm_medium, page.click_source
    )
    return _interned(
        ua.is_bot if ua is not None else False,
        device
        or (ua.device if ua is not None else None)
        or device_from_screen_width(screen_width)
        or UNKNOWN_DEVICE,
        ua.browser if ua is not None else None,
        ua.os if ua is not None else None,
        source,
        channel or derived_channel,
        utm_source,
        utm_medium,
        utm_campaign or url_campaign,
        utm_term or url_term,
        utm_content or url_content,
        page_type or page_type_for(path or page.path, site.page_type_rules),
    )
