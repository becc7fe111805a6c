"""Writers that meet on PostgreSQL: batches sharing events never deadlock each other."""

from __future__ import annotations

import asyncio
import random

import pytest

from support.factories import make_row
from tapioca.storage import postgres_store
from tapioca.storage.postgres_store import PostgresStore
from tapioca.storage.rows import EventRow, in_key_order

pytestmark = pytest.mark.integration

WRITERS, ROUNDS, KEYS = 4, 8, 1200


def overlapping_batches(rng: random.Random, round_no: int) -> list[list[EventRow]]:
    """One batch a writer: three quarters of the round's events (on three sites new this
    round), each batch in its own order; the first batch holds some events twice."""
    keys = [(f"site-{round_no}-{i % 3}", f"ev-{i}") for i in range(KEYS)]
    batches = []
    for writer in range(WRITERS):
        chosen = rng.sample(keys, KEYS * 3 // 4)
        batches.append([make_row(site_id=s, event_id=e, path=f"/w{writer}") for s, e in chosen])
    batches[0] += rng.sample(batches[0], 50)
    return batches


@pytest.mark.parametrize("idempotent_for_s", [0.0, 3600.0])
async def test_writers_on_overlapping_keys_never_deadlock(
    pg_dsn: str, pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, idempotent_for_s: float
) -> None:
    """Four writers (as four worker processes: a store each) write batches sharing most of
    their events at once, round after round. With 0 s every write tries the direct COPY
    first; with an hour a writer that once met a stored event goes the idempotent way at
    once, while the others still COPY directly: both ways meet."""
    monkeypatch.setattr(postgres_store, "_IDEMPOTENT_FOR_S", idempotent_for_s)
    writers = [PostgresStore(pg_dsn, max_size=1) for _ in range(WRITERS)]
    rng = random.Random(11)
    expected = 0
    try:
        for round_no in range(ROUNDS):
            batches = overlapping_batches(rng, round_no)
            results = await asyncio.gather(
                *(writer.write_events(b) for writer, b in zip(writers, batches, strict=True))
            )
            keys = {(row.site_id, row.event_id) for batch in batches for row in batch}
            assert sum(r.inserted for r in results) == len(keys), round_no
            assert sum(r.received for r in results) == sum(len(b) for b in batches)
            expected += len(keys)
    finally:
        for writer in writers:
            await writer.close()
    counts = "SELECT count(*), count(DISTINCT (site_id, event_id)) FROM event"
    assert await pg_store.fetch(counts) == [(expected, expected)]
    assert await pg_store.fetch("SELECT count(*) FROM site") == [(ROUNDS * 3,)]


async def test_python_and_postgresql_agree_on_the_key_order(pg_store: PostgresStore) -> None:
    """The direct COPY goes in Python's order, the idempotent INSERT in PostgreSQL's: two
    writers going the two ways must take the keys in one order."""
    ids = ["b", "B", "a-10", "a-9", "a_1", "é", "z", "Ω", "e\u0301", "ß", "😀", "~", " x"]
    rows = [make_row(site_id=site, event_id=event) for event in ids for site in ("sh", "s", "S")]
    rng = random.Random(2)
    rng.shuffle(rows)
    python = [(row.site_id, row.event_id) for row in in_key_order(rows)]
    sql = (
        "SELECT s, e FROM unnest($1::text[], $2::text[]) AS k(s, e) "
        'ORDER BY s COLLATE "C", e COLLATE "C"'
    )
    postgresql = await pg_store.fetch(sql, [[r.site_id for r in rows], [r.event_id for r in rows]])
    assert python == postgresql
