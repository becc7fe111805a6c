"""Bad input over raw HTTP on POST /event, /events and /api/events, against a real
`tapioca serve` and a real `tapioca api` (+ worker, PostgreSQL, Redis).

For every request: never a 5xx, never a dropped connection; every 4xx has api.md's error
shape and, where one field is at fault, names it (``"3.timestamp"`` in a batch, ``"3"``
for an NDJSON line that is not JSON); a 202
only for valid input. Each property test sends to a site of its own and, at the end,
counts: the site's all-time ``total_views`` in GET /stats equals the number of events
the server acknowledged — nothing of a rejected batch is stored, nothing accepted is lost.

The service-level properties (any bytes → 4xx or stored, gzip decoding) are in
tests/integration/test_ingest_properties.py; these go through HTTP and the real processes.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import string
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.answers import total_views
from support.error_shape import check_error, fields_of
from support.probe import send
from support.procs import Server

pytestmark = pytest.mark.fuzz

ROUTES = ["/event", "/events", "/api/events"]
MAX_BODY = 10 * 1024 * 1024  # the default limits of both processes
MAX_EVENTS = 10_000
PROPERTY_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_ids = itertools.count()


@pytest.fixture(scope="module", params=["serve", "api"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each test runs once against `tapioca serve` and once against `tapioca api`."""
    name = "served" if request.param == "serve" else "production_api"
    target: Server = request.getfixturevalue(name)
    return target


def new_id(server: Server) -> str:
    """A unique event id of a fixed width (so Hypothesis sees the same sizes on replay)."""
    return f"fz-{server.mode[:3]}-{next(_ids):09d}"


def page_view(site: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "site_id": site,
        "event_type": "page_view",
        "event_id": event_id,
        "path": "/fz",
        **extra,
    }


# -- JSON values ----------------------------------------------------------------------

# Text that survives JSON: no lone surrogates; NUL only where a test puts it.
clean_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40
)
json_int = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # orjson's dumps range
json_float = st.floats(allow_nan=False, allow_infinity=False)
json_scalar = st.none() | st.booleans() | json_int | json_float | clean_text
json_value = st.recursive(
    json_scalar,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(clean_text, kids, max_size=3),
    max_leaves=8,
)
json_list = st.lists(json_value, max_size=3)
json_object = st.dictionaries(clean_text, json_value, max_size=3)
letters = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)

# -- wrong types, field by field --------------------------------------------------------

not_text = st.booleans() | json_int | json_float | json_list | json_object
# A float with no fraction is an integer (JSON Schema; api.md), up to 2^53: not wrong
# where an integer is right.
not_integral = json_float.filter(lambda x: not (x.is_integer() and abs(x) <= 2**53))
not_text_or_int = st.booleans() | not_integral | json_list | json_object
not_int = st.booleans() | not_integral | clean_text | json_list | json_object
not_time = st.booleans() | json_list | json_object | letters
not_money = st.booleans() | json_list | json_object | letters
not_object = (
    st.booleans()
    | json_int
    | json_float
    | json_list
    | letters.filter(lambda s: s not in ("null",))  # a JSON text of null is "no properties"
)
not_items = st.booleans() | json_int | clean_text | json_object | st.lists(json_scalar, min_size=1)

TEXT_FIELDS = [
    "url", "path", "referrer", "title", "utm_source", "utm_medium", "utm_campaign",
    "utm_term", "utm_content", "user_agent", "device", "channel", "page_type",
    "anonymous_id", "currency",
]  # fmt: skip
WRONG_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "site_id": not_text | st.none(),
    "event_type": not_text | st.none(),
    "name": not_text | st.none(),
    "event": not_text | st.none(),
    **{name: not_text for name in TEXT_FIELDS},
    **{name: not_text_or_int for name in ("event_id", "user_id", "session_id", "transaction_id")},
    "screen_width": not_int,
    **{name: not_time for name in ("timestamp", "occurred_at", "ts")},
    **{name: not_money for name in ("revenue", "value")},
    **{name: not_object for name in ("properties", "props", "properties_json")},
    "items": not_items,
}
WRONG_ITEM_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "sku": not_text_or_int | st.none(),
    "name": not_text,
    "category": not_text,
    "price": not_money,
    "quantity": not_int | st.integers(min_value=-(2**63), max_value=-1),
}
EVENT_TYPE_KEYS = ("event_type", "name", "event")


