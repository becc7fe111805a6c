"""The worker process: migrate, then consume until SIGTERM (which drains the batch in hand)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

from tapioca.config import Settings
from tapioca.derive.jobs import derive_forever, derive_once
from tapioca.enrich.device import warm_up
from tapioca.errors import StoreUnavailable
from tapioca.logging import get_logger
from tapioca.queue.redis_stream import StreamConsumer, connect
from tapioca.storage import open_store
from tapioca.worker.loop import Worker, WorkerOptions

log = get_logger(__name__)


async def run_worker(settings: Settings, consumer_name: str, *, burst: bool = False) -> int:
    assert settings.redis_url is not None
    if settings.worker_nice:
        os.nice(settings.worker_nice)  # background work: the API's answers come first
    warm_up()
    # A batch keeps tens of thousands of rows alive while it is written: with the default
    # thresholds the collector scans them again and again (a fifth of the worker's CPU).
    # What is loaded by now lives as long as the process and is left out of the scans.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    store = open_store(settings)
    client = connect(settings.redis_url, timeout_s=10.0)
    consumer = StreamConsumer(
        client,
        settings.stream,
        settings.consumer_group,
        consumer_name,
        settings.dead_letter_stream,
    )
    worker = Worker(
        consumer,
        store,
        WorkerOptions(
            batch_max_events=settings.batch_max_events,
            batch_max_wait_ms=settings.batch_max_wait_ms,
            max_deliveries=settings.max_deliveries,
            max_inflight=settings.batches_in_hand,
            claim_idle_ms=settings.claim_idle_ms,
        ),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    try:
        delay = 0.5
        while not worker.stopping:
            try:
                await store.migrate()
                break
            except StoreUnavailable:
                log.warning("store_unavailable", phase="migrate", retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        stop_derive = asyncio.Event()
        deriving = asyncio.create_task(
            derive_forever(store, settings.derive_interval_s, stop_derive, worker.has_backlog)
        )
        try:
            await worker.run(burst=burst)
        finally:
            stop_derive.set()
            await deriving
        if burst:
            await derive_once(store)
    finally:
        await client.aclose()
        await store.close()
    return 0
