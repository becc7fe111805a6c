"""Event-name normalisation (metrics.md, Event names)."""

from __future__ import annotations

import pytest

from tapioca.ingest.names import normalise_event_type
from tapioca.model.event import PAGE_VIEW, PURCHASE


@pytest.mark.parametrize(
    "name",
    ["page_view", "pageview", "$pageview", "page", "view_page", "Page", "PAGEVIEW", " pageview "],
)
def test_page_view_spellings(name: str) -> None:
    assert normalise_event_type(name) == PAGE_VIEW == "page_view"


@pytest.mark.parametrize(
    "name", ["purchase", "Purchase", "Order Completed", "order completed", "ORDER COMPLETED"]
)
def test_purchase_spellings(name: str) -> None:
    assert normalise_event_type(name) == PURCHASE == "purchase"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("view_cart", "view_cart"),
        ("Cart Viewed", "view_cart"),
        ("add_to_cart", "add_to_cart"),
        ("Product Added", "add_to_cart"),
        ("remove_from_cart", "remove_from_cart"),
        ("Product Removed", "remove_from_cart"),
        ("begin_checkout", "begin_checkout"),
        ("Checkout Started", "begin_checkout"),
    ],
)
def test_commerce_spellings(name: str, expected: str) -> None:
    assert normalise_event_type(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "Signup",
        "signup",
        "button click",
        "$autocapture",
        "Video Played",
        "  spaced  ",
        "page_views",
    ],
)
def test_other_names_are_kept_exactly_as_sent(name: str) -> None:
    assert normalise_event_type(name) == name
