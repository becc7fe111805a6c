"""Request bodies: batch shapes, NDJSON, malformed JSON, gzip limits (api.md, Ingest)."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import zlib

import orjson
import pytest

from tapioca.errors import TapiocaError
from tapioca.ingest import body as body_module
from tapioca.ingest.body import (
    MAX_GZIP_MEMBERS,
    OFF_LOOP_BYTES,
    decompress,
    decompress_off_loop,
    parse_batch,
    parse_one,
)

EVENTS = [
    {"site_id": "shop", "event_type": "page_view", "path": "/"},
    {"site_id": "shop", "event_type": "purchase", "revenue": "9.90"},
    {"site_id": "shop", "event_type": "click"},
]


def ndjson(*docs: object, sep: bytes = b"\n") -> bytes:
    return sep.join(orjson.dumps(doc) for doc in docs)


def fields(err: TapiocaError) -> list[str]:
    return [detail.field for detail in err.details]


# --- parse_batch ---------------------------------------------------------------------


def test_json_array() -> None:
    assert parse_batch(orjson.dumps(EVENTS)) == EVENTS


def test_pretty_printed_json_array() -> None:
    body = orjson.dumps(EVENTS, option=orjson.OPT_INDENT_2)
    assert b"\n" in body
    assert parse_batch(body) == EVENTS


def test_events_object() -> None:
    assert parse_batch(orjson.dumps({"events": EVENTS})) == EVENTS


def test_events_object_with_empty_list() -> None:
    assert parse_batch(b'{"events": []}') == []


def test_single_object_is_a_batch_of_one() -> None:
    assert parse_batch(orjson.dumps(EVENTS[0])) == [EVENTS[0]]


def test_object_with_events_and_other_keys_is_a_single_event() -> None:
    doc = {"events": [], "site_id": "shop"}
    assert parse_batch(orjson.dumps(doc)) == [doc]


def test_ndjson() -> None:
    assert parse_batch(ndjson(*EVENTS)) == EVENTS


def test_ndjson_with_trailing_newline() -> None:
    assert parse_batch(ndjson(*EVENTS) + b"\n") == EVENTS


def test_ndjson_with_blank_lines() -> None:
    body = b"\n\n" + ndjson(*EVENTS, sep=b"\n\n  \n") + b"\n\n"
    assert parse_batch(body) == EVENTS


def test_ndjson_with_crlf_line_ends() -> None:
    assert parse_batch(ndjson(*EVENTS, sep=b"\r\n") + b"\r\n") == EVENTS


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_batch(b"  \n" + orjson.dumps(EVENTS) + b"\n\t ") == EVENTS


@pytest.mark.parametrize("body", [b"", b"   ", b"\n\n", b"\t\r\n"])
def test_empty_body_is_422(body: bytes) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_batch(body)
    assert info.value.status == 422
    assert info.value.code == "validation_error"
    assert fields(info.value) == ["body"]


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2", b'{"site_id": "shop",}', b"not json", b"{'a': 1}", b'{"a": 1} x'],
)
def test_malformed_json_is_422_with_details(body: bytes) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_batch(body)
    err = info.value
    assert err.status == 422
    assert err.code == "validation_error"
    assert fields(err) == ["body"]
    assert err.details[0].message.startswith("malformed JSON")


def test_a_malformed_ndjson_line_is_named_by_the_index_of_its_event() -> None:
    """As every error in a batch (docs/api.md): blank lines hold no event, so the line 3
    holds the event at index 1; the message gives the line."""
    body = ndjson(EVENTS[0]) + b"\n\n" + b'{"site_id": ' + b"\n" + ndjson(EVENTS[1])
    with pytest.raises(TapiocaError) as info:
        parse_batch(body)
    err = info.value
    assert (err.status, err.message) == (422, "The body is not valid JSON.")
    assert [(d.field, d.message) for d in err.details] == [
        ("1", "malformed JSON (line 3): Input data was truncated")
    ]


def test_every_malformed_ndjson_line_is_named() -> None:
    body = b"\n".join([orjson.dumps(EVENTS[0]), b"{,}", b"  ", orjson.dumps(EVENTS[1]), b"[1,]"])
    with pytest.raises(TapiocaError) as info:
        parse_batch(body)
    assert [(d.field, d.message) for d in info.value.details] == [
        ("1", "malformed JSON (line 2): object keys must be strings (byte 1)"),
        ("3", "malformed JSON (line 5): trailing comma in array (byte 3)"),
    ]


@pytest.mark.parametrize(
    "body",
    [b'[\n{"site_id": "shop"},\n{"site_id": }\n]', b'{"events": [\n{"site_id": "shop"},\n]}'],
)
def test_a_malformed_array_or_envelope_over_several_lines_is_named_as_the_body(
    body: bytes,
) -> None:
    """Not NDJSON: the lines of one JSON text are no events of their own."""
    with pytest.raises(TapiocaError) as info:
        parse_batch(body)
    assert fields(info.value) == ["body"]


def test_integers_beyond_64_bits_stay_exact() -> None:
    """Not floats near them: the validators can then refuse them (test_schemas.py)."""
    body = b'[{"properties": {"big": 100000000000000000000, "low": -9223372036854775809}}]'
    assert parse_batch(body) == [{"properties": {"big": 10**20, "low": -(2**63) - 1}}]
    assert parse_one(body[1:-1]) == {"properties": {"big": 10**20, "low": -(2**63) - 1}}


@pytest.mark.parametrize("body", [b"42", b'"text"', b"null", b"true"])
def test_json_scalar_is_422(body: bytes) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_batch(body)
    assert info.value.status == 422
    assert fields(info.value) == ["body"]


@pytest.mark.parametrize("events", [b'"x"', b"{}", b"1", b"null"])
def test_events_must_be_an_array(events: bytes) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_batch(b'{"events": ' + events + b"}")
    assert info.value.status == 422
    assert fields(info.value) == ["events"]


def test_non_object_items_pass_through_for_per_event_validation() -> None:
    assert parse_batch(b'[1, "a", {"site_id": "s"}]') == [1, "a", {"site_id": "s"}]


# --- parse_one -----------------------------------------------------------------------


def test_parse_one() -> None:
    assert parse_one(orjson.dumps(EVENTS[0])) == EVENTS[0]


@pytest.mark.parametrize("body", [b"", b"  ", b"{", b"{}{}"])
def test_parse_one_rejects_empty_and_malformed(body: bytes) -> None:
    with pytest.raises(TapiocaError) as info:
        parse_one(body)
    assert info.value.status == 422
    assert fields(info.value) == ["body"]


# --- decompress ----------------------------------------------------------------------

PAYLOAD = orjson.dumps(EVENTS) * 50


@pytest.mark.parametrize("encoding", [None, "", "identity", " Identity "])
def test_no_encoding_returns_the_body_unchanged(encoding: str | None) -> None:
    assert decompress(b"raw bytes", encoding, 1_000) == b"raw bytes"


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", " gzip ", "x-gzip"])
def test_gzip_is_decompressed(encoding: str) -> None:
    assert decompress(gzip.compress(PAYLOAD), encoding, 1 << 20) == PAYLOAD


def test_gzip_then_parse_batch() -> None:
    body = decompress(gzip.compress(ndjson(*EVENTS)), "gzip", 1 << 20)
    assert parse_batch(body) == EVENTS


def test_deflate_is_zlib_decompressed() -> None:
    assert decompress(zlib.compress(PAYLOAD), "deflate", 1 << 20) == PAYLOAD


def test_gzip_of_exactly_the_limit_is_accepted() -> None:
    assert decompress(gzip.compress(PAYLOAD), "gzip", len(PAYLOAD)) == PAYLOAD


def test_gzip_one_byte_over_the_limit_is_413() -> None:
    with pytest.raises(TapiocaError) as info:
        decompress(gzip.compress(PAYLOAD), "gzip", len(PAYLOAD) - 1)
    assert info.value.status == 413
    assert info.value.code == "payload_too_large"


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """16 MiB of zeros, about 16 KiB compressed."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(16)]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_gzip_bomb_over_the_limit_is_413(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 100_000
    with pytest.raises(TapiocaError) as info:
        decompress(gzip_bomb, "gzip", 1 << 20)
    assert info.value.status == 413
    assert info.value.code == "payload_too_large"