@st.composite
def wrongly_typed(draw: st.DrawFn, site: str, event_id: str) -> tuple[dict[str, Any], set[str]]:
    """A page view with exactly one field of a wrong type, and the names a 422 may give it."""
    event = page_view(site, event_id)
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(WRONG_TYPES)))
        if name in EVENT_TYPE_KEYS:
            del event["event_type"]
        value = event[name] = draw(WRONG_TYPES[name])
        if name == "items" and isinstance(value, list):  # a list of non-objects
            return event, {"items", *(f"items.{i}" for i in range(len(value)))}
        return event, {name}
    name = draw(st.sampled_from(sorted(WRONG_ITEM_TYPES)))
    item = {"sku": "sku-1", "price": "9.99", "quantity": 1, name: draw(WRONG_ITEM_TYPES[name])}
    event["items"] = [item]
    return event, {f"items.0.{name}"}


@dataclass(frozen=True)
class Batch:
    """A request body holding one probe among valid events, and where the probe sits."""

    route: str
    body: bytes
    shape: str  # one, array, envelope, ndjson
    index: int
    size: int
    ids: tuple[str, ...]

    def field(self, name: str) -> str:
        return name if self.shape == "one" else f"{self.index}.{name}"

    def body_field(self) -> str:
        """Where a malformed JSON text is reported: an NDJSON line by its event's index."""
        if self.shape == "ndjson" and self.size > 1:
            return str(self.index)
        return "body"


@st.composite
def batch_around(draw: st.DrawFn, probe: bytes, probe_id: str, site: str, server: Server) -> Batch:
    route = draw(st.sampled_from(ROUTES))
    if route == "/event":
        return Batch(route, probe, "one", 0, 1, (probe_id,))
    before = [new_id(server) for _ in range(draw(st.integers(0, 2)))]
    after = [new_id(server) for _ in range(draw(st.integers(0, 2)))]
    lines = [orjson.dumps(page_view(site, i)) for i in before]
    lines += [probe] + [orjson.dumps(page_view(site, i)) for i in after]
    shape = draw(st.sampled_from(["array", "envelope", "ndjson"]))
    if shape == "array":
        body = b"[" + b",".join(lines) + b"]"
    elif shape == "envelope":
        body = b'{"events":[' + b",".join(lines) + b"]}"
    else:
        body = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))
    ids = (*before, probe_id, *after)
    return Batch(route, body, shape, len(before), len(lines), ids)


@dataclass
class Tally:
    """Event ids the server acknowledged for one site."""

    site: str
    accepted: set[str]

    def assert_counted(self, server: Server) -> None:
        views = total_views(server, self.site)
        assert views == len(self.accepted), (
            f"GET /stats?site_id={self.site}: total_views {views}, but the server "
            f"acknowledged {len(self.accepted)} page views"
        )


def expect_accepted(response: httpx.Response, repro: str, batch: Batch, tally: Tally) -> None:
    assert response.status_code == 202, f"{response.status_code} {response.text[:400]}\n  {repro}"
    body = response.json()
    if batch.shape == "one":
        assert body == {"status": "accepted", "event_id": batch.ids[0]}, body
    else:
        assert body == {"status": "accepted", "accepted": batch.size, "event_ids": list(batch.ids)}
    tally.accepted.update(batch.ids)


def expect_rejected(
    response: httpx.Response, repro: str, allowed: set[str], status: int = 422
) -> dict[str, Any]:
    """A 4xx naming only the fields in ``allowed`` (and at least one of them)."""
    assert response.status_code == status, (
        f"expected {status} naming {sorted(allowed)}, got {response.status_code} "
        f"{response.text[:400]}\n  repro: {repro}"
    )
    body = check_error(response, repro)
    named = fields_of(body)
    assert named and set(named) <= allowed, (
        f"details name {named}, expected only {sorted(allowed)}: {body}\n  repro: {repro}"
    )
    return body


# -- wrong types ----------------------------------------------------------------------------


def test_wrong_types_are_422_naming_the_field(server: Server, fresh_client: httpx.Client) -> None:
    site = f"fz-types-{server.mode}"
    tally = Tally(site, set())

    @settings(PROPERTY_SETTINGS, max_examples=60)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        probe_id = new_id(server)
        event, names = data.draw(wrongly_typed(site, probe_id))
        batch = data.draw(batch_around(orjson.dumps(event), probe_id, site, server))
        response, repro = send(fresh_client, "POST", server.base_url + batch.route, batch.body)
        expect_rejected(response, repro, {batch.field(name) for name in names})

    run()
    tally.assert_counted(server)  # a rejected batch stores none of its valid events


