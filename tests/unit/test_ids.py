"""Event ids (UUIDv7 layout, 32 hex) and cookieless visitor ids."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from tapioca.kit.ids import new_event_id, visitor_id

SALT = b"s" * 32


def test_event_id_is_32_lowercase_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", new_event_id())


def test_event_id_has_the_uuid7_layout() -> None:
    parsed = uuid.UUID(hex=new_event_id())
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_event_id_starts_with_the_current_unix_millis() -> None:
    before = time.time_ns() // 1_000_000
    event_id = new_event_id()
    after = time.time_ns() // 1_000_000
    assert before <= int(event_id[:12], 16) <= after


def test_event_ids_are_unique() -> None:
    ids = {new_event_id() for _ in range(20_000)}
    assert len(ids) == 20_000


def test_visitor_id_is_deterministic_and_shaped() -> None:
    first = visitor_id(SALT, "shop", "203.0.113.7", "UA")
    assert first == visitor_id(SALT, "shop", "203.0.113.7", "UA")
    assert re.fullmatch(r"v-[0-9a-f]{24}", first)


@pytest.mark.parametrize(
    "args",
    [
        (b"t" * 32, "shop", "203.0.113.7", "UA"),
        (SALT, "blog", "203.0.113.7", "UA"),
        (SALT, "shop", "203.0.113.8", "UA"),
        (SALT, "shop", "203.0.113.7", "UA2"),
        (SALT, "shop", "203.0.113.7", ""),
    ],
)
def test_visitor_id_differs_when_any_input_differs(args: tuple[bytes, str, str, str]) -> None:
    assert visitor_id(*args) != visitor_id(SALT, "shop", "203.0.113.7", "UA")


def test_visitor_id_fields_do_not_run_together() -> None:
    assert visitor_id(SALT, "ab", "c", "d") != visitor_id(SALT, "a", "bc", "d")
    assert visitor_id(SALT, "a", "bc", "d") != visitor_id(SALT, "a", "b", "cd")


def test_visitor_id_accepts_a_64_byte_salt() -> None:
    assert visitor_id(b"k" * 64, "shop", "ip", "ua") != visitor_id(b"j" * 64, "shop", "ip", "ua")
