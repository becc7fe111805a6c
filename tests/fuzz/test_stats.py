"""GET /stats with arbitrary query strings, against a real `tapioca serve`.

Query strings are built at the wire level: known and unknown keys, repeated parameters,
percent-encoded text and bytes (NUL, lone surrogates, invalid UTF-8), malformed escapes.
Each known parameter's *effective* value (the last one, as the server reads it) is
classed as known-good or anything-else. Then, for every request: never a 5xx, never a
dropped connection; a 4xx has the error shape, is a 422 naming only parameters that are
not known-good (``site_id`` also when it is missing) or a 404 ``site_not_found`` on a
``site_id`` that is not known-good; and when every parameter is known-good the answer is
200 with exactly the numbers of the reference (support/reference.py) over the seeded
events.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from support.answers import total_views
from support.error_shape import check_error, fields_of
from support.probe import curl, send
from support.procs import Server
from support.reference import from_wire, stats

pytestmark = pytest.mark.fuzz

SITES = ("fz-stats-a", "fz-stats-b")
PARAMS = ("site_id", "date", "tz", "limit")


@dataclass(frozen=True)
class Seed:
    site: str
    at: datetime
    path: str | None
    user: str


SEED = [
    Seed(site, datetime(2025, 3, day, hour, minute, tzinfo=UTC), path, user)
    for site, day, hour, minute, path, user in [
        ("fz-stats-a", 8, 20, 0, "/a", "u1"),
        ("fz-stats-a", 9, 0, 30, "/a", "u1"),
        ("fz-stats-a", 9, 0, 30, "/b", "u2"),
        ("fz-stats-a", 9, 12, 0, "/a", "u3"),
        ("fz-stats-a", 9, 12, 0, "/c", "u3"),
        ("fz-stats-a", 9, 12, 0, "/b", "u4"),
        ("fz-stats-a", 9, 23, 30, "/c", "u5"),
        ("fz-stats-a", 9, 23, 30, None, "u5"),  # a view without a path
        ("fz-stats-a", 10, 5, 0, "/a", "u2"),
        ("fz-stats-a", 10, 13, 59, "/é", "u6"),
        ("fz-stats-b", 9, 12, 0, "/x", "v1"),
        ("fz-stats-b", 11, 3, 0, "/y", "v2"),
    ]
]
GOOD_DATES = ["2025-03-08", "2025-03-09", "2025-03-10", "2025-03-11", "1999-12-31"]
GOOD_ZONES = [
    "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati",
    "Etc/GMT+12", "Australia/Lord_Howe",
]  # fmt: skip
GOOD: dict[str, set[str]] = {
    "site_id": set(SITES),
    "date": set(GOOD_DATES),
    "tz": set(GOOD_ZONES),
    "limit": {str(n) for n in range(1, 1001)},
}


SEED_EVENTS = [
    {
        "site_id": s.site,
        "event_type": "page_view",
        "event_id": f"seed-{n}",
        "timestamp": s.at.isoformat(),
        "user_id": s.user,
        **({"path": s.path} if s.path else {}),
    }
    for n, s in enumerate(SEED)
]
STORED = [from_wire(e, datetime.now(UTC)) for e in SEED_EVENTS]  # every one has a timestamp


def reference(site: str, day: str | None, zone: str | None, limit: int) -> dict[str, Any]:
    """What /stats must answer for SEED (support/reference.py; the site's zone is UTC)."""
    return stats(
        STORED, site, None if day is None else date.fromisoformat(day), zone or "UTC", limit
    )


@pytest.fixture(scope="module")
def stats_server(served: Server) -> Iterator[Server]:
    response = served.client.post("/events", content=orjson.dumps(SEED_EVENTS))
    assert response.status_code == 202, response.text
    for site in SITES:
        assert total_views(served, site) == sum(s.site == site for s in SEED)
    yield served


# -- the wire --------------------------------------------------------------------------------


def enc(text: str) -> str:
    """Percent-encode everything but unreserved characters (lone surrogates as CESU bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


WIRE_TOKENS = [
    "", "%", "%z", "%zz", "%%", "%%41", "%0", "%00", "%ED%A0%80", "%FF%FE", "%C0%AF", "+",
    "%2B", "%26", "%3D", "a=b", "%20", "+10+", "%E2%80%AE", "%EF%BB%BF",
]  # fmt: skip
EDGE_TEXT = [
    " ", "\x00", "UTC\x00", "\ud800", "../../etc/passwd", "/etc/localtime", "Europe/../UTC",
    "posix/UTC", "right/UTC", "localtime", "Factory", "zone.tab", "America", "Etc", "Etc/",
    "9999-12-31", "0000-00-00", "0001-01-01", "2025-02-29", "2024-02-29", "2025-3-9",
    "20250309", "2025-03-09T00:00", "-1", "0", "1001", "1e3", "0x10", "1.0", " 10", "10 ",
    "+10", "1_000", "NaN", "inf", "9" * 30, "A" * 101, "null", "[]",
    # digits that are not ASCII: fullwidth 2025-03-09 and 12, Arabic-Indic 3
    "\uff12\uff10\uff12\uff15-\uff10\uff13-\uff10\uff19", "\uff11\uff12", "\u0663",
]  # fmt: skip
garbage_wire = st.one_of(
    st.sampled_from(WIRE_TOKENS),
    st.sampled_from(EDGE_TEXT).map(enc),
    st.text(max_size=30).map(enc),
    st.binary(max_size=12).map(lambda b: quote(b, safe="")),
    st.text(alphabet=string.ascii_letters + string.digits + "-_./:~", max_size=20),
)
# How a known key may be spelled on the wire (all decode to the key)
KEY_SPELLINGS = {
    "site_id": ["site_id", "site%5Fid", "%73ite_id"],
    "date": ["date", "%64ate"],
    "tz": ["tz", "t%7A"],
    "limit": ["limit", "lim%69t"],
}
JUNK_KEYS = [
    "SITE_ID", "site_id[]", "site_id%00", "site-id", "Date", "tz ", "limit%20", "%00", "",
    "x", "start", "end",
]  # fmt: skip
# Every parameter /stats takes: any other is a 422 naming it (start_date and end_date are
# checked by the reference tests, not drawn here).
TAKEN = {*PARAMS, "start_date", "end_date"}


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    pairs: list[str] = []
    for name in PARAMS:
        for _ in range(draw(st.integers(0, 2))):  # absent, once, or repeated
            key = draw(st.sampled_from(KEY_SPELLINGS[name]))
            if draw(st.integers(0, 2)):
                good = GOOD[name]
                pool = sorted(good) if name != "limit" else ["1", "2", "3", "10", "1000"]
                value = enc(draw(st.sampled_from(pool)))
            else:
                value = draw(garbage_wire)
            pairs.append(f"{key}={value}")
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(JUNK_KEYS) | st.text(max_size=8).map(enc))
        pairs.append(draw(st.sampled_from([f"{key}={draw(garbage_wire)}", key])))
    pairs = draw(st.permutations(pairs))
    glue = draw(st.sampled_from(["&", "&", "&&"]))
    return glue.join(pairs)


def effective(query: str) -> dict[str, str]:
    """What the server reads: parse_qsl like Starlette, the last value of a repeated key."""
    return dict(parse_qsl(query, keep_blank_values=True))


def check_stats_body(body: dict[str, Any], repro: str) -> None:
    assert set(body) == {"site_id", "date", "start_date", "end_date", "total_views",
                         "unique_users", "top_paths"}, repro  # fmt: skip
    assert isinstance(body["site_id"], str), repro
    assert body["date"] is None or isinstance(body["date"], str), repro
    assert isinstance(body["total_views"], int) and body["total_views"] >= 0, repro
    assert isinstance(body["unique_users"], int) and body["unique_users"] >= 0, repro
    for row in body["top_paths"]:
        assert set(row) == {"path", "views"}, repro
        assert isinstance(row["path"], str) and isinstance(row["views"], int), repro


def judge(response: httpx.Response, query: str, repro: str) -> None:
    values = effective(query)
    known = {name: values[name] for name in PARAMS if name in values}
    unsure = {name for name, value in known.items() if value not in GOOD[name]}
    status = response.status_code
    junk = {name for name in values if name not in TAKEN}
    if junk:  # refused before anything else is looked at
        assert status == 422, f"{status}: {sorted(junk)} are not parameters\n  repro: {repro}"
        body = check_error(response, repro)
        assert set(fields_of(body)) == junk, (body, repro)
        event("422, unknown parameter")
        return
    if status == 200:
        body = response.json()
        check_stats_body(body, repro)
        if "site_id" in known:
            assert body["site_id"] == known["site_id"] or "site_id" in unsure, repro
        if "limit" in known and "limit" not in unsure:
            assert len(body["top_paths"]) <= int(known["limit"]), repro
    elif status == 422:
        body = check_error(response, repro)
        assert body["error"]["code"] == "validation_error", repro
        named = fields_of(body)
        allowed = unsure | ({"site_id"} if "site_id" not in known else set())
        assert named and set(named) <= allowed, (
            f"422 names {named}; only {sorted(allowed)} may be at fault: {body}\n  repro: {repro}"
        )
    elif status == 404:
        body = check_error(response, repro)
        assert body["error"]["code"] == "site_not_found", repro
        assert fields_of(body) == ["site_id"] and "site_id" in unsure, repro
    else:
        raise AssertionError(f"unexpected {status} {response.text[:300]}\n  repro: {repro}")
    event(f"{status}, {'all valid' if not unsure else 'some not valid'}")
    if not unsure and "site_id" in known:
        assert status == 200, f"all parameters are valid, got {status}\n  repro: {repro}"
        limit = int(known.get("limit", "10"))
        expected = reference(known["site_id"], known.get("date"), known.get("tz"), limit)
        assert response.json() == expected, f"\n  repro: {repro}"


def test_any_query_string(stats_server: Server, fresh_client: httpx.Client) -> None:
    url = stats_server.base_url + "/stats"

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(query=query_strings())
    def run(query: str) -> None:
        response, repro = send(fresh_client, "GET", f"{url}?{query}", headers=stats_server.headers)
        sent = response.request.url.query.decode("ascii")  # what httpx put on the wire
        judge(response, sent, repro)

    run()


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("site_id=fz-stats-a&site_id=nope", 404, "site_id"),
        ("site_id=nope&site_id=fz-stats-a", 200, None),
        ("site_id=fz-stats-a&date=2025-03-09&date=garbage", 422, "date"),
        ("site_id=fz-stats-a&tz=UTC&tz=Mars%2FOlympus", 422, "tz"),
        ("site_id=fz-stats-a&limit=0", 422, "limit"),
        ("site_id=fz-stats-a&limit=%00", 422, "limit"),
        ("site_id=fz-stats-a&date=%ED%A0%80", 422, "date"),
        ("site_id=fz-stats-a&tz=%2F%2E%2E%2Fetc%2Fpasswd", 422, "tz"),
        ("site_id=%00", 422, "site_id"),
        ("site_id=%FF%FE", 422, "site_id"),
        ("site_id=" + "a" * 101, 422, "site_id"),
        ("date=2025-03-09", 422, "site_id"),
        ("site_id=fz-stats-a&start_date=2025-03-09&%zz=%", 422, "%zz"),
        ("site_id=fz-stats-a&Date=2025-03-09", 422, "Date"),
    ],
)
def test_query_string_examples(
    stats_server: Server, fresh_client: httpx.Client, query: str, status: int, field: str | None
) -> None:
    url = f"{stats_server.base_url}/stats?{query}"
    response, repro = send(fresh_client, "GET", url, headers=stats_server.headers)
    assert response.status_code == status, f"{response.status_code} {response.text}\n  {repro}"
    if field is not None:
        assert fields_of(check_error(response, repro)) == [field], repro


@pytest.mark.parametrize("site_id", ["%00", "fz%00stats"])
def test_api_stats_site_id_with_nul_is_422(
    production_api: Server, fresh_client: httpx.Client, site_id: str
) -> None:
    url = f"{production_api.base_url}/stats?site_id={site_id}"
    repro = curl("GET", url, headers=production_api.headers)
    try:
        response = fresh_client.get(url, headers=production_api.headers)
    except httpx.TransportError as exc:
        raise AssertionError(f"dropped connection\n  repro: {repro}") from exc
    # a NUL cannot be in any site id: a malformed parameter (422), as on `serve`
    assert response.status_code == 422, f"{response.status_code}\n  repro: {repro}"
    body = check_error(response, repro)
    assert body["error"]["code"] == "validation_error" and fields_of(body) == ["site_id"]
