"""Known traffic sources: referrer hosts, Android apps and utm values → a display name and
its categories (search, social, video, email). The list is data: sources.json beside this file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

CATEGORIES = frozenset({"search", "social", "video", "email"})


@dataclass(frozen=True, slots=True)
class KnownSource:
    name: str
    categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class SourceCatalog:
    hosts: dict[str, KnownSource]  # host → source; also matches its subdomains
    brands: dict[str, KnownSource]  # "google" (from "google.*") → source, under any TLD
    apps: dict[str, KnownSource]  # Android package → source
    aliases: dict[str, KnownSource]  # lowercase utm_source / ref value → source
    click_ids: tuple[tuple[str, str], ...]  # (query parameter, source name)


def _entry(raw: dict[str, Any]) -> KnownSource:
    categories = frozenset(str(c) for c in raw.get("categories", ()))
    unknown = categories - CATEGORIES
    if unknown:
        raise ValueError(f"sources.json: {raw['name']} has unknown categories {sorted(unknown)}")
    return KnownSource(name=str(raw["name"]), categories=categories)


def _add(table: dict[str, KnownSource], key: str, source: KnownSource) -> None:
    key = key.strip().lower()
    if table.get(key, source) != source:
        raise ValueError(f"sources.json: {key!r} is listed for two sources")
    table[key] = source


def build_catalog(data: dict[str, Any]) -> SourceCatalog:
    """Index the sources.json document; refuses duplicates and unknown categories."""
    catalog = SourceCatalog(hosts={}, brands={}, apps={}, aliases={}, click_ids=())
    for raw in data["sources"]:
        source = _entry(raw)
        for host in raw.get("hosts", ()):
            if host.endswith(".*"):
                _add(catalog.brands, host[:-2], source)
            else:
                _add(catalog.hosts, host, source)
        for app in raw.get("apps", ()):
            _add(catalog.apps, app, source)
        for alias in [source.name, *raw.get("aliases", ()), *raw.get("apps", ())]:
            _add(catalog.aliases, alias, source)
    clicks = tuple((str(k).lower(), str(v)) for k, v in data.get("click_ids", {}).items())
    return SourceCatalog(catalog.hosts, catalog.brands, catalog.apps, catalog.aliases, clicks)


@lru_cache(maxsize=1)
def catalog() -> SourceCatalog:
    """The packaged catalog, read once."""
    text = resources.files(__package__).joinpath("sources.json").read_text("utf-8")
    return build_catalog(json.loads(text))


def _is_tld(labels: list[str]) -> bool:
    """A country or generic top-level domain such as "de", "com", "co.uk", "com.br"."""
    return 1 <= len(labels) <= 2 and all(0 < len(label) <= 3 for label in labels)


def lookup_host(host: str) -> KnownSource | None:
    """The known source of a normalised host (lowercase, no "www.", no port), if any.

    The most specific entry wins: the host itself, then each parent domain, then the
    brand patterns ("google.*" matches google.de, google.co.uk, news.google.com).
    """
    cat = catalog()
    labels = host.split(".")
    for i in range(len(labels)):
        found = cat.hosts.get(".".join(labels[i:]))
        if found is not None:
            return found
    for i, label in enumerate(labels):
        found = cat.brands.get(label)
        if found is not None and _is_tld(labels[i + 1 :]):
            return found
    return None


def lookup_app(package: str) -> KnownSource | None:
    """The known source of an Android app package (android-app:// referrers)."""
    return catalog().apps.get(package.lower())


@lru_cache(maxsize=4096)
def resolve_source(value: str) -> KnownSource:
    """A source value (a utm_source, a ref parameter or a display name) as the source
    dimension holds it, with its categories. Known sources are matched case-insensitively
    by name, alias or host ("google", "Google", "google.com" are all Google); an unknown
    one is kept as sent, and stored in its site's first spelling (sites/spellings.py:
    "Partner" and "partner" are one source)."""
    spelled = value.strip()
    folded = spelled.lower()
    found = catalog().aliases.get(folded)
    if found is None and "." in folded and " " not in folded:
        found = lookup_host(folded.split("/", 1)[0].removeprefix("www."))
    return found if found is not None else KnownSource(name=spelled, categories=frozenset())


def is_known_name(source: str) -> bool:
    """Whether ``source`` is a known source's own name, as resolve_source gives it."""
    found = catalog().aliases.get(source.lower())
    return found is not None and found.name == source


def click_id_source(params: dict[str, str]) -> str | None:
    """The source implied by an ad click id among the URL's query parameters."""
    for name, source in catalog().click_ids:
        if params.get(name):
            return source
    return None
