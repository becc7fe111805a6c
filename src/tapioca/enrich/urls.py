"""The parts of a page URL and of a referrer that enrichment needs. Pure and cached."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

from tapioca.enrich.sources import click_id_source, lookup_app, lookup_host

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_ANDROID_APP = "android-app://"


@dataclass(frozen=True, slots=True)
class PageUrl:
    host: str | None  # normalised: lowercase, no "www.", no port
    path: str | None
    utm: tuple[str | None, str | None, str | None, str | None, str | None]  # UTM_FIELDS order
    ref: str | None  # the `ref` (else `source`) query parameter
    click_source: str | None  # the source implied by a gclid / msclkid click id


class Referrer(NamedTuple):
    """A tuple, so that it hashes fast as part of a cache key."""

    host: str  # normalised host, or the Android package of an android-app:// referrer
    name: str  # the known display name, else the host
    categories: frozenset[str]


NO_URL = PageUrl(host=None, path=None, utm=(None,) * 5, ref=None, click_source=None)


def normalise_host(host: str | None) -> str | None:
    """Lowercase, without a trailing dot, a port or a leading "www."; None when empty."""
    if not host:
        return None
    host = host.strip().lower().rstrip(".").removeprefix("www.")
    return host or None


def _query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query):
        key = key.strip().lower()
        value = value.strip()
        if value and key not in params:
            params[key] = value
    return params


@lru_cache(maxsize=32768)
def parse_page_url(url: str) -> PageUrl:
    """Host, path, UTM parameters, ref/source parameter and click id of a page URL."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return NO_URL
    params = _query(parts.query) if parts.query else {}
    return PageUrl(
        host=normalise_host(host),
        path=parts.path or ("/" if host else None),
        utm=(
            params.get("utm_source"),
            params.get("utm_medium"),
            params.get("utm_campaign"),
            params.get("utm_term"),
            params.get("utm_content"),
        ),
        ref=params.get("ref") or params.get("source"),
        click_source=click_id_source(params) if params else None,
    )


def _app_referrer(referrer: str) -> Referrer | None:
    package = referrer[len(_ANDROID_APP) :].split("/", 1)[0].strip().lower()
    if not package:
        return None
    known = lookup_app(package)
    if known is None:
        return Referrer(host=package, name=package, categories=frozenset())
    return Referrer(host=package, name=known.name, categories=known.categories)


@lru_cache(maxsize=8192)
def parse_referrer(referrer: str) -> Referrer | None:
    """The referring host and its known source; None for an empty or unparsable referrer."""
    referrer = referrer.strip()
    if referrer[: len(_ANDROID_APP)].lower() == _ANDROID_APP:
        return _app_referrer(referrer)
    if "://" not in referrer:
        referrer = "//" + referrer
    try:
        host = normalise_host(urlsplit(referrer).hostname)
    except ValueError:
        return None
    if host is None:
        return None
    known = lookup_host(host)
    if known is None:
        return Referrer(host=host, name=host, categories=frozenset())
    return Referrer(host=host, name=known.name, categories=known.categories)


@lru_cache(maxsize=256)
def _own_domains(domains: tuple[str, ...]) -> tuple[str, ...]:
    normalised = (normalise_host(d.strip().removeprefix("*.").lstrip(".")) for d in domains)
    return tuple(d for d in normalised if d)


def is_own_host(host: str, domains: tuple[str, ...], page_host: str | None) -> bool:
    """True when host is one of the site's domains (or the page's own host) or a subdomain."""
    own = _own_domains(domains)
    if page_host is not None:
        own = (*own, page_host)
    return any(host == d or host.endswith("." + d) for d in own)


@lru_cache(maxsize=32768)
def external_referrer(
    referrer: str, domains: tuple[str, ...], page_host: str | None
) -> Referrer | None:
    """The referrer unless it is empty, unparsable or on the site's own domain."""
    parsed = parse_referrer(referrer)
    if parsed is None or is_own_host(parsed.host, domains, page_host):
        return None
    return parsed
