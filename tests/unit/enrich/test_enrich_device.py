"""Device, browser, OS and bot flag from real User-Agents (metrics.md "Device", "Identity")."""

from __future__ import annotations

import pytest

from support.factories import enriched
from tapioca.enrich import is_bot
from tapioca.enrich.device import parse_user_agent

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
EDGE_WIN = CHROME_WIN + " Edg/124.0.2478.80"
FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
EDGE_MAC = CHROME_MAC + " Edg/124.0.2478.80"
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROME_OS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
CHROME_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
)
FACEBOOK_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.36.105;FBBV/1;"
    "FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/5]"
)
CHROME_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAMSUNG_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
)
SAMSUNG_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36"
)
FIREFOX_ANDROID_PHONE = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"
EDGE_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64"
)
KINDLE_FIRE = (
    "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/124.1.1 like Chrome/124.0.6367.118 Safari/537.36"
)
IE11_TABLET_PC = (
    "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; Touch; Tablet PC 2.0; rv:11.0) like Gecko"
)
OPERA_PRESTO = "Opera/9.80 (Windows NT 6.1) Presto/2.12.388 Version/12.18"
LYNX = "Lynx/2.9.0dev.12 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.7.8"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
BINGBOT_CHROME = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
    "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"
)
YANDEXBOT = "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"
GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)"
)
FACEBOOK_CRAWLER = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "device", "browser", "os"),
    [
        (CHROME_WIN, "desktop", "Chrome", "Windows"),
        (EDGE_WIN, "desktop", "Edge", "Windows"),
        (FIREFOX_WIN, "desktop", "Firefox", "Windows"),
        (SAFARI_MAC, "desktop", "Safari", "Mac OS X"),
        (CHROME_MAC, "desktop", "Chrome", "Mac OS X"),
        (EDGE_MAC, "desktop", "Edge", "Mac OS X"),
        (FIREFOX_MAC, "desktop", "Firefox", "Mac OS X"),
        (CHROME_LINUX, "desktop", "Chrome", "Linux"),
        (FIREFOX_LINUX, "desktop", "Firefox", "Linux"),
        (FIREFOX_UBUNTU, "desktop", "Firefox", "Ubuntu"),
        (CHROME_OS, "desktop", "Chrome", "Chrome OS"),
        (IE11_TABLET_PC, "desktop", "IE", "Windows"),
        (SAFARI_IPHONE, "mobile", "Mobile Safari", "iOS"),
        (CHROME_IPHONE, "mobile", "Chrome Mobile iOS", "iOS"),
        (FACEBOOK_IPHONE, "mobile", "Facebook", "iOS"),
        (SAFARI_IPAD, "tablet", "Mobile Safari", "iOS"),
        (CHROME_ANDROID_PHONE, "mobile", "Chrome Mobile", "Android"),
        (CHROME_ANDROID_TABLET, "tablet", "Chrome", "Android"),
        (SAMSUNG_PHONE, "mobile", "Samsung Internet", "Android"),
        (SAMSUNG_TABLET, "tablet", "Samsung Internet", "Android"),
        (FIREFOX_ANDROID_PHONE, "mobile", "Firefox Mobile", "Android"),
        (FIREFOX_ANDROID_TABLET, "tablet", "Firefox Mobile", "Android"),
        (EDGE_ANDROID, "mobile", "Edge Mobile", "Android"),
        (KINDLE_FIRE, "tablet", "Amazon Silk", "Android"),
        (OPERA_PRESTO, "desktop", "Opera", "Windows"),
        (LYNX, "desktop", "Lynx", "Other"),
    ],
)
def test_browsers_devices_and_os_from_real_user_agents(
    user_agent: str, device: str, browser: str, os: str
) -> None:
    result = enriched(user_agent=user_agent)
    assert (result.device, result.browser, result.os, result.is_bot) == (
        device,
        browser,
        os,
        False,
    )