# -- one bad thing at a time --------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One event as sent, and what the server must make of it.

    ``fault``: the fields a 422 may name (relative to the event); None = a valid event.
    ``body_level``: the JSON text itself is malformed (reported as the body or NDJSON line's
    index).
    ``lenient``: either accepted, or a 422 naming ``fault`` (the contract leaves it open).
    """

    raw: bytes
    event_id: str
    fault: frozenset[str] | None = None
    body_level: bool = False
    lenient: bool = False


RAW = "\ue000raw\ue000"  # placeholder replaced by raw JSON bytes


def with_raw(event: dict[str, Any], key: str, raw: bytes) -> bytes:
    event = {**event, key: RAW}
    return orjson.dumps(event).replace(orjson.dumps(RAW), raw, 1)


def rfc3339(moment: datetime, offset_minutes: int) -> str:
    return moment.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


offsets = st.integers(min_value=-12 * 60, max_value=14 * 60)
past = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime.now() - timedelta(days=1),
    timezones=st.just(UTC),
)
# Epoch numbers in seconds, milliseconds or microseconds (docs/api.md: read by magnitude),
# of times from 1973-03-04 on: earlier milliseconds and microseconds are below the unit's
# cut-off, read as seconds or milliseconds.
unambiguous = st.datetimes(
    min_value=datetime(1973, 3, 4),
    max_value=datetime.now() - timedelta(days=1),
    timezones=st.just(UTC),
)


def epoch_number(moment: datetime, per_second: int) -> int:
    since = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return since // timedelta(microseconds=1_000_000 // per_second)


epoch_numbers = st.builds(epoch_number, unambiguous, st.sampled_from([1, 1000, 1_000_000]))
# Far future, short of year 9999 (test_timestamp_beyond_the_calendar_is_422 takes the edge).
future = st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=365 * 5000))


@st.composite
def valid_extras(draw: st.DrawFn) -> dict[str, Any]:
    """Optional fields with valid values (no user_agent: random text may look like a bot)."""
    extras: dict[str, Any] = {}
    key = draw(st.sampled_from(EVENT_TYPE_KEYS))
    extras[key] = draw(st.sampled_from(["page_view", "pageview", "$pageview", "page", "view_page"]))
    chosen = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "timestamp": st.builds(rfc3339, past, offsets) | epoch_numbers,
                "user_id": st.text(
                    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                    min_size=1,
                    max_size=128,
                )
                | st.integers(min_value=-(2**63), max_value=2**63 - 1),
                "anonymous_id": clean_text.filter(bool),
                "session_id": clean_text.filter(bool) | json_int,
                "url": clean_text,
                "referrer": clean_text,
                "title": clean_text,
                "utm_source": clean_text,
                "utm_campaign": clean_text,
                "device": clean_text,
                "channel": clean_text,
                "page_type": clean_text,
                "screen_width": st.integers(0, 100_000),
                "properties": st.dictionaries(clean_text, json_value, max_size=5),
                "revenue": st.decimals(-(10**6), 10**6, places=2).map(str)
                | st.floats(min_value=-1e6, max_value=1e6),
                "currency": st.text(alphabet=string.ascii_letters, min_size=3, max_size=3),
                "transaction_id": clean_text.filter(bool) | json_int,
                "items": st.lists(
                    st.fixed_dictionaries(
                        {"sku": clean_text.filter(bool) | json_int},
                        optional={
                            "name": clean_text,
                            "category": clean_text,
                            "price": st.decimals(0, 10**5, places=2).map(str),
                            "quantity": st.integers(0, 1_000_000),
                        },
                    ),
                    max_size=3,
                ),
            },
        )
    )
    if "timestamp" in chosen:
        extras[draw(st.sampled_from(["timestamp", "occurred_at", "ts"]))] = chosen.pop("timestamp")
    return {**extras, **chosen}


def base_event(site: str, event_id: str, extras: dict[str, Any]) -> dict[str, Any]:
    event = page_view(site, event_id, **extras)
    if any(k in extras for k in ("name", "event")):
        del event["event_type"]
    return event


NUL_FIELDS = [
    "site_id", "event_id", "user_id", "anonymous_id", "session_id", "url", "path",
    "referrer", "title", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "user_agent", "device", "channel", "page_type", "transaction_id",
]  # fmt: skip
MALFORMED_VALUES = [
    b'"\\ud800"', b'"a\\udfffb"', b'"\\ud800\\ud800"',  # lone surrogates
    b'"a\x00b"', b'"\x01"', b'"tab\there"',  # raw control characters
    b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"1e400", b"-1e400",
    b"01", b"+1", b".5", b"1.", b"0x10", b"'single'", b"undefined", b"[1,]", b"{,}",
]  # fmt: skip
# invalid UTF-8 in a string: a stray byte, a bad sequence, an encoded surrogate, overlong,
# a 5-byte form, a cut sequence (test_invalid_utf8_is_422).
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\xc3"]
HUGE_INTS = [2**64, 2**64 + 1, 10**30, -(2**63) - 1, -(10**40)]
BIG_INTS = [2**63, 2**64 - 1]  # integers for orjson, but beyond a signed 64-bit id


# Hypothesis favours the first entries of a list; in this order about half the probes
# have one bad field, a quarter are valid, the rest lenient or malformed JSON.
PROBE_KINDS = [
    "nul", "malformed", "valid", "unknown_field", "valid", "future", "out_of_range", "valid",
    "nul_nested", "huge_int", "valid", "duplicate", "huge_in_properties", "big_int", "deep_ok",
]  # fmt: skip


@st.composite
def probes(draw: st.DrawFn, site: str, server: Server) -> Probe:
    event_id = new_id(server)
    event = base_event(site, event_id, draw(valid_extras()))
    kind = draw(st.sampled_from(PROBE_KINDS))
    if kind == "valid":
        return Probe(orjson.dumps(event), event_id)
    if kind == "unknown_field":
        known = {*WRONG_TYPES, "items"}
        key = draw(clean_text.filter(lambda k: k and k not in known))
        event[key] = draw(json_value)
        return Probe(orjson.dumps(event), event_id, frozenset({key}))
    if kind == "nul":
        name = draw(st.sampled_from(NUL_FIELDS))
        text = draw(clean_text)
        cut = draw(st.integers(0, len(text)))
        event[name] = text[:cut] + "\x00" + text[cut:]
        return Probe(orjson.dumps(event), event_id, frozenset({name}))
    if kind == "nul_nested":
        where = draw(st.sampled_from(["properties_key", "properties_value", "item", "event_type"]))
        if where == "event_type":
            for key in EVENT_TYPE_KEYS:
                event.pop(key, None)
            key = draw(st.sampled_from(EVENT_TYPE_KEYS))
            event[key] = "page\x00view"
            return Probe(orjson.dumps(event), event_id, frozenset({key, "event_type"}))
        if where == "item":
            event["items"] = [{"sku": "a", "name": "x\x00y"}]
            return Probe(orjson.dumps(event), event_id, frozenset({"items", "items.0.name"}))
        key = draw(st.sampled_from(["properties", "props", "properties_json"]))
        for alias in ("properties", "props", "properties_json"):
            event.pop(alias, None)
        nested = {"k\x00": 1} if where == "properties_key" else {"k": ["v\x00"]}
        event[key] = nested if key != "properties_json" else orjson.dumps(nested).decode()
        return Probe(orjson.dumps(event), event_id, frozenset({key, "properties"}))
    if kind == "future":
        for alias in ("timestamp", "occurred_at", "ts"):
            event.pop(alias, None)
        key = draw(st.sampled_from(["timestamp", "occurred_at", "ts"]))
        moment = datetime.now(UTC) + draw(future)
        units = [1, 1000, 1_000_000] if moment.year < 5138 else [1_000_000]  # read by magnitude
        epoch = epoch_number(moment, draw(st.sampled_from(units)))
        event[key] = draw(st.sampled_from([rfc3339(moment, draw(offsets)), epoch]))
        return Probe(orjson.dumps(event), event_id, frozenset({key, "timestamp"}))
    if kind == "out_of_range":
        name, value = draw(
            st.sampled_from(
                [
                    ("screen_width", 100_001), ("screen_width", -1), ("screen_width", 2**63 - 1),
                    ("ts", -1), ("ts", 253_402_300_800_000_000), ("revenue", "1e14"),
                    ("value", -(10**15)), ("currency", "EURO"), ("currency", "€$£"),
                    ("site_id", "a" * 101), ("site_id", "has space"), ("site_id", ""),
                    ("event_id", "x" * 129), ("user_id", ""), ("anonymous_id", ""),
                    ("title", "t" * 2049), ("utm_source", "u" * 257),
                    ("items", [{"sku": "a", "quantity": 1_000_001}]),
                    ("items", [{"sku": ""}]), ("items", [{"sku": "a", "price": "1e20"}]),
                    ("items", [{}]), ("properties", {str(i): i for i in range(65)}),
                ]
            )
        )  # fmt: skip
        event.pop("timestamp", None)
        event.pop("occurred_at", None)
        event.pop("value" if name == "revenue" else "revenue", None)
        event[name] = value
        allowed = {name} if name != "items" else {"items", "items.0", "items.0.sku"}
        allowed |= {"items.0.quantity", "items.0.price"} if name == "items" else set()
        return Probe(orjson.dumps(event), event_id, frozenset(allowed))
    if kind in ("huge_int", "big_int"):
        # Integer ids are signed 64-bit (docs/api.md): anything beyond is refused, naming it.
        name = draw(st.sampled_from(["event_id", "user_id", "session_id", "transaction_id"]))
        number = draw(st.sampled_from(HUGE_INTS if kind == "huge_int" else BIG_INTS))
        raw = with_raw(event, name, str(number).encode())
        return Probe(raw, event_id, frozenset({name}))
    if kind == "malformed":
        name = draw(st.sampled_from(["title", "path", "user_id", "properties", "site_id", "x"]))
        raw = with_raw(event, name, draw(st.sampled_from(MALFORMED_VALUES)))
        return Probe(raw, event_id, frozenset(), body_level=True)
    if kind == "deep_ok":
        depth = draw(st.integers(1, 200))
        deep = b'{"a":' * depth + b"1" + b"}" * depth
        return Probe(with_raw(event, "properties", deep), event_id)
    if kind == "duplicate":
        name = draw(st.sampled_from(["title", "path", "referrer", "page_type"]))
        event.pop(name, None)
        first, second = draw(clean_text), draw(clean_text)
        raw = orjson.dumps({name: first, **event})[:-1] + b"," + orjson.dumps({name: second})[1:]
        return Probe(raw, event_id, frozenset({name}), lenient=True)
    # huge_in_properties: an integer beyond 64 bits inside free-form properties, named
    number = draw(st.sampled_from(HUGE_INTS))
    raw = with_raw(event, "properties", b'{"n":' + str(number).encode() + b"}")
    return Probe(raw, event_id, frozenset({"properties.n"}))


CONTENT_TYPES = [
    None, "application/json", "application/json; charset=utf-8", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml", "application/x-ndjson", "image/png", "garbage",
]  # fmt: skip


def test_bad_input_is_rejected_and_good_input_is_counted(
    server: Server, fresh_client: httpx.Client
) -> None:
    site = f"fz-mixed-{server.mode}"
    tally = Tally(site, set())

    @settings(PROPERTY_SETTINGS, max_examples=130)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        probe = data.draw(probes(site, server))
        batch = data.draw(batch_around(probe.raw, probe.event_id, site, server))
        headers: dict[str, str] = {}
        content_type = data.draw(st.sampled_from(CONTENT_TYPES))
        if content_type:
            headers["Content-Type"] = content_type
        body = batch.body
        if data.draw(st.integers(0, 4)) == 0:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        url = server.base_url + batch.route
        response, repro = send(fresh_client, "POST", url, body, headers, repro_body=batch.body)
        if "Content-Encoding" in headers:
            repro += "   # body shown before gzip"
        if response.status_code == 415 and content_type not in (None, *CONTENT_TYPES[1:3]):
            return  # refusing a non-JSON media type is fine; nothing was accepted
        if probe.fault is None:
            expect_accepted(response, repro, batch, tally)
        elif probe.body_level:
            expect_rejected(response, repro, {batch.body_field()})
        elif probe.lenient and response.status_code == 202:
            expect_accepted(response, repro, batch, tally)
        else:
            expect_rejected(response, repro, {batch.field(f) for f in probe.fault})

    run()
    tally.assert_counted(server)


# -- malformed bodies -------------------------------------------------------------------------


def test_truncated_json_and_random_bytes_are_4xx(
    server: Server, fresh_client: httpx.Client
) -> None:
    site = f"fz-cut-{server.mode}"

    @settings(PROPERTY_SETTINGS, max_examples=60)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        event = base_event(site, new_id(server), data.draw(valid_extras()))
        whole = orjson.dumps(event)
        route = data.draw(st.sampled_from(ROUTES))
        how = data.draw(st.sampled_from(["truncate", "binary"]))
        if how == "truncate":
            body = whole[: data.draw(st.integers(1, len(whole) - 1))]
        else:
            body = data.draw(st.binary(min_size=1, max_size=300))
        response, repro = send(fresh_client, "POST", server.base_url + route, body)
        if how == "binary":  # rarely valid JSON, never a valid event: some 4xx naming something
            assert 400 <= response.status_code < 500, f"{response.status_code}\n  {repro}"
            assert fields_of(response.json()), f"{response.text}\n  {repro}"
        else:
            assert fields_of(expect_rejected(response, repro, {"body"})) == ["body"], repro

    run()
    assert total_views(server, site) == 0


DEEP = 10_000
DEEP_BODIES = {
    "arrays": b"[" * DEEP,
    "objects": b"{" * DEEP,
    "object_values": b'{"a":' * DEEP,
    "closed_arrays": b"[" * DEEP + b"]" * DEEP,
    "closed_objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "in_properties": b'{"site_id":"fz-deep","event_type":"page_view","properties":'
    + b'{"a":' * DEEP
    + b"1"
    + b"}" * DEEP
    + b"}",
    "in_a_batch": b'[{"site_id":"fz-deep","event_type":"page_view","props":'
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}]",
}


DEEP_CASES = [
    pytest.param(name, route, id=f"{name}-{route}")
    for name in sorted(DEEP_BODIES)
    for route in ROUTES
]


@pytest.mark.parametrize(("name", "route"), DEEP_CASES)
def test_deeply_nested_json_is_422(
    server: Server, fresh_client: httpx.Client, name: str, route: str
) -> None:
    url = server.base_url + route
    response, repro = send(fresh_client, "POST", url, DEEP_BODIES[name])
    assert fields_of(expect_rejected(response, repro, {"body"})) == ["body"]


def test_nothing_of_the_deep_bodies_was_stored(server: Server) -> None:
    assert total_views(server, "fz-deep") == 0


@pytest.mark.parametrize(
    ("route", "content", "allowed"),
    [
        (route, content, allowed)
        for route in ROUTES
        for content, allowed in [
            (b"", {"body"}),
            (b" \n\t\r\n ", {"body"}),
            (b"null", {"body"}),
            (b'""', {"body"}),
            (b"0", {"body"}),
            (b"[]", {"body", "events"}),
            (b"{}", {"body", "site_id", "event_type", "0.site_id", "0.event_type"}),
            (b'{"events":[]}', {"events", "site_id", "event_type"}),
            (b'{"events":null}', {"events", "site_id", "event_type"}),
            (b"[null]", {"body", "0"}),
            (b"\xef\xbb\xbf{}", {"body"}),  # a UTF-8 byte-order mark is not JSON
        ]
    ],
)
def test_empty_and_degenerate_bodies_are_422(
    server: Server, fresh_client: httpx.Client, route: str, content: bytes, allowed: set[str]
) -> None:
    response, repro = send(fresh_client, "POST", server.base_url + route, content)
    expect_rejected(response, repro, allowed)


def test_duplicate_site_id_is_stored_at_most_once(
    server: Server, fresh_client: httpx.Client
) -> None:
    first, last = f"fz-dup-a-{server.mode}", f"fz-dup-b-{server.mode}"
    body = (
        b'{"site_id":"' + first.encode() + b'","event_type":"page_view","event_id":"dup-1",'
        b'"site_id":"' + last.encode() + b'"}'
    )
    response, repro = send(fresh_client, "POST", server.base_url + "/event", body)
    if response.status_code != 202:
        expect_rejected(response, repro, {"site_id"})
    stored = total_views(server, first) + total_views(server, last)
    assert stored == (1 if response.status_code == 202 else 0), repro


# -- size limits and compression ----------------------------------------------------------


@functools.cache
def gzip_bomb() -> bytes:
    """One gzip member that inflates to 64 MiB of zeros (about 64 KiB on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(64)) + packer.flush()


