"""Hypothesis strategies for events: plausible ones, and anything a client might send."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

FIELDS = [
    "site_id", "event_type", "name", "event", "timestamp", "occurred_at", "ts", "event_id",
    "user_id", "anonymous_id", "session_id", "url", "path", "referrer", "title", "utm_source",
    "utm_medium", "utm_campaign", "utm_term", "utm_content", "user_agent", "screen_width",
    "device", "channel", "page_type", "properties", "properties_json", "props", "revenue",
    "value", "currency", "transaction_id", "items",
]  # fmt: skip

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["2025-11-14T10:00:00Z", "1731578400000", "page_view", "/a", "9.99"])
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
any_text = st.text(max_size=60)  # any Unicode, NUL and surrogate-free or not


def near_misses(valid: list[str]) -> st.SearchStrategy[str]:
    """Valid values with whitespace before or after: a search for ``^...$`` with Python's
    ``re`` would let a final newline pass."""
    space = st.sampled_from(["\n", "\r\n", "\n\n", " ", "\t", "\r"])
    return st.builds(lambda v, w, end: v + w if end else w + v, st.sampled_from(valid), space,
                     st.booleans())  # fmt: skip


plausible: dict[str, st.SearchStrategy[Any]] = {
    "timestamp": st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.timezones()
    ).map(lambda d: d.isoformat()),
    "ts": st.integers(min_value=0, max_value=1_800_000_000_000),
    "screen_width": st.integers(min_value=0, max_value=100_000),
    "revenue": st.decimals(min_value=-(10**6), max_value=10**6, places=2).map(str),
    "value": st.floats(min_value=-1e6, max_value=1e6),
    "currency": st.sampled_from(["EUR", "usd", "GBP"]),
    "user_id": st.integers(min_value=-(2**63), max_value=2**63) | any_text,
    "properties": st.dictionaries(st.text(max_size=8), json_value, max_size=5),
    "properties_json": st.dictionaries(st.text(max_size=8), json_value, max_size=5).map(json.dumps),
    "items": st.lists(
        st.fixed_dictionaries(
            {"sku": any_text},
            optional={
                "price": st.decimals(min_value=0, max_value=10**5, places=2).map(str),
                "quantity": st.integers(min_value=0, max_value=100),
                "name": any_text,
                "category": any_text,
            },
        ),
        max_size=3,
    ),
}
good_event = st.fixed_dictionaries(
    {"site_id": st.sampled_from(["shop", "a"]), "event_type": st.text(min_size=1, max_size=30)},
    optional={
        name: plausible.get(name, st.text(min_size=1, max_size=60))
        for name in FIELDS
        if name not in ("site_id", "event_type", "name", "event", "occurred_at", "value")
        and name not in ("properties_json", "props", "timestamp")
    },
)
junk_event = st.fixed_dictionaries(
    {
        "site_id": st.sampled_from(["shop", "a", "", "bad site", 5]) | near_misses(["shop"]),
        "event_type": any_text | json_leaf,
    },
    optional={
        **{name: plausible.get(name, any_text) | json_value for name in FIELDS[2:]},
        "currency": plausible["currency"] | near_misses(["EUR", "usd"]) | any_text | json_value,
        "bogus": json_value,
    },
)
# A plausible event but for one value, one step beyond what is valid.
_ONE_OFF: dict[str, st.SearchStrategy[Any]] = {
    "site_id": near_misses(["shop", "a"]),
    "currency": near_misses(["EUR", "usd"]),
    "properties": st.dictionaries(
        st.text(max_size=8), st.integers(min_value=2**64 - 2, max_value=2**64) | json_value,
        min_size=1, max_size=3,
    ),  # integers of 64 bits and beyond
    "user_id": st.integers(min_value=2**63 - 2, max_value=2**63 + 1),
}  # fmt: skip
nearly_good_event = st.builds(
    lambda event, name, data: {**event, name: data.draw(_ONE_OFF[name])},
    good_event,
    st.sampled_from(sorted(_ONE_OFF)),
    st.data(),
)
event_like = good_event | nearly_good_event | junk_event


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A route and a body for it: one event for /event; for /events a JSON array (compact
    or over several lines), {"events": [...]}, a single object, or NDJSON lines (blank
    ones, CRLF, a final newline), now and then with a line that is not JSON."""
    events = draw(
        st.lists(good_event, min_size=1, max_size=4)
        | st.lists(good_event | nearly_good_event, min_size=1, max_size=4)
        | st.lists(event_like, max_size=4)
    )
    if draw(st.integers(0, 4)) == 0:
        return "/event", json.dumps(events[0] if events else {}).encode()
    framing = draw(st.sampled_from(["array", "lines", "envelope", "one", "ndjson", "ndjson"]))
    if framing == "array":
        return "/events", json.dumps(events).encode()
    if framing == "lines":
        return "/events", json.dumps(events, indent=1).encode()
    if framing == "envelope":
        return "/events", json.dumps({"events": events}).encode()
    if framing == "one":
        return "/events", json.dumps(events[0] if events else {}).encode()
    lines = [json.dumps(event).encode() for event in events]
    if lines and draw(st.integers(0, 5)) == 0:
        broken = draw(st.integers(0, len(lines) - 1))
        lines[broken] = lines[broken][: draw(st.integers(1, len(lines[broken]) - 1))]
    gaps = st.sampled_from([b"\n", b"\n", b"\r\n", b"\n\n", b"\n  \n"])
    body = b"".join(line + draw(gaps) for line in lines)
    return "/events", body if draw(st.booleans()) else body.rstrip()
