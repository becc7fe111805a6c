"""Page type: client value, then the site's ordered glob rules, then the metrics.md defaults."""

from __future__ import annotations

import pytest

from support.factories import enriched
from support.reference import page_type_of
from tapioca.enrich import SiteRules


@pytest.mark.parametrize(
    ("path", "page_type"),
    [
        ("/", "home"),
        ("/product/tea-1", "product"),
        ("/products/milk-tea", "product"),
        ("/products/milk-tea/", "product"),
        ("/PRODUCTS/Milk-Tea", "product"),
        ("/p/12345", "product"),
        ("/category/tea", "category"),
        ("/collections/summer", "category"),
        ("/c/42", "category"),
        ("/cart", "cart"),
        ("/cart/", "cart"),
        ("/checkout", "checkout"),
        ("/checkout/payment", "checkout"),
        ("/checkouts/c/abc123", "checkout"),
        ("/search", "search"),
        ("/search?q=tapioca", "search"),
        ("/search/results", "search"),
        ("/account", "account"),
        ("/account/orders/7", "account"),
        ("/login", "account"),
        ("/login/", "account"),
        ("/register", "account"),
        ("/product", "other"),
        ("/products", "other"),
        ("/productivity", "other"),
        ("/cart/items", "other"),
        ("/cartography", "other"),
        ("/login-help", "other"),
        ("/blog/new-flavours", "other"),
        ("/about", "other"),
    ],
)
def test_default_page_types(path: str, page_type: str) -> None:
    assert enriched(path=path).page_type == page_type


def test_the_path_comes_from_the_url_when_not_sent() -> None:
    assert enriched(url="https://shop.example/collections/summer?page=2").page_type == "category"
    assert enriched(url="https://shop.example").page_type == "home"
    assert enriched(url="https://shop.example/cart#items").page_type == "cart"


def test_a_sent_path_wins_over_the_url() -> None:
    assert enriched(path="/cart", url="https://shop.example/products/tea").page_type == "cart"


def test_an_event_without_a_path_has_no_page_type() -> None:
    """Page type belongs to events on a page, as path does (metrics.md): none, not "other"."""
    assert enriched().page_type is None
    assert enriched(path="").page_type is None
    everything = SiteRules(page_type_rules=(("*", "everything"),))
    assert enriched(site=everything).page_type is None
    assert enriched(path="/x", site=everything).page_type == "everything"


def test_a_sent_page_type_is_kept_without_a_path() -> None:
    assert enriched(page_type="modal").page_type == "modal"


def test_site_rules_come_before_the_defaults() -> None:
    site = SiteRules(page_type_rules=(("/products/gift-*", "gift"), ("/", "landing")))
    assert enriched(path="/products/gift-card", site=site).page_type == "gift"
    assert enriched(path="/products/tea", site=site).page_type == "product"
    assert enriched(path="/", site=site).page_type == "landing"


def test_the_first_matching_site_rule_wins() -> None:
    rules = (("/blog/*", "blog"), ("/blog/news/*", "news"))
    forward = SiteRules(page_type_rules=rules)
    backward = SiteRules(page_type_rules=rules[::-1])
    assert enriched(path="/blog/news/launch", site=forward).page_type == "blog"
    assert enriched(path="/blog/news/launch", site=backward).page_type == "news"
    assert enriched(path="/blog/recipes", site=backward).page_type == "blog"


def test_site_globs_cross_slashes_are_anchored_and_case_insensitive() -> None:
    site = SiteRules(page_type_rules=(("/shop/*/item-?", "item"), ("*.pdf", "download")))
    assert enriched(path="/shop/a/b/c/item-7", site=site).page_type == "item"
    assert enriched(path="/SHOP/x/ITEM-7", site=site).page_type == "item"
    assert enriched(path="/shop/x/item-77", site=site).page_type == "other"
    assert enriched(path="/x/shop/y/item-7", site=site).page_type == "other"
    assert enriched(path="/docs/menu.pdf", site=site).page_type == "download"
    assert enriched(path="/docs/menu.pdf?v=2", site=site).page_type == "download"


def test_site_rules_match_the_url_path_too() -> None:
    site = SiteRules(page_type_rules=(("/lp/*", "landing"),))
    assert enriched(url="https://shop.example/lp/spring?utm_source=x", site=site).page_type == (
        "landing"
    )


def test_a_page_type_sent_by_the_client_wins() -> None:
    site = SiteRules(page_type_rules=(("*", "everything"),))
    assert enriched(path="/cart", page_type="upsell", site=site).page_type == "upsell"
    assert enriched(path="/cart", page_type="").page_type == "cart"


@pytest.mark.parametrize(
    "path", ["/", "/products/tea", "/category/drinks", "/cart", "/checkout", "/search",
             "/account/orders", "/login", "/about", "/blog/a", "", None],
)  # fmt: skip
@pytest.mark.parametrize("sent", [None, "upsell"])
def test_page_types_agree_with_the_reference(path: str | None, sent: str | None) -> None:
    """The independent reference (support/reference.py) gives each event the same type."""
    assert enriched(path=path, page_type=sent).page_type == page_type_of(path, sent)
