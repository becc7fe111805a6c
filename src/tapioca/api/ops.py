"""Operations: /health, /ready, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from starlette.responses import Response

from tapioca import __version__, metrics
from tapioca.api.access import Access, access
from tapioca.api.errors import error_response
from tapioca.api.responses import JSONBody
from tapioca.api.runtime import Runtime
from tapioca.errors import ErrorDetail
from tapioca.model.derived import DERIVED_SEQ
from tapioca.queue.redis_stream import STATS_KEY, StreamProducer
from tapioca.scheduler.runs import scheduler_status

router = APIRouter(tags=["operations"])

CLUSTER_TOTALS = Gauge(
    "tapioca_cluster_events",
    "Totals of all workers (written, duplicates, dead_lettered, batches, batch_seconds, retried)",
    ["kind"],
)


async def _check(call: Any, limit_s: float = 2.0) -> str:
    try:
        await asyncio.wait_for(call(), limit_s)
    except Exception:
        return "down"
    return "ok"


# Events stored but not yet in sessions and hourly rollups, and whether daily rollups wait.
_DERIVE_LAG = (
    f"SELECT (SELECT coalesce(max(seq), 0) FROM event) - {DERIVED_SEQ}, "
    "EXISTS (SELECT 1 FROM rollup_dirty_day)"
)


async def _status(runtime: Runtime) -> dict[str, Any]:
    async def reads() -> None:
        await runtime.reader.fetch("SELECT 1")

    store, reading, queue = await asyncio.gather(
        _check(runtime.store.ping), _check(reads), _check(runtime.queue.ping)
    )
    lag: int | None
    try:
        lag = await asyncio.wait_for(runtime.queue.lag(), 2.0)
    except Exception:
        lag = None
    derive: dict[str, Any] = {"lag": None, "days_pending": None}  # unknown: store down
    with contextlib.suppress(Exception):
        rows = await asyncio.wait_for(runtime.store.fetch(_DERIVE_LAG), 2.0)
        derive = {"lag": int(rows[0][0]), "days_pending": bool(rows[0][1])}
    scheduler: dict[str, Any] | None = None  # unknown: store down
    with contextlib.suppress(Exception):
        scheduler = await asyncio.wait_for(scheduler_status(runtime.store), 2.0)
    router = runtime.router
    replicas = router.describe() if router else []
    healthy = store == reading == queue == "ok" and all(r["state"] == "healthy" for r in replicas)
    return {
        "status": "ok" if healthy else "degraded",
        "reading_from": router.reading_from if router else "primary",
        "queue_lag": lag,
        "derive": derive,
        "scheduler": scheduler,
        "mode": runtime.settings.mode.value,
        "store": store,
        "reads": reading,
        "queue": queue,
        "replicas": replicas,
        "version": __version__,
    }


@router.get("/health", summary="Health, where reads go, and queue lag", **access(Access.OPEN))
async def health(request: Request) -> JSONBody:
    return JSONBody(await _status(request.app.state.runtime))


@router.get(
    "/ready",
    summary="200 when reports can be read and events queued, else 503",
    **access(Access.OPEN),
)
async def ready(request: Request) -> JSONBody:
    status = await _status(request.app.state.runtime)
    if status["reads"] == status["queue"] == "ok":
        return JSONBody(status)
    parts = ("reads", "queue")
    down = [ErrorDetail(part, "does not answer") for part in parts if status[part] != "ok"]
    return error_response(request, 503, "not_ready", "Tapioca is not ready yet.", down)


_METRICS = access(Access.LOCAL_OR_ADMIN)
_METRICS["responses"][200] = {
    "content": {"text/plain": {}},
    "description": "Prometheus text format",
}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, **_METRICS)
async def prometheus(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        metrics.QUEUE_LAG.set(await asyncio.wait_for(runtime.queue.lag(), 2.0))
    except Exception:
        metrics.QUEUE_LAG.set(float("nan"))
    queue = runtime.queue
    if isinstance(queue, StreamProducer):
        try:
            totals = await asyncio.wait_for(queue.redis.hgetall(STATS_KEY), 2.0)
        except Exception:
            totals = {}
        for key, value in totals.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            CLUSTER_TOTALS.labels(name).set(float(value))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
