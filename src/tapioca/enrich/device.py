"""User-Agent → bot flag, device class, browser and OS family (ua-parser), cached per UA."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ua_parser import BestAvailableResolver, Domain, Resolver, load_lazy_builtins

from tapioca.enrich.bots import is_bot

UNKNOWN_FAMILY = "Other"  # ua-parser's name for a UA it does not recognise

# Tablets first: iPad, Kindle/Silk, BlackBerry PlayBook, Firefox's "Tablet" token (not
# Windows' "Tablet PC"), Nexus 7/9/10; then any Android UA without "Mobile".
_TABLET = re.compile(r"ipad|kindle|silk/|playbook|\btablet\b(?! pc)|nexus (?:7|9|10)\b", re.I)
_ANDROID = re.compile(r"android", re.I)
_MOBILE = re.compile(
    r"mobi|iphone|ipod|windows phone|iemobile|blackberry|bb10|opera mini|webos|\bphone\b", re.I
)

# A browser names itself first: "Mozilla/5.0 (…)" (every engine since the 1990s, in-app
# web views included), "Opera/9.80" (Presto), or a text-mode browser. HTTP libraries,
# command-line tools, server SDKs and native apps do not (curl/8.5.0,
# python-requests/2.32, Go-http-client/1.1, okhttp/4.12, Dalvik/2.1.0, MyApp CFNetwork).
_BROWSER = re.compile(r"(?:mozilla|opera|lynx|e?links|w3m)\b", re.I)

# Bootstrap breakpoints, as in metrics.md: < 576 px mobile, < 992 px tablet.
_MOBILE_MAX_WIDTH = 576
_TABLET_MAX_WIDTH = 992


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    is_bot: bool
    device: str | None  # mobile | tablet | desktop; None: no browser (and no bot) says it
    browser: str  # ua-parser family, "Other" when unrecognised
    os: str  # ua-parser family, "Other" when unrecognised


@lru_cache(maxsize=1)
def _resolver() -> Resolver:
    # The Rust accelerator (ua-parser-rs) when installed, else the pure-Python matcher.
    return BestAvailableResolver(load_lazy_builtins())


def warm_up() -> None:
    """Build the parser now (it compiles its regular expressions: about a second), so that
    the first batch of events does not wait for it."""
    _resolver()


def device_class(user_agent: str) -> str:
    """mobile, tablet or desktop from the UA tokens (every UA gets one of the three)."""
    if _TABLET.search(user_agent):
        return "tablet"
    if _ANDROID.search(user_agent):
        return "mobile" if _MOBILE.search(user_agent) else "tablet"
    return "mobile" if _MOBILE.search(user_agent) else "desktop"


def is_browser(user_agent: str) -> bool:
    """Whether a browser sent this User-Agent (a client without one has no device class)."""
    return _BROWSER.match(user_agent) is not None


@lru_cache(maxsize=8192)
def parse_user_agent(user_agent: str) -> UserAgentInfo:
    """Parse once per distinct UA; repeats are a dictionary lookup. Crawlers keep the
    device class of the browser they pose as; other clients without a browser have none."""
    result = _resolver()(user_agent, Domain.USER_AGENT | Domain.OS)
    bot = is_bot(user_agent)
    return UserAgentInfo(
        is_bot=bot,
        device=device_class(user_agent) if bot or is_browser(user_agent) else None,
        browser=result.user_agent.family if result.user_agent else UNKNOWN_FAMILY,
        os=result.os.family if result.os else UNKNOWN_FAMILY,
    )


def device_from_screen_width(screen_width: int | None) -> str | None:
    """mobile, tablet or desktop from the screen width in CSS pixels; None without one."""
    if screen_width is None or screen_width <= 0:
        return None
    if screen_width < _MOBILE_MAX_WIDTH:
        return "mobile"
    return "tablet" if screen_width < _TABLET_MAX_WIDTH else "desktop"
