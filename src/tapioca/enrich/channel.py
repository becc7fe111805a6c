"""Channel rules of metrics.md ("Source and channel"): the first row that matches wins.

Matching is case-insensitive. Source categories (search, social, video, email) come from the
packaged source list (sources.json); the mediums below are the table's own values.
"""

from __future__ import annotations

import re

PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$", re.IGNORECASE)
DISPLAY_MEDIUMS = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIUMS = frozenset({"social", "social-network", "social-media", "sm"})
EMAIL_VALUES = frozenset({"email", "e-mail", "e_mail", "newsletter"})
REFERRAL_MEDIUMS = frozenset({"referral", "app", "link"})

CHANNELS = (
    "Direct",
    "Paid Search",
    "Paid Social",
    "Display",
    "Paid Other",
    "Organic Social",
    "Organic Video",
    "Organic Search",
    "Email",
    "Affiliates",
    "Referral",
    "Unassigned",
)


def _paid(categories: frozenset[str], medium: str, click_id: bool) -> str | None:
    paid = bool(medium) and PAID_MEDIUM.match(medium) is not None
    if click_id or (paid and "search" in categories):
        return "Paid Search"
    if paid and "social" in categories:
        return "Paid Social"
    if medium in DISPLAY_MEDIUMS:
        return "Display"
    return "Paid Other" if paid else None


def _organic(categories: frozenset[str], medium: str) -> str | None:
    if "social" in categories or medium in SOCIAL_MEDIUMS:
        return "Organic Social"
    if "video" in categories or "video" in medium:
        return "Organic Video"
    if "search" in categories or medium == "organic":
        return "Organic Search"
    return None


def _other(source: str, categories: frozenset[str], medium: str, referred: bool) -> str:
    if source in EMAIL_VALUES or medium in EMAIL_VALUES or "email" in categories:
        return "Email"
    if medium == "affiliate":
        return "Affiliates"
    if medium in REFERRAL_MEDIUMS or referred:
        return "Referral"
    return "Unassigned"


def classify_channel(
    source: str | None,
    medium: str | None,
    categories: frozenset[str],
    referred: bool,
    click_id: bool,
) -> str:
    """The channel of an event without a client-sent channel.

    source: the resolved source (utm_source, ref/source parameter or referrer name);
    medium: utm_medium; categories: the source's categories; referred: an external
    referrer (or a ref/source parameter) is present; click_id: a gclid/msclkid is present.
    """
    src = (source or "").strip().lower()
    med = (medium or "").strip().lower()
    if not src and not med:
        return "Direct"
    return (
        _paid(categories, med, click_id)
        or _organic(categories, med)
        or _other(src, categories, med, referred)
    )
