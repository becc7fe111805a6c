"""Bot detection: known crawler User-Agents (the list is data: bots.txt beside this file)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    text = resources.files(__package__).joinpath("bots.txt").read_text("utf-8")
    tokens = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return re.compile("|".join(re.escape(t) for t in tokens), re.IGNORECASE)


@lru_cache(maxsize=4096)
def is_bot(user_agent: str | None) -> bool:
    """True for crawlers, monitors, headless browsers and HTTP libraries."""
    if not user_agent:
        return False
    return _pattern().search(user_agent) is not None
