"""Rate limits in tests: settings with every limit off (a test turns on the ones it looks
at), and the refusal a call raises."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from tapioca.errors import TapiocaError

LIMITS_OFF = {
    "rate_limit_ingest_ip": "none",
    "rate_limit_ingest_site": "none",
    "rate_limit_ingest_key": "none",
    "rate_limit_reports": "none",
    "rate_limit_sign_in_account": "none",
    "rate_limit_sign_in_ip": "none",
}


async def refusal(call: Awaitable[None]) -> tuple[Any, ...]:
    """The 429 ``rate_limited`` that ``call`` raises: (message, [(field, message)],
    Retry-After)."""
    with pytest.raises(TapiocaError) as caught:
        await call
    error = caught.value
    assert (error.status, error.code, set(error.headers)) == (429, "rate_limited", {"Retry-After"})
    details = [(d.field, d.message) for d in error.details]
    return error.message, details, error.headers["Retry-After"]
