"""The application factory: one place that builds every part and hands it out."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from tapioca import __version__
from tapioca.api import auth, commerce, ops, order_source, orders, product, reports, sites
from tapioca.api.access import undeclared
from tapioca.api.docs import install_docs
from tapioca.api.errors import (
    ERROR_RESPONSES,
    INGEST_ERROR_RESPONSES,
    RequestIdMiddleware,
    install_error_handlers,
)
from tapioca.api.ingest import IngestRoutes
from tapioca.api.openapi import complete as complete_openapi
from tapioca.api.runtime import Runtime, build_runtime
from tapioca.auth.bootstrap import first_owner, remove_local_credential, write_local_credential
from tapioca.config import Mode, Settings
from tapioca.derive.jobs import derive_forever
from tapioca.errors import StoreUnavailable
from tapioca.ingest.protocols import ROUTES
from tapioca.logging import get_logger
from tapioca.queue.inprocess import GroupCommitQueue
from tapioca.scheduler.loop import scheduler_of

log = get_logger(__name__)

DESCRIPTION = """Tapioca keeps every event a site sends, without loss or double counting,
and answers web-analytics reports. Errors always have the shape
`{"error": {"code", "message", "details": [{"field", "message"}]}, "request_id"}`."""


class TapiocaAPI(FastAPI):
    """FastAPI, with the ingest routes answered in front of it (api/ingest.py): a tracker's
    hit goes through the request id and the ingest layer only, not through the layers of
    FastAPI and Starlette (their error middleware, body limit, OpenTelemetry's check of
    every request), whose work the ingest layer does itself."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._ingest = RequestIdMiddleware(IngestRoutes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in ROUTES:
            scope["app"] = self
            await self._ingest(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _background(runtime: Runtime, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Embedded mode: this process owns the store, so it derives what the events give,
    and (unless told not to) runs the scheduler."""
    tasks = []
    settings = runtime.settings
    if isinstance(runtime.queue, GroupCommitQueue):
        runtime.queue.start()
        derive = derive_forever(runtime.store, settings.derive_interval_s, stop, runtime.queue.busy)
        tasks.append(asyncio.create_task(derive))
    if settings.mode is Mode.EMBEDDED and settings.scheduler_in_serve:
        scheduler = scheduler_of(runtime.jobs(), settings)
        tasks.append(asyncio.create_task(scheduler.run_forever(stop)))
    return tasks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        try:
            await runtime.store.migrate()
        except StoreUnavailable:
            if settings.mode is Mode.EMBEDDED:
                raise
            log.warning("migrations_deferred", reason="store unavailable at start")
        stop_derive = asyncio.Event()
        tasks = _background(runtime, stop_derive)
        if runtime.router is not None:
            runtime.router.start()
        try:
            await first_owner(runtime.store, settings)
        except StoreUnavailable:
            log.warning("accounts_deferred", reason="store unavailable at start")
        local_token = None
        if settings.mode is Mode.EMBEDDED:  # this machine's CLI reaches the server with it
            runtime.gate.local_token = local_token = write_local_credential(settings)
        app.state.settings = settings
        app.state.runtime = runtime
        app.state.ingest = runtime.ingest
        app.state.reader = runtime.reader
        app.state.reports = runtime.reports
        app.state.gate = runtime.gate
        app.state.limits = runtime.limits
        # Everything built so far lives as long as the process: keep it out of the
        # collector's way, so that a full collection under load does not walk it.
        gc.collect()
        gc.freeze()
        log.info("api_started", mode=settings.mode.value)
        try:
            yield
        finally:
            stop_derive.set()
            if local_token is not None:
                remove_local_credential(settings, local_token)
            for task in tasks:
                await task
            await runtime.close()
            log.info("api_stopped")

    app = TapiocaAPI(
        title="Tapioca",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        docs_url=None,  # install_docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(reports.router)
    app.include_router(commerce.router)
    app.include_router(product.router)
    app.include_router(orders.router)
    app.include_router(order_source.router)
    app.include_router(auth.router)
    app.include_router(sites.router)
    app.include_router(ops.router)
    install_docs(app)
    missing = undeclared(app.routes)
    if missing:  # deny by default: a route says who may use it (api/access.py)
        raise RuntimeError(f"routes without an access level: {missing}")
    _complete_openapi(app, settings.max_events_per_request)
    return app


_ERROR_REF = "#/components/schemas/ErrorBody"


def _complete_openapi(app: FastAPI, max_events: int) -> None:
    """The ingest routes are served before routing and the report routes read loose query
    strings: publish both, with the rules they apply."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if not app.openapi_schema:
            errors = {
                str(status): {
                    "description": response["description"],
                    "content": {
                        "application/json": {"schema": {"$ref": _ERROR_REF}},
                    },
                }
                for status, response in {**ERROR_RESPONSES, **INGEST_ERROR_RESPONSES}.items()
            }
            app.openapi_schema = complete_openapi(original(), max_events, errors)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
