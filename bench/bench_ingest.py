"""CPU cost per event of the ingest and worker hot paths, measured in one run.

Prints µs per event for: the general ingest path (orjson + pydantic EventIn), the fast
path (msgspec), and the worker's decode + enrichment of queue records. Compare the
ratios of one run; absolute figures move with the machine's load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from bench.generator import generate
from tapioca.ingest.body import parse_batch
from tapioca.ingest.fast import decode_batch
from tapioca.ingest.normalize import RequestContext, encode
from tapioca.ingest.protocols.native import encode_events
from tapioca.queue.record import pack
from tapioca.worker.transform import decode_payload

EVENTS = 20_000


def best_of(runs: int, call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best / EVENTS * 1e6


def main() -> None:
    body = orjson.dumps(list(generate(5, EVENTS)))
    ctx = RequestContext(
        datetime.now(UTC), "10.0.0.1", "agent", b"salt", timedelta(minutes=5), 65536
    )
    # the fast path as ingest runs it on a body without the escape \u0000 (service.py)
    payload = pack([p for _, p in encode(decode_batch(body), ctx, indexed=True)])
    general = best_of(3, lambda: encode_events(parse_batch(body), ctx, indexed=True))
    fast = best_of(3, lambda: encode(decode_batch(body), ctx, indexed=True, nul_possible=False))
    worker = best_of(3, lambda: decode_payload(payload))
    print(f"ingest, general path (orjson + pydantic): {general:6.2f} µs/event")
    print(
        f"ingest, fast path (msgspec):              {fast:6.2f} µs/event  ({general / fast:.2f}x)"
    )
    print(f"worker, decode + enrich + row:            {worker:6.2f} µs/event")


if __name__ == "__main__":
    main()
