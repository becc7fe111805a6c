"""Micro-benchmark of tapioca.enrich.enrich: 100k calls over ~50 distinct User-Agents.

Run: .venv/bin/python -m bench.bench_enrich [calls]
Prints the cold pass (first sight of every UA/URL/referrer) and the warm µs per call.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from tapioca.enrich import SiteRules, enrich

_BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/{v}.0 Chrome/117.0.0.0 Mobile Safari/537.36",
]
_APPLE = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Safari/605.1.15",
]
_BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
]
USER_AGENTS = (
    [t.format(v=v) for t in _BROWSERS for v in (122, 123, 124, 125)]
    + [t.format(v=v) for t in _APPLE for v in (2, 3, 4)]
    + _BOTS
    + [None]
)
REFERRERS = [
    None,
    None,
    None,
    "https://www.google.com/",
    "https://www.google.co.uk/search?q=tapioca+pearls",
    "https://www.bing.com/search?q=tapioca",
    "https://duckduckgo.com/",
    "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example%2F",
    "https://t.co/x",
    "https://www.youtube.com/",
    "android-app://com.google.android.gm/",
    "https://news.ycombinator.com/item?id=1",
    "https://shop.example/products/tea",
    "https://blog.shop.example/post",
]
_PATHS = ["/", "/products/tea", "/products/milk", "/collections/all", "/cart", "/checkout",
          "/search", "/account/orders", "/blog/post-1", "/about"]  # fmt: skip
_QUERIES = ["", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
            "?utm_source=google&utm_medium=cpc", "?gclid=abc123", "?ref=producthunt",
            "?utm_source=facebook&utm_medium=paid_social"]  # fmt: skip
URLS = [f"https://shop.example{p}{q}" for p in _PATHS for q in _QUERIES]
SITE = SiteRules(
    domains=("shop.example",),
    page_type_rules=(("/blog/*", "blog"), ("/about", "content"), ("/products/gift-*", "gift")),
)


def _calls(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        out.append(
            dict(
                user_agent=rng.choice(USER_AGENTS),
                screen_width=rng.choice((None, 390, 820, 1440)),
                url=rng.choice(URLS),
                path=None,
                referrer=rng.choice(REFERRERS),
                utm_source=None,
                utm_medium=None,
                utm_campaign=None,
                utm_term=None,
                utm_content=None,
                device=None,
                channel=rng.choice((None, None, None, "Email")),
                page_type=None,
                site=SITE,
            )
        )
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    calls = _calls(n)
    start = time.perf_counter()
    for kw in calls:
        enrich(**kw)
    cold = time.perf_counter() - start
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for kw in calls:
            enrich(**kw)
        best = min(best, time.perf_counter() - start)
    print(f"distinct UAs={len(USER_AGENTS)} urls={len(URLS)} referrers={len(REFERRERS)} calls={n}")
    print(f"cold pass: {cold * 1e6 / n:.2f} us/call (includes parser load and first parses)")
    print(f"warm: {best * 1e6 / n:.2f} us/call (best of 3 passes)")


if __name__ == "__main__":
    main()