@functools.cache
def multi_member_bomb() -> bytes:
    """Many small gzip members, each well under the limit, together 48 MiB."""
    return gzip.compress(b" " * (1 << 20)) * 48


@functools.cache
def deflate_bomb() -> bytes:
    return zlib.compress(b"[" + b" " * (32 << 20) + b"]", 9)


def padded(site: str, event_id: str, size: int) -> bytes:
    event = orjson.dumps([page_view(site, event_id)])
    return event + b" " * (size - len(event))


def chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


OVERSIZED = ["over_10_mib", "over_10_mib_chunked", "gzip_bomb", "gzip_members", "deflate_bomb"]


@pytest.mark.parametrize("route", ["/event", "/events"])
@pytest.mark.parametrize("case", OVERSIZED)
def test_oversized_bodies_are_413_and_the_connection_survives(
    server: Server, fresh_client: httpx.Client, case: str, route: str
) -> None:
    site = f"fz-big-{server.mode}"
    headers: dict[str, str] = {}
    data: bytes = b""
    content: bytes | Iterator[bytes]
    if case.startswith("over_10_mib"):
        data = padded(site, new_id(server), MAX_BODY + 1)
        content = chunks(data) if case.endswith("chunked") else data
    else:
        data = {"gzip_bomb": gzip_bomb, "gzip_members": multi_member_bomb}.get(case, deflate_bomb)()
        headers["Content-Encoding"] = "deflate" if case == "deflate_bomb" else "gzip"
        content = data
    url = server.base_url + route
    response, repro = send(fresh_client, "POST", url, content, headers, repro_body=data[:64])
    assert response.status_code == 413, f"{response.status_code} {response.text}\n  {repro}"
    assert check_error(response, repro)["error"]["code"] == "payload_too_large"
    # the same keep-alive client goes on working
    follow, _ = send(fresh_client, "GET", server.base_url + "/health")
    assert follow.status_code == 200
    assert total_views(server, site) == 0


