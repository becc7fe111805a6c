"""Source and UTM fields: utm_source, ref/source parameters, referrer hosts, own domains."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from support.factories import enriched
from support.reference import source_of
from tapioca.enrich import SiteRules
from tapioca.enrich.sources import build_catalog, is_known_name, resolve_source
from tapioca.sites.spellings import spelling_key

SHOP = SiteRules(domains=("shop.example",))


@pytest.mark.parametrize(
    ("referrer", "source"),
    [
        ("https://www.google.com/", "Google"),
        ("https://www.google.co.uk/search?q=tapioca+pearls&hl=en", "Google"),
        ("https://www.google.com.br/", "Google"),
        ("https://www.google.de/", "Google"),
        ("https://news.google.com/articles/abc", "Google"),
        ("android-app://com.google.android.googlequicksearchbox/", "Google"),
        ("https://www.bing.com/search?q=tapioca&form=QBLH", "Bing"),
        ("HTTPS://WWW.BING.COM:443/search?q=x", "Bing"),
        ("https://cn.bing.com/", "Bing"),
        ("https://duckduckgo.com/", "DuckDuckGo"),
        ("https://search.yahoo.com/search?p=tapioca", "Yahoo"),
        ("https://search.yahoo.co.jp/", "Yahoo"),
        ("https://yandex.ru/search/?text=tapioca", "Yandex"),
        ("https://ya.ru/", "Yandex"),
        ("https://www.baidu.com/link?url=abc", "Baidu"),
        ("https://www.ecosia.org/search?q=tapioca", "Ecosia"),
        ("https://search.brave.com/search?q=tapioca", "Brave"),
        ("https://www.startpage.com/", "Startpage"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example%2F&h=AT0", "Facebook"),
        ("https://m.facebook.com/", "Facebook"),
        ("android-app://com.facebook.katana/", "Facebook"),
        ("https://l.instagram.com/?u=https%3A%2F%2Fshop.example", "Instagram"),
        ("https://t.co/x", "X"),
        ("https://twitter.com/", "X"),
        ("https://x.com/someone/status/1", "X"),
        ("https://www.linkedin.com/", "LinkedIn"),
        ("https://lnkd.in/abc", "LinkedIn"),
        ("https://www.pinterest.co.uk/pin/1/", "Pinterest"),
        ("https://old.reddit.com/r/tea/", "Reddit"),
        ("https://out.reddit.com/t3_abc", "Reddit"),
        ("https://www.tiktok.com/", "TikTok"),
        ("https://www.youtube.com/", "YouTube"),
        ("https://m.youtube.com/watch?v=1", "YouTube"),
        ("https://youtu.be/abc", "YouTube"),
        ("https://vimeo.com/123", "Vimeo"),
        ("https://www.twitch.tv/somebody", "Twitch"),
        ("android-app://com.google.android.gm/", "Gmail"),
        ("https://mail.google.com/", "Gmail"),
        ("https://outlook.live.com/", "Outlook"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News"),
        ("https://www.tea-blog.example/post/1", "tea-blog.example"),
        ("https://Blog.Example.ORG.:8443/x", "blog.example.org"),
        ("android-app://org.example.reader/", "org.example.reader"),
        ("www.google.com", "Google"),
        ("https://google.example.com/", "google.example.com"),
    ],
)
def test_referrer_hosts_map_to_known_names(referrer: str, source: str) -> None:
    assert enriched(referrer=referrer, url="https://shop.example/", site=SHOP).source == source


@pytest.mark.parametrize(
    "referrer",
    [
        "https://shop.example/cart",
        "https://www.shop.example/",
        "https://blog.shop.example/post",
        "https://WWW.SHOP.EXAMPLE/",
        "https://a.b.shop.example/",
        "",
        "https://",
        "https://[::1",
    ],
)
def test_own_domain_and_empty_referrers_are_no_referrer(referrer: str) -> None:
    result = enriched(referrer=referrer, url="https://shop.example/", site=SHOP)
    assert (result.source, result.channel) == (None, "Direct")


def test_a_similar_but_foreign_domain_is_a_referrer() -> None:
    result = enriched(referrer="https://notshop.example/", site=SHOP)
    assert (result.source, result.channel) == ("notshop.example", "Referral")


def test_site_domains_given_with_www_cover_the_bare_host() -> None:
    site = SiteRules(domains=("www.shop.example", "shop-cdn.example"))
    assert enriched(referrer="https://shop.example/", site=site).source is None
    assert enriched(referrer="https://img.shop-cdn.example/", site=site).source is None


def test_the_page_host_is_the_site_even_without_configured_domains() -> None:
    result = enriched(url="https://shop.example/cart", referrer="https://shop.example/products/tea")
    assert (result.source, result.channel) == (None, "Direct")


def test_utm_source_wins_over_ref_parameter_and_referrer() -> None:
    result = enriched(
        url="https://shop.example/?ref=producthunt",
        referrer="https://www.google.com/",
        utm_source="spring-mailing",
    )
    assert result.source == "spring-mailing"


@pytest.mark.parametrize(
    "fields",
    [
        {"utm_source": "google"},
        {"utm_source": "Google"},
        {"utm_source": " GOOGLE "},
        {"utm_source": "google.com"},
        {"utm_source": "www.google.de"},
        {"utm_source": "adwords"},
        {"url": "https://shop.example/?utm_source=gOOgle"},
        {"url": "https://shop.example/?ref=Google"},
        {"referrer": "https://www.google.com/"},
        {"referrer": "https://google.com/search?q=tea"},
        {"url": "https://shop.example/?gclid=abc"},
    ],
)
def test_every_spelling_of_a_known_source_is_one_source(fields: dict[str, Any]) -> None:
    """utm_source=google, Google and a google.com referrer are one source (metrics.md)."""
    assert enriched(**fields).source == "Google"


@pytest.mark.parametrize("utm_source", ["Partner-42", "partner-42", "PARTNER-42", " partner-42"])
def test_an_unknown_source_is_kept_as_sent_under_one_key(utm_source: str) -> None:
    """Enrichment keeps the spelling; the site's first spelling is applied on writing
    (sites/spellings.py, tests/integration/test_source_spellings.py)."""
    result = enriched(utm_source=utm_source)
    assert (result.source, result.utm_source) == (utm_source.strip(), utm_source)
    assert result.source is not None and not is_known_name(result.source)
    assert spelling_key(result.source) == "partner-42"


def test_an_unknown_utm_source_and_its_referrer_host_are_one_source() -> None:
    assert enriched(utm_source="Tea-Blog.Example").source == "Tea-Blog.Example"
    assert enriched(referrer="https://www.Tea-Blog.example/x").source == "tea-blog.example"
    assert spelling_key("Tea-Blog.Example") == spelling_key("tea-blog.example")


@pytest.mark.parametrize("name", ["Google", "Facebook", "Email", "X", "TikTok"])
def test_known_names_are_known_in_their_own_spelling_only(name: str) -> None:
    assert is_known_name(name)
    assert not is_known_name(name.lower()) or name.lower() == name
    assert not is_known_name(name.upper()) or name.upper() == name


def test_a_blank_utm_source_is_no_source() -> None:
    assert enriched(utm_source="  ").source is None


def test_the_utm_source_dimension_keeps_the_value_as_sent() -> None:
    result = enriched(utm_source="FaceBook")
    assert (result.source, result.utm_source) == ("Facebook", "FaceBook")


def test_ref_then_source_query_parameter_win_over_the_referrer() -> None:
    ref = enriched(url="https://shop.example/?ref=producthunt", referrer="https://www.google.com/")
    assert ref.source == "Product Hunt"
    src = enriched(url="https://shop.example/?source=podcast&ref=", referrer="https://t.co/x")
    assert src.source == "podcast"
    both = enriched(url="https://shop.example/?source=podcast&ref=hn")
    assert both.source == "Hacker News"


def test_click_ids_imply_the_engine_when_nothing_else_names_a_source() -> None:
    assert enriched(url="https://shop.example/?gclid=Cj0KCQ").source == "Google"
    assert enriched(url="https://shop.example/?msclkid=4f1c2").source == "Bing"
    tagged = enriched(url="https://shop.example/?gclid=Cj0KCQ", utm_source="Spring-Sale")
    assert tagged.source == "Spring-Sale"


def test_utm_fields_come_from_the_url_query() -> None:
    result = enriched(
        url=(
            "https://shop.example/products/tea?utm_source=newsletter&utm_medium=email"
            "&utm_campaign=spring%20sale&utm_term=milk+tea&utm_content=hero-banner#top"
        )
    )
    assert (
        result.utm_source,
        result.utm_medium,
        result.utm_campaign,
        result.utm_term,
        result.utm_content,
        result.source,
    ) == ("newsletter", "email", "spring sale", "milk tea", "hero-banner", "Email")


def test_event_utm_fields_win_field_by_field_over_the_url() -> None:
    result = enriched(
        url="https://shop.example/?utm_source=url-src&utm_medium=url-med&utm_campaign=url-camp",
        utm_source="event-src",
        utm_term="event-term",
    )
    assert (
        result.utm_source,
        result.utm_medium,
        result.utm_campaign,
        result.utm_term,
        result.utm_content,
    ) == ("event-src", "url-med", "url-camp", "event-term", None)


def test_utm_parameter_names_are_case_insensitive_and_the_first_value_wins() -> None:
    result = enriched(url="https://shop.example/?UTM_Source=a&utm_source=b&utm_medium=")
    assert (result.utm_source, result.utm_medium) == ("a", None)


def test_relative_urls_still_give_their_query() -> None:
    result = enriched(url="/products/tea?utm_source=qr&utm_medium=print")
    assert (result.utm_source, result.utm_medium, result.page_type) == ("qr", "print", "product")


def test_no_url_no_referrer_no_utm_is_direct() -> None:
    result = enriched()
    assert (result.source, result.channel, result.utm_source) == (None, "Direct", None)


@pytest.mark.parametrize(
    ("value", "categories"),
    [
        ("google", {"search"}),
        ("GOOGLE", {"search"}),
        ("Google", {"search"}),
        ("google.com", {"search"}),
        ("www.bing.com", {"search"}),
        ("fb", {"social"}),
        ("ig", {"social"}),
        ("t.co", {"social"}),
        ("TikTok", {"social", "video"}),
        ("youtube", {"video"}),
        ("newsletter", {"email"}),
        ("gmail", {"email"}),
        ("partner-42", set()),
    ],
)
def test_source_values_are_classified_case_insensitively(value: str, categories: set[str]) -> None:
    assert resolve_source(value).categories == categories


def _packaged() -> dict[str, Any]:
    text = resources.files("tapioca.enrich").joinpath("sources.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_the_packaged_lists_hold_the_sources_metrics_md_requires() -> None:
    by_name = {s["name"]: set(s["categories"]) for s in _packaged()["sources"]}
    for name in ("Google", "Bing", "DuckDuckGo", "Yahoo", "Yandex", "Baidu", "Ecosia"):
        assert by_name[name] == {"search"}
    assert by_name["Brave"] == by_name["Startpage"] == {"search"}
    for name in ("Facebook", "Instagram", "X", "LinkedIn", "Pinterest", "Reddit"):
        assert by_name[name] == {"social"}
    assert by_name["TikTok"] == {"social", "video"}
    for name in ("YouTube", "Vimeo", "Twitch"):
        assert by_name[name] == {"video"}


def test_the_catalog_refuses_a_host_listed_for_two_sources() -> None:
    data = {
        "sources": [
            {"name": "A", "categories": ["search"], "hosts": ["a.example"]},
            {"name": "B", "categories": ["social"], "hosts": ["A.example"]},
        ]
    }
    with pytest.raises(ValueError, match=r"'a\.example' is listed for two sources"):
        build_catalog(data)


def test_the_catalog_refuses_an_unknown_category() -> None:
    data = {"sources": [{"name": "A", "categories": ["podcast"], "hosts": ["a.example"]}]}
    with pytest.raises(ValueError, match=r"unknown categories \['podcast'\]"):
        build_catalog(data)


SPELLINGS = [
    ("google", None), ("Google", None), ("GOOGLE", None), ("google.com", None),
    (None, "https://www.google.com/"), (None, "https://google.de/search?q=x"),
    ("facebook", "https://www.google.com/"), ("FB", None), (None, "https://l.facebook.com/x"),
    ("Newsletter", None), ("e-mail", None), ("Partner", None), ("partner", None),
    (None, "https://news.example.org/post"), (None, "https://www.News.Example.org/"),
    ("news.example.org", None), ("x", None), (None, "https://t.co/abc"), (None, None),
]  # fmt: skip


@pytest.mark.parametrize(("utm_source", "referrer"), SPELLINGS)
def test_sources_agree_with_the_reference(utm_source: str | None, referrer: str | None) -> None:
    """The independent reference (support/reference.py) names each source the same way."""
    result = enriched(utm_source=utm_source, referrer=referrer, url="https://shop.example/")
    assert result.source == source_of(utm_source, referrer)


def test_one_row_per_source_whatever_the_spelling() -> None:
    names = {enriched(utm_source=u, referrer=r).source for u, r in SPELLINGS}
    names = {n if n is None or is_known_name(n) else spelling_key(n) for n in names}
    assert names == {"Google", "Facebook", "Email", "partner", "news.example.org", "X", None}
