"""Every row of the metrics.md channel table, in order, case-insensitive; client wins."""

from __future__ import annotations

from typing import Any

import pytest

from support.factories import enriched
from tapioca.enrich import SiteRules
from tapioca.enrich.channel import CHANNELS, classify_channel

SHOP = SiteRules(domains=("shop.example",))
LANDING = "https://shop.example/products/tea"


CASES: list[tuple[str, dict[str, Any], str | None]] = [
    # (expected channel, event fields, expected source: known names as the catalog
    # spells them, unknown values in lower case)
    ("Direct", {}, None),
    ("Direct", {"url": LANDING}, None),
    ("Direct", {"url": LANDING, "referrer": "https://shop.example/"}, None),
    ("Direct", {"url": LANDING + "?utm_campaign=spring"}, None),
    ("Paid Search", {"utm_source": "google", "utm_medium": "cpc"}, "Google"),
    ("Paid Search", {"url": LANDING + "?utm_source=bing&utm_medium=ppc"}, "Bing"),
    ("Paid Search", {"utm_source": "Google", "utm_medium": "paidsearch"}, "Google"),
    ("Paid Search", {"utm_source": "duckduckgo", "utm_medium": "retargeting"}, "DuckDuckGo"),
    (
        "Paid Search",
        {"url": LANDING + "?utm_medium=cpc", "referrer": "https://www.google.co.uk/"},
        "Google",
    ),
    ("Paid Search", {"url": LANDING + "?gclid=Cj0KCQjw"}, "Google"),
    ("Paid Search", {"url": LANDING + "?msclkid=4f1c2d"}, "Bing"),
    ("Paid Search", {"url": LANDING + "?gclid=Cj0", "referrer": "https://google.com/"}, "Google"),
    ("Paid Search", {"url": LANDING + "?gclid=Cj0&utm_source=newsletter"}, "Email"),
    ("Paid Search", {"utm_source": "google", "utm_medium": "cpm"}, "Google"),
    ("Paid Social", {"utm_source": "facebook", "utm_medium": "paid_social"}, "Facebook"),
    ("Paid Social", {"utm_source": "ig", "utm_medium": "cpc"}, "Instagram"),
    ("Paid Social", {"utm_source": "tiktok", "utm_medium": "paid"}, "TikTok"),
    (
        "Paid Social",
        {"url": LANDING + "?utm_medium=cpc", "referrer": "https://l.facebook.com/l.php?u=x"},
        "Facebook",
    ),
    ("Display", {"utm_source": "dv360", "utm_medium": "display"}, "dv360"),
    ("Display", {"utm_source": "dv360", "utm_medium": "banner"}, "dv360"),
    ("Display", {"utm_source": "dv360", "utm_medium": "expandable"}, "dv360"),
    ("Display", {"utm_source": "dv360", "utm_medium": "interstitial"}, "dv360"),
    ("Display", {"utm_source": "dv360", "utm_medium": "cpm"}, "dv360"),
    ("Display", {"utm_source": "facebook", "utm_medium": "Banner"}, "Facebook"),
    ("Paid Other", {"utm_source": "partner", "utm_medium": "retargeting"}, "partner"),
    ("Paid Other", {"utm_source": "podcast", "utm_medium": "cpv"}, "podcast"),
    ("Paid Other", {"utm_source": "newsletter", "utm_medium": "paid"}, "Email"),
    ("Paid Other", {"utm_medium": "ppc"}, None),
    ("Organic Social", {"url": LANDING, "referrer": "https://t.co/x"}, "X"),
    ("Organic Social", {"url": LANDING, "referrer": "https://l.facebook.com/l.php"}, "Facebook"),
    ("Organic Social", {"url": LANDING, "referrer": "https://www.tiktok.com/"}, "TikTok"),
    ("Organic Social", {"utm_source": "linkedin"}, "LinkedIn"),
    ("Organic Social", {"utm_source": "mastodon.example", "utm_medium": "sm"}, "mastodon.example"),
    ("Organic Social", {"utm_source": "forum", "utm_medium": "social-network"}, "forum"),
    ("Organic Social", {"utm_source": "Forum", "utm_medium": "Social-Media"}, "Forum"),
    ("Organic Social", {"utm_source": "newsletter", "utm_medium": "social"}, "Email"),
    ("Organic Video", {"url": LANDING, "referrer": "https://www.youtube.com/"}, "YouTube"),
    ("Organic Video", {"url": LANDING, "referrer": "https://vimeo.com/1"}, "Vimeo"),
    ("Organic Video", {"referrer": "https://www.twitch.tv/someone"}, "Twitch"),
    ("Organic Video", {"utm_source": "partner", "utm_medium": "video-review"}, "partner"),
    ("Organic Search", {"url": LANDING, "referrer": "https://www.google.com/"}, "Google"),
    ("Organic Search", {"referrer": "https://www.google.co.uk/search?q=tapioca"}, "Google"),
    ("Organic Search", {"referrer": "https://www.bing.com/search?q=x"}, "Bing"),
    ("Organic Search", {"referrer": "https://duckduckgo.com/"}, "DuckDuckGo"),
    ("Organic Search", {"utm_source": "GOOGLE"}, "Google"),
    ("Organic Search", {"utm_source": "partner", "utm_medium": "organic"}, "partner"),
    ("Organic Search", {"utm_source": "google", "utm_medium": "email"}, "Google"),
    ("Email", {"utm_source": "newsletter"}, "Email"),
    ("Email", {"utm_source": "E-Mail"}, "Email"),
    ("Email", {"utm_source": "spring", "utm_medium": "email"}, "spring"),
    ("Email", {"utm_source": "spring", "utm_medium": "e-mail"}, "spring"),
    ("Email", {"utm_source": "spring", "utm_medium": "e_mail"}, "spring"),
    ("Email", {"utm_source": "Spring", "utm_medium": "Newsletter"}, "Spring"),
    ("Email", {"referrer": "android-app://com.google.android.gm/"}, "Gmail"),
    ("Email", {"referrer": "https://mail.google.com/"}, "Gmail"),
    ("Affiliates", {"utm_source": "awin", "utm_medium": "affiliate"}, "awin"),
    ("Affiliates", {"utm_source": "AWIN", "utm_medium": "Affiliate"}, "AWIN"),
    ("Referral", {"url": LANDING, "referrer": "https://news.ycombinator.com/"}, "Hacker News"),
    ("Referral", {"referrer": "https://tea-blog.example/post"}, "tea-blog.example"),
    ("Referral", {"referrer": "android-app://org.example.reader/"}, "org.example.reader"),
    ("Referral", {"utm_source": "partner", "utm_medium": "referral"}, "partner"),
    ("Referral", {"utm_source": "partner", "utm_medium": "app"}, "partner"),
    ("Referral", {"utm_source": "partner", "utm_medium": "link"}, "partner"),
    ("Referral", {"utm_source": "partner", "referrer": "https://partner.example/"}, "partner"),
    ("Referral", {"url": LANDING + "?ref=producthunt"}, "Product Hunt"),
    ("Unassigned", {"utm_source": "partner"}, "partner"),
    ("Unassigned", {"utm_medium": "print"}, None),
    ("Unassigned", {"utm_source": "Flyer", "utm_medium": "qr"}, "Flyer"),
]


