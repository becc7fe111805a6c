"""CORS of the ingest routes (api.md, Browsers), as api/ingest.py answers them: a browser
on an origin that some site accepts (ingest/origins.py) gets a preflight's answer and may
read the answers to its events; each event's own site is checked when it comes. The
report routes answer no browser of another origin.

Credentials (cookies) are not allowed: the ingest routes read none, and a tracker sends
its write key, if any, in a header it names.
"""

from __future__ import annotations

from tapioca.errors import ErrorDetail, TapiocaError

ALLOWED_METHODS = "POST"
ALLOWED_HEADERS = "Authorization, Content-Encoding, Content-Type, X-Api-Key, X-Request-ID"
EXPOSED_HEADERS = "Retry-After, X-Request-ID"
# How long a browser may keep a preflight's answer (Chromium keeps one 2 hours at most).
MAX_AGE_SECONDS = 86_400
# An ingest path answers these methods; any other is a 405.
ALLOW = "OPTIONS, POST"


def answer_headers(origin: str | None, accepted: bool) -> dict[str, str]:
    """The CORS headers of an answer to a request from ``origin`` (None: no Origin
    header, no CORS); ``accepted``: some site accepts the origin."""
    if origin is None:
        return {}
    if not accepted:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def preflight_headers(origin: str) -> dict[str, str]:
    """The answer to a preflight from an origin that some site accepts."""
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        "Vary": "Origin",
    }


def origin_refused(origin: str) -> TapiocaError:
    """The answer to a preflight from an origin that no site accepts."""
    return TapiocaError(
        403,
        "origin_not_allowed",
        f"No site accepts events from {origin[:200]}.",
        [ErrorDetail("Origin", "not one of a site's domains, and no site accepts any origin")],
        headers={"Vary": "Origin"},
    )
