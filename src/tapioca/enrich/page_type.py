"""Page type of a path: the site's ordered rules, else the defaults of metrics.md.

Page type, like path, belongs to events on a page: an event without a path has none (the
``null`` row of a breakdown, as for path). Matching is case-insensitive. Site rules are
fnmatch-style globs on the path without its query ("*" matches anything, "/" included;
"?" one character; "[...]" a set); the first matching rule wins. Defaults ignore a
trailing slash ("/cart/" is the cart).
"""

from __future__ import annotations

import re
from fnmatch import translate
from functools import lru_cache

OTHER = "other"

_EXACT = {"/": "home", "/cart": "cart", "/login": "account", "/register": "account"}
_PREFIXES = (
    ("/product/", "product"),
    ("/products/", "product"),
    ("/p/", "product"),
    ("/category/", "category"),
    ("/collections/", "category"),
    ("/c/", "category"),
    ("/checkout", "checkout"),
    ("/search", "search"),
    ("/account", "account"),
)


def default_page_type(path: str) -> str:
    """The metrics.md defaults for a path (query already removed)."""
    path = path.lower()
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    exact = _EXACT.get(path)
    if exact is not None:
        return exact
    for prefix, page_type in _PREFIXES:
        if path.startswith(prefix):
            return page_type
    return OTHER


@lru_cache(maxsize=256)
def compile_rules(
    rules: tuple[tuple[str, str], ...],
) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Compile a site's (glob, page_type) rules once per distinct rule set."""
    return tuple((re.compile(translate(glob), re.IGNORECASE), kind) for glob, kind in rules)


@lru_cache(maxsize=32768)
def page_type_for(path: str | None, rules: tuple[tuple[str, str], ...] = ()) -> str | None:
    """The site's first matching rule, else the default; None without a path."""
    if not path:
        return None
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    for pattern, page_type in compile_rules(rules):
        if pattern.match(path):
            return page_type
    return default_page_type(path)
