"""Normalised event names (metrics.md, Event names)."""

from __future__ import annotations

from tapioca.model.event import PAGE_VIEW, PURCHASE, REFUND, VIEW_CART

_SPELLINGS: dict[str, str] = {
    "page_view": PAGE_VIEW,
    "pageview": PAGE_VIEW,
    "$pageview": PAGE_VIEW,
    "page": PAGE_VIEW,
    "view_page": PAGE_VIEW,
    "page view": PAGE_VIEW,
    "page viewed": PAGE_VIEW,
    "purchase": PURCHASE,
    "order completed": PURCHASE,
    "order_completed": PURCHASE,
    "view_cart": VIEW_CART,
    "cart viewed": VIEW_CART,
    "refund": REFUND,
    "order refunded": REFUND,
    "order_refunded": REFUND,
    "add_to_cart": "add_to_cart",
    "product added": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "product removed": "remove_from_cart",
    "begin_checkout": "begin_checkout",
    "checkout started": "begin_checkout",
}


def normalise_event_type(name: str) -> str:
    """Map every known spelling to its canonical name; keep other names as sent."""
    return _SPELLINGS.get(name.strip().lower(), name)
