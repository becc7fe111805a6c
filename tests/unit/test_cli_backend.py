"""The CLI's way through a running server (cli/backend.py): request bodies within the
server's limit, error answers read back, a site's changes as the routes take them."""

from __future__ import annotations

import orjson

from tapioca.cli.backend import _bodies, _error_of, _site_body
from tapioca.errors import ErrorDetail
from tapioca.sites.service import SiteChanges


def test_events_go_in_arrays_of_at_most_the_byte_limit() -> None:
    events = [{"n": n, "pad": "x" * 10} for n in range(5)]
    one = len(orjson.dumps(events[0]))  # 21 bytes each
    bodies = list(_bodies(events, 2 + 2 * one + 1))  # two events and their comma
    assert [orjson.loads(body) for body in bodies] == [events[0:2], events[2:4], events[4:5]]
    assert all(len(body) <= 2 + 2 * one + 1 for body in bodies)
    assert [orjson.loads(body) for body in _bodies(events, 10**6)] == [events]
    assert list(_bodies([], 100)) == []


def test_an_event_over_the_limit_goes_alone() -> None:
    big, small = {"pad": "x" * 100}, {"n": 1}
    assert [orjson.loads(body) for body in _bodies([small, big, small], 50)] == [
        [small],
        [big],
        [small],
    ]


def test_an_error_answer_is_the_error_it_was_made_from() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "site_not_found",
                "message": "Site 'x' does not exist.",
                "details": [{"field": "site_id", "message": "Site 'x' does not exist."}],
            },
            "request_id": "r1",
        }
    )
    error = _error_of(404, body)
    assert (error.status, error.code, error.message, error.details) == (
        404,
        "site_not_found",
        "Site 'x' does not exist.",
        [ErrorDetail("site_id", "Site 'x' does not exist.")],
    )
    other = _error_of(502, b"<html>Bad Gateway</html>")
    assert (other.status, other.code, other.message, other.details) == (
        502,
        "http_error",
        "The server answered HTTP 502.",
        [],
    )


def test_site_changes_send_only_what_is_given() -> None:
    assert _site_body(SiteChanges()) == {}
    changes = SiteChanges(
        name="Shop",
        domains=[],
        page_type_rules=[("/p/*", "product")],
        public=False,
        key_required=True,
    )
    assert _site_body(changes) == {
        "name": "Shop",
        "domains": [],
        "page_type_rules": [{"pattern": "/p/*", "page_type": "product"}],
        "public": False,
        "key_required": True,
    }