def test_gzip_bomb_within_a_large_limit_is_accepted(gzip_bomb: bytes) -> None:
    assert decompress(gzip_bomb, "gzip", 16 << 20) == bytes(16 << 20)


@pytest.mark.parametrize(
    "body",
    [
        b"definitely not gzip",
        b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic",
        gzip.compress(PAYLOAD)[:10] + b"\xff" * 40,
    ],
)
def test_corrupt_gzip_is_422(body: bytes) -> None:
    with pytest.raises(TapiocaError) as info:
        decompress(body, "gzip", 1 << 20)
    err = info.value
    assert err.status == 422
    assert err.code == "validation_error"
    assert fields(err) == ["body"]


def test_gzip_with_a_wrong_crc_is_422() -> None:
    good = gzip.compress(PAYLOAD)
    bad = good[:-8] + bytes(4) + good[-4:]
    with pytest.raises(TapiocaError) as info:
        decompress(bad, "gzip", 1 << 20)
    assert info.value.status == 422


@pytest.mark.parametrize("cut", [4, 8, 30])
def test_truncated_gzip_is_422(cut: int) -> None:
    body = gzip.compress(ndjson(*EVENTS * 20))
    with pytest.raises(TapiocaError) as info:
        decompress(body[:-cut], "gzip", 1 << 20)
    assert info.value.status == 422


