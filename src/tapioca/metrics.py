"""Prometheus instruments of this process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]

EVENTS_ACCEPTED = Counter(
    "tapioca_events_accepted", "Events acknowledged to clients (202)", ["route"]
)
EVENTS_REJECTED = Counter("tapioca_events_rejected", "Requests refused with 4xx/503", ["code"])
RATE_LIMITED = Counter(
    "tapioca_rate_limited", "Requests refused by a rate limit (429 rate_limited)", ["limit"]
)
EVENTS_WRITTEN = Counter("tapioca_events_written", "Events newly stored")
EVENTS_DUPLICATE = Counter("tapioca_events_duplicate", "Events already stored (idempotent replays)")
EVENTS_DEAD_LETTERED = Counter(
    "tapioca_events_dead_lettered", "Events moved to the dead-letter stream"
)
BATCHES_RETRIED = Counter(
    "tapioca_batches_retried",
    "Batch writes tried again whole after a deadlock, serialization failure or lock timeout",
)
ENTRIES_LEFT = Counter(
    "tapioca_entries_left_for_newer_worker",
    "Queue entries of a later record version left pending for a worker that knows it",
)
BATCH_SECONDS = Histogram(
    "tapioca_batch_write_seconds",
    "Time to write one batch and acknowledge it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_LAG = Gauge("tapioca_queue_lag", "Queue entries accepted but not yet written")
READS = Counter("tapioca_reads", "Report queries answered, by where they ran", ["source"])
READ_FAILOVERS = Counter(
    "tapioca_read_failovers", "Times a replica was taken out of the read rotation"
)
REPLICA_LAG = Gauge("tapioca_replica_lag_seconds", "Replay lag of each replica", ["replica"])
HTTP_REFUSED = Counter(
    "tapioca_http_refused",
    "Requests refused and connections closed by the HTTP layer (deadlines, framing, capacity)",
    ["reason"],
)
