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

# Bootstrap breakpoints, as in metrics.md: < 576 px mobile, < 992 px tablet.
_MOBILE_MAX_WIDTH = 576
_TABLET_MAX_WIDTH = 992


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    is_bot: bool
    device: str  # mobile | tablet | desktop
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


@lru_cache(maxsize=8192)
def parse_user_agent(user_agent: str) -> UserAgentInfo:
    """Parse once per distinct UA; repeats are a dictionary lookup."""
    result = _resolver()(user_agent, Domain.USER_AGENT | Domain.OS)
    return UserAgentInfo(
        is_bot=is_bot(user_agent),
        device=device_class(user_agent),
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