def test_multi_member_gzip_is_not_silently_truncated() -> None:
    first, second = ndjson(*EVENTS[:2]) + b"\n", ndjson(EVENTS[2])
    body = gzip.compress(first) + gzip.compress(second)
    try:
        out = decompress(body, "gzip", 1 << 20)
    except TapiocaError as err:  # rejecting it outright would also be correct
        assert err.status == 422
    else:
        assert out == first + second


EMPTY_MEMBER = gzip.compress(b"")


def test_members_up_to_the_limit_are_decoded() -> None:
    body = EMPTY_MEMBER * (MAX_GZIP_MEMBERS - 1) + gzip.compress(PAYLOAD)
    assert decompress(body, "gzip", 1 << 20) == PAYLOAD


def test_one_member_over_the_limit_is_413() -> None:
    body = EMPTY_MEMBER * MAX_GZIP_MEMBERS + gzip.compress(PAYLOAD)
    with pytest.raises(TapiocaError) as info:
        decompress(body, "gzip", 1 << 20)
    assert info.value.status == 413
    assert info.value.code == "payload_too_large"
    assert info.value.message == (
        f"The compressed body holds more than {MAX_GZIP_MEMBERS} gzip members."
    )


def test_members_are_walked_in_linear_time() -> None:
    """100,000 empty members (2 MB): each member once, never the rest of the body again
    (a copy of the rest per member took minutes for 10 MB). A sanity bound only."""
    body = EMPTY_MEMBER * 100_000 + gzip.compress(PAYLOAD)
    started = time.perf_counter()
    assert decompress(body, "gzip", 1 << 20, max_members=200_000) == PAYLOAD
    assert time.perf_counter() - started < 5.0


def test_zero_padding_after_the_last_member_is_ignored() -> None:
    assert decompress(gzip.compress(PAYLOAD) + bytes(100), "gzip", 1 << 20) == PAYLOAD


def test_garbage_after_zero_padding_is_422() -> None:
    with pytest.raises(TapiocaError) as info:
        decompress(gzip.compress(PAYLOAD) + bytes(10) + b"x", "gzip", 1 << 20)
    assert info.value.status == 422
    assert fields(info.value) == ["body"]


def test_a_member_over_the_limit_after_others_is_413() -> None:
    body = gzip.compress(PAYLOAD) + gzip.compress(PAYLOAD)
    with pytest.raises(TapiocaError) as info:
        decompress(body, "gzip", len(PAYLOAD) * 2 - 1)
    assert info.value.status == 413
    assert decompress(body, "gzip", len(PAYLOAD) * 2) == PAYLOAD * 2


@pytest.mark.parametrize(("size", "in_thread"), [(OFF_LOOP_BYTES // 2, False), (1 << 20, True)])
def test_large_bodies_are_decompressed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, size: int, in_thread: bool
) -> None:
    payload = bytes(range(256)) * (size // 256)
    packed = zlib.compress(payload, 0)  # stored: a little larger than the payload
    assert (len(packed) > OFF_LOOP_BYTES) is in_thread
    threads: list[int] = []
    original = body_module.decompress

    def spy(body: bytes, encoding: str | None, limit: int) -> bytes:
        threads.append(threading.get_ident())
        return original(body, encoding, limit)

    monkeypatch.setattr(body_module, "decompress", spy)

    async def run() -> bytes:
        return await decompress_off_loop(packed, "deflate", 2 << 20)

    assert asyncio.run(run()) == payload
    assert (threads != [threading.get_ident()]) is in_thread


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd", "gzip, br", "identity, gzip"])
def test_unsupported_encoding_is_415(encoding: str) -> None:
    with pytest.raises(TapiocaError) as info:
        decompress(b"whatever", encoding, 1 << 20)
    err = info.value
    assert err.status == 415
    assert err.code == "unsupported_encoding"
    assert fields(err) == ["Content-Encoding"]