@pytest.mark.parametrize(("channel", "fields", "source"), CASES)
def test_channel_table(channel: str, fields: dict[str, Any], source: str | None) -> None:
    result = enriched(**fields)
    assert (result.channel, result.source) == (channel, source)


def test_every_channel_of_the_table_is_covered() -> None:
    assert {case[0] for case in CASES} == set(CHANNELS)


def test_a_channel_sent_by_the_client_wins() -> None:
    result = enriched(channel="Email", referrer="https://www.google.com/")
    assert (result.channel, result.source) == ("Email", "Google")
    assert enriched(channel="Partners", url=LANDING + "?gclid=abc").channel == "Partners"


def test_an_empty_client_channel_counts_as_not_sent() -> None:
    assert enriched(channel="", utm_source="google", utm_medium="cpc").channel == "Paid Search"


@pytest.mark.parametrize(
    ("source", "medium", "categories", "referred", "click_id", "channel"),
    [
        (None, None, frozenset(), False, False, "Direct"),
        ("", "", frozenset(), True, False, "Direct"),
        ("x", "CPC", frozenset({"search"}), False, False, "Paid Search"),
        ("x", None, frozenset(), False, True, "Paid Search"),
        ("x", "paid", frozenset({"social", "video"}), False, False, "Paid Social"),
        ("x", "cpm", frozenset({"social"}), False, False, "Paid Social"),
        ("x", "cpm", frozenset(), False, False, "Display"),
        ("x", "ppc", frozenset({"video"}), False, False, "Paid Other"),
        ("x", "sm", frozenset({"search"}), False, False, "Organic Social"),
        ("x", None, frozenset({"social", "video"}), True, False, "Organic Social"),
        ("x", "VIDEO", frozenset({"search"}), False, False, "Organic Video"),
        ("x", "organic", frozenset({"email"}), False, False, "Organic Search"),
        ("NEWSLETTER", None, frozenset(), True, False, "Email"),
        ("x", "affiliate", frozenset(), True, False, "Affiliates"),
        ("x", "referral", frozenset(), False, False, "Referral"),
        ("x", None, frozenset(), True, False, "Referral"),
        ("x", "cpa-ish", frozenset(), False, False, "Paid Other"),
        ("x", "offline", frozenset(), False, False, "Unassigned"),
    ],
)
def test_classify_channel_rules_in_table_order(
    source: str | None,
    medium: str | None,
    categories: frozenset[str],
    referred: bool,
    click_id: bool,
    channel: str,
) -> None:
    assert classify_channel(source, medium, categories, referred, click_id) == channel
