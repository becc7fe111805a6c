"""Which web origins browsers may send a site's events from (CORS of the ingest routes).

A site accepts pages on its own domains (and below them, on any scheme and port; a domain
written with a port, "localhost:3000", on that port only), or any origin when its
``any_origin`` says so; a site that does not say (None) follows the instance's default.
Pure: the sites come from sites/catalog.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from tapioca.enrich.urls import is_own_host, normalise_host
from tapioca.sites.site import Site


class Origin(NamedTuple):
    host: str  # normalised as the site's domains are (enrich/urls.normalise_host)
    port: int | None


@lru_cache(maxsize=1024)
def parse_origin(value: str) -> Origin | None:
    """The host and port of an Origin header; None for "null" (a sandboxed or local page)
    and for anything that is no origin."""
    try:
        parts = urlsplit(value.strip())
        host, port = normalise_host(parts.hostname), parts.port
    except ValueError:
        return None
    if not parts.scheme or host is None:
        return None
    return Origin(host, port)


def on_domains(origin: Origin, domains: tuple[str, ...]) -> bool:
    """Whether the origin is on one of ``domains`` or below one."""
    if is_own_host(origin.host, domains, None):
        return True
    return origin.port is not None and is_own_host(f"{origin.host}:{origin.port}", domains, None)


def site_accepts(site: Site, origin: Origin | None, any_by_default: bool) -> bool:
    """Whether browsers on ``origin`` (None: no origin one can name) may send the site's
    events."""
    any_origin = any_by_default if site.any_origin is None else site.any_origin
    return any_origin or (origin is not None and on_domains(origin, site.domains))


class OriginPolicy(NamedTuple):
    """What the sites accept together: a preflight names no site (the events that follow
    do), so it is answered for an origin that some site accepts."""

    any_origin: bool
    domains: tuple[str, ...]

    def accepts(self, origin: Origin | None) -> bool:
        return self.any_origin or (origin is not None and on_domains(origin, self.domains))


def policy_of(sites: Iterable[Site], any_by_default: bool, new_sites: bool) -> OriginPolicy:
    """The policy of ``sites``; ``new_sites``: events of a site not made yet make it (and it
    follows the default)."""
    any_origin = new_sites and any_by_default
    domains: set[str] = set()
    for site in sites:
        any_origin = any_origin or (any_by_default if site.any_origin is None else site.any_origin)
        domains.update(site.domains)
    return OriginPolicy(any_origin, tuple(sorted(domains)))