def test_limits_are_inclusive_and_gzip_members_concatenate(
    server: Server, fresh_client: httpx.Client
) -> None:
    """Exactly 10 MiB is accepted; so is a body of several gzip members."""
    site = f"fz-edge-{server.mode}"
    tally = Tally(site, set())
    at_limit = padded(site, new_id(server), MAX_BODY)
    response, repro = send(fresh_client, "POST", server.base_url + "/events", at_limit)
    event_id = orjson.loads(at_limit)[0]["event_id"]
    expect_accepted(response, repro, Batch("/events", at_limit, "array", 0, 1, (event_id,)), tally)
    ids = [new_id(server) for _ in range(3)]
    ndjson = [orjson.dumps(page_view(site, i)) + b"\n" for i in ids]
    members = b"".join(gzip.compress(line) for line in ndjson)
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"}
    response, repro = send(
        fresh_client, "POST", server.base_url + "/api/events", members, headers, b"".join(ndjson)
    )
    expect_accepted(response, repro, Batch("/api/events", b"", "ndjson", 0, 3, tuple(ids)), tally)
    tally.assert_counted(server)


def test_more_than_10000_events_is_413(server: Server, fresh_client: httpx.Client) -> None:
    site = f"fz-many-{server.mode}"
    line = b'{"site_id":"' + site.encode() + b'","event_type":"page_view"}'
    for route, body in [
        ("/events", b"[" + b",".join([line] * (MAX_EVENTS + 1)) + b"]"),
        ("/api/events", b"\n".join([line] * (MAX_EVENTS + 1))),
    ]:
        response, repro = send(fresh_client, "POST", server.base_url + route, body)
        assert response.status_code == 413, f"{response.status_code} {response.text}\n  {repro}"
        check_error(response, repro)
    assert total_views(server, site) == 0