# Clients that are no browser: HTTP libraries, command-line tools, server SDKs, native
# apps (their platform in the UA or not), and tokens nobody knows.
NOT_BROWSERS = [
    ("curl/8.5.0", "curl"),
    ("python-requests/2.32.3", "Python Requests"),
    ("Go-http-client/1.1", "Go-http-client"),
    ("okhttp/4.12.0", "okhttp"),
    ("axios/1.6.8", "axios"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.2)", "Apache-HttpClient"),
    ("analytics-node-next/latest", "Other"),
    ("Stripe/v1 PythonBindings/9.0.0", "Other"),
    ("Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP1A.240405.002)", "Android"),
    ("MyShop/5.2 (iPhone; iOS 17.4; Scale/3.00)", "Mobile Safari UI/WKWebView"),
    ("something nobody knows", "Other"),
]


@pytest.mark.parametrize(("user_agent", "browser"), NOT_BROWSERS)
def test_a_client_without_a_browser_has_an_unknown_device(user_agent: str, browser: str) -> None:
    result = enriched(user_agent=user_agent)
    assert (result.device, result.browser, result.is_bot) == ("unknown", browser, False)
    assert parse_user_agent(user_agent).device is None


@pytest.mark.parametrize(("user_agent", "browser"), NOT_BROWSERS[:3])
def test_without_a_browser_the_screen_width_decides(user_agent: str, browser: str) -> None:
    """As without a User-Agent (metrics.md, Device)."""
    assert enriched(user_agent=user_agent, screen_width=390).device == "mobile"
    assert enriched(user_agent=user_agent, screen_width=1440).device == "desktop"
    assert enriched(user_agent=user_agent, device="tv").device == "tv"


@pytest.mark.parametrize(
    ("user_agent", "device", "browser"),
    [
        (GOOGLEBOT, "desktop", "Googlebot"),
        (GOOGLEBOT_SMARTPHONE, "mobile", "Googlebot"),
        (BINGBOT, "desktop", "bingbot"),
        (BINGBOT_CHROME, "desktop", "bingbot"),
        (YANDEXBOT, "desktop", "YandexBot"),
        (GPTBOT, "desktop", "GPTBot"),
        (FACEBOOK_CRAWLER, "desktop", "FacebookBot"),
        (HEADLESS_CHROME, "desktop", "HeadlessChrome"),
    ],
)
def test_crawlers_are_bots(user_agent: str, device: str, browser: str) -> None:
    result = enriched(user_agent=user_agent)
    assert (result.is_bot, result.device, result.browser) == (True, device, browser)
    assert is_bot(user_agent) is True


@pytest.mark.parametrize(
    ("screen_width", "device"),
    [
        (320, "mobile"),
        (575, "mobile"),
        (576, "tablet"),
        (991, "tablet"),
        (992, "desktop"),
        (2560, "desktop"),
        (None, "unknown"),
        (0, "unknown"),
        (-1, "unknown"),
    ],
)
def test_without_user_agent_the_screen_width_decides(screen_width: int | None, device: str) -> None:
    result = enriched(screen_width=screen_width)
    assert (result.device, result.browser, result.os, result.is_bot) == (
        device,
        None,
        None,
        False,
    )


def test_the_user_agent_wins_over_the_screen_width() -> None:
    assert enriched(user_agent=SAFARI_IPHONE, screen_width=1440).device == "mobile"
    assert enriched(user_agent=CHROME_WIN, screen_width=390).device == "desktop"


def test_an_empty_user_agent_is_no_user_agent() -> None:
    result = enriched(user_agent="", screen_width=800)
    assert (result.device, result.browser, result.os) == ("tablet", None, None)


def test_a_device_sent_by_the_client_wins() -> None:
    assert enriched(user_agent=SAFARI_IPHONE, device="tv").device == "tv"
    assert enriched(screen_width=390, device="desktop").device == "desktop"
    assert enriched(device="tablet").device == "tablet"


def test_an_empty_client_device_counts_as_not_sent() -> None:
    assert enriched(user_agent=SAFARI_IPAD, device="").device == "tablet"


def test_a_repeated_user_agent_is_parsed_once() -> None:
    ua = CHROME_LINUX + " tapioca-cache-test"
    first = parse_user_agent(ua)
    before = parse_user_agent.cache_info()
    assert parse_user_agent(ua) is first
    after = parse_user_agent.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 0)
