"""Seed 003's ingest, rebuilt as the reference point of bench/e2e_ab.py.

Seed 003 (its README: github.com/numerodiciannove/robomate-event-analytics-service) stores
a POSTed batch of events before it answers: one ``executemany`` of ``INSERT … ON CONFLICT
(event_id) DO NOTHING`` into its ``events`` table, a transaction that has committed when
the answer leaves. This is that path and nothing more: a FastAPI app under uvicorn, an
asyncpg pool, the table as seed 003's model defines it (``app/db/models/event.py``:
``id`` uuid key, ``event_id`` uuid unique, ``occurred_at``, ``user_id`` integer,
``event_type``, ``properties_json`` json, an index on user, time and type).

It takes the JSON bodies Tapioca's ``POST /events`` takes in the benchmark (a list of
bench/generator.py events), validated by a Pydantic model as seed 003 validates its own,
and maps their fields to seed 003's columns:

- ``event_id`` (a string such as ``17-123``): a UUID made from the site and that id
  (uuid5), so the same event sent twice is the same row, as seed 003's client-made UUIDs;
- ``timestamp`` → ``occurred_at``; ``event_type`` as it is;
- ``user_id`` (``v123``) → the integer 123 (another id: a 31-bit CRC of it);
- every other field (site, session, path, referrer, UTM, items, revenue, currency,
  transaction) → ``properties_json``, serialized with ``json.dumps`` as seed 003 does;
- ``id``: a new uuid4 per row, as seed 003 makes it.

Left out, as Tapioca's ingest in the benchmark has none of them: seed 003's JWT on the
route and its rate limit (5 requests a minute). Seed 003 opens a connection per request
and answers 202; here a pool of 4 connections per process, made at start, serves the
requests, and the answer is 200 (stored), so that a pooled, committed insert is the
reference, not connection set-up.

    python -m bench.seed003 --dsn postgresql://… --port 8000 [--workers 2]

creates the table (when missing) and serves ``POST /api/events`` and ``GET /ready`` on
127.0.0.1 with ``--workers`` uvicorn processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import asyncpg
from fastapi import Body, FastAPI, Request
from pydantic import BaseModel, ConfigDict

DSN_ENV = "SEED003_DSN"
POOL_SIZE = 4  # per process: the benchmark's 4 connections may all land on one

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id uuid PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    occurred_at timestamptz NOT NULL,
    user_id integer NOT NULL,
    event_type varchar NOT NULL,
    properties_json json NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_user_time_type ON events (user_id, occurred_at, event_type);
"""

INSERT = """
INSERT INTO events (id, event_id, user_id, occurred_at, event_type, properties_json)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (event_id) DO NOTHING
"""


class Event(BaseModel):
    """One event of a benchmark body: the fields seed 003 has a column for; the rest
    (``extra``) goes to ``properties_json``."""

    model_config = ConfigDict(extra="allow")

    site_id: str
    event_id: str
    event_type: str
    timestamp: datetime
    user_id: str


def user_number(user_id: str) -> int:
    """Seed 003's integer user id for a generator's ``v123`` (another id: its CRC)."""
    digits = user_id.lstrip("abcdefghijklmnopqrstuvwxyz")
    if digits.isdigit() and len(digits) < 10:
        return int(digits)
    return zlib.crc32(user_id.encode()) & 0x7FFFFFFF


def row(event: Event) -> tuple[Any, ...]:
    properties = {"site_id": event.site_id, **(event.model_extra or {})}
    return (
        uuid4(),
        event_uuid(event.site_id, event.event_id),
        user_number(event.user_id),
        event.timestamp,
        event.event_type,
        json.dumps(properties),
    )


def event_uuid(site_id: str, event_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"{site_id}/{event_id}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ[DSN_ENV], min_size=POOL_SIZE, max_size=POOL_SIZE)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/api/events")
async def ingest(
    request: Request, events: Annotated[list[Event], Body(min_length=1)]
) -> dict[str, int]:
    """Store the batch, then answer: one executemany, one transaction."""
    rows = [row(event) for event in events]
    async with request.app.state.pool.acquire() as connection:
        await connection.executemany(INSERT, rows)
    return {"obj_count": len(rows)}


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


async def create_schema(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(SCHEMA)
    finally:
        await connection.close()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(create_schema(args.dsn))
    os.environ[DSN_ENV] = args.dsn  # the uvicorn processes read it
    uvicorn.run(
        "bench.seed003:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