@pytest.mark.parametrize(
    ("headers", "content", "status", "allowed"),
    [
        ({"Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00garbage", 422, {"body"}),
        ({"Content-Encoding": "gzip"}, b'{"not": "gzip"}', 422, {"body"}),
        ({"Content-Encoding": "gzip"}, gzip.compress(b"{}")[:-6], 422, {"body"}),  # truncated
        ({"Content-Encoding": "br"}, b"{}", 415, {"Content-Encoding"}),
        ({"Content-Encoding": "gzip, br"}, b"{}", 415, {"Content-Encoding"}),
        ({"Content-Encoding": "compress"}, b"{}", 415, {"Content-Encoding"}),
    ],
)
def test_bad_content_encoding_is_a_4xx(
    server: Server,
    fresh_client: httpx.Client,
    headers: dict[str, str],
    content: bytes,
    status: int,
    allowed: set[str],
) -> None:
    response, repro = send(fresh_client, "POST", server.base_url + "/events", content, headers)
    expect_rejected(response, repro, allowed, status)


# -- the edges of the calendar and of UTF-8 ------------------------------------------------


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_timestamp_beyond_the_calendar_is_422(
    server: Server, fresh_client: httpx.Client, moment: str
) -> None:
    event = page_view(f"fz-edge-ts-{server.mode}", new_id(server), timestamp=moment)
    response, repro = send(fresh_client, "POST", server.base_url + "/event", orjson.dumps(event))
    expect_rejected(response, repro, {"timestamp"})


@pytest.mark.parametrize("route", ["/event", "/events"])
def test_properties_nested_300_deep_are_a_4xx(
    server: Server, fresh_client: httpx.Client, route: str
) -> None:
    site = f"fz-deep300-{server.mode}{route.replace('/', '-')}"
    raw = with_raw(
        page_view(site, new_id(server)), "properties", b'{"a":' * 300 + b"1" + b"}" * 300
    )
    body = raw if route == "/event" else b"[" + raw + b"]"
    response, repro = send(fresh_client, "POST", server.base_url + route, body)
    if response.status_code == 202:  # storing it is as good as refusing it
        assert total_views(server, site) == 1
        return
    prefix = "" if route == "/event" else "0."
    assert response.status_code in (413, 422), f"{response.status_code}\n  {repro}"
    if response.status_code == 422:
        expect_rejected(response, repro, {f"{prefix}properties"})


def test_event_id_longer_than_128_digits_is_422(server: Server, fresh_client: httpx.Client) -> None:
    site = f"fz-long-id-{server.mode}"
    raw = with_raw(page_view(site, "x"), "event_id", b"9" * 300)
    response, repro = send(fresh_client, "POST", server.base_url + "/event", raw)
    expect_rejected(response, repro, {"event_id"})


def test_an_events_verdict_does_not_depend_on_its_neighbours(
    server: Server, fresh_client: httpx.Client
) -> None:
    site = f"fz-neighbours-{server.mode}"
    big = with_raw(page_view(site, "x"), "event_id", str(2**64 + 1).encode())
    alone, repro = send(fresh_client, "POST", server.base_url + "/events", b"[" + big + b"]")
    # integer ids are 64-bit: refused on its own, naming it ...
    assert set(fields_of(expect_rejected(alone, repro, {"0.event_id"}))) == {"0.event_id"}
    bad = orjson.dumps(page_view(site, new_id(server), screen_width="wide"))
    response, repro = send(
        fresh_client, "POST", server.base_url + "/events", b"[" + big + b"," + bad + b"]"
    )
    # ... and the same verdict next to another bad event
    body = expect_rejected(response, repro, {"0.event_id", "1.screen_width"})
    assert set(fields_of(body)) == {"0.event_id", "1.screen_width"}


def test_error_answers_echo_a_bounded_part_of_the_input(
    server: Server, fresh_client: httpx.Client
) -> None:
    """A field name of a megabyte is cut to 100 characters; 10,000 bad events are 20
    details and the count of the others (docs/api.md, Errors)."""
    site = f"fz-echo-{server.mode}"
    name = "k" * (1 << 20)
    event = {**page_view(site, new_id(server)), name: 1}
    response, repro = send(fresh_client, "POST", server.base_url + "/event", orjson.dumps(event))
    body = expect_rejected(response, repro, {"k" * 99 + "…"})
    assert body["error"] == {
        "code": "validation_error",
        "message": "The request is not valid.",
        "details": [{"field": "k" * 99 + "…", "message": "Extra inputs are not permitted"}],
    }
    assert len(response.content) < 512, repro
    events = [{**page_view(site, new_id(server)), f"colour-{n}": n} for n in range(MAX_EVENTS)]
    for route, content in [
        ("/events", orjson.dumps(events)),
        ("/api/events", b"\n".join(orjson.dumps(e) for e in events)),
    ]:
        response, repro = send(fresh_client, "POST", server.base_url + route, content)
        body = expect_rejected(response, repro, {f"{n}.colour-{n}" for n in range(20)})
        assert body["error"] == {
            "code": "validation_error",
            "message": "10000 event(s) are invalid; nothing was accepted. "
            "9980 more details are not listed.",
            "details": [
                {"field": f"{n}.colour-{n}", "message": "Extra inputs are not permitted"}
                for n in range(20)
            ],
        }
        assert len(response.content) < 2048, repro
    assert total_views(server, site) == 0


@pytest.mark.parametrize("route", ["/event", "/events"])
def test_an_unknown_empty_field_name_is_named(
    server: Server, fresh_client: httpx.Client, route: str
) -> None:
    event = {**page_view(f"fz-empty-key-{server.mode}", new_id(server)), "": 1}
    body = orjson.dumps(event if route == "/event" else [event])
    response, repro = send(fresh_client, "POST", server.base_url + route, body)
    expect_rejected(response, repro, {'""' if route == "/event" else '0.""'})


UTF8_CASES = [
    pytest.param(route, where, junk, id=f"{route}-{where}-{junk.hex()}")
    for route in ROUTES
    for where in ("value", "key", "properties")
    for junk in BAD_UTF8[:3]  # a stray byte, a bad sequence, an encoded surrogate
]


@pytest.mark.parametrize(("route", "where", "junk"), UTF8_CASES)
def test_invalid_utf8_is_422(
    server: Server, fresh_client: httpx.Client, route: str, where: str, junk: bytes
) -> None:
    event = page_view(f"fz-utf8-{server.mode}", new_id(server))
    if where == "value":
        raw = with_raw(event, "title", b'"x' + junk + b'y"')
    elif where == "key":
        raw = orjson.dumps(event)[:-1] + b',"k' + junk + b'":1}'
    else:
        raw = with_raw(event, "properties", b'{"k":"' + junk + b'"}')
    body = raw if route == "/event" else b"[" + raw + b"]"
    response, repro = send(fresh_client, "POST", server.base_url + route, body)
    expect_rejected(response, repro, {"body"})
