"""CPU cost per event of the ingest and worker hot paths, measured in one run.

Measures µs per event of: the general ingest path (orjson + pydantic EventIn), the fast
path (msgspec), and the worker's decode + enrichment of queue records; prints them and
keeps them under "hot_paths" in bench/results/latest.json and latest.md. Compare the
ratios of one run; absolute figures move with the machine's load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from bench.figures import Figure, ModeResult, finish
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
    result = ModeResult(f"{EVENTS:,} generated events, best of 3")
    result.add(Figure("ingest, general path (orjson + pydantic EventIn)", general, "µs/event"))
    result.add(
        Figure(
            "ingest, fast path (msgspec, defers to EventIn when unsure)",
            fast,
            "µs/event",
            note=f"{general / fast:.2f} times faster than the general path",
        )
    )
    result.add(Figure("worker, decode + enrichment + row", worker, "µs/event"))
    finish("hot_paths", [result], "python -m bench.bench_ingest")


if __name__ == "__main__":
    main()
