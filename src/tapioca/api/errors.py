"""The one error shape of api.md, for every error from every route."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tapioca.api.responses import JSONBody
from tapioca.errors import (
    AnswerTooLarge,
    ErrorDetail,
    QueryTimeout,
    QueueUnavailable,
    StoreUnavailable,
    TapiocaError,
    error_body,
)
from tapioca.kit.ids import new_request_id
from tapioca.logging import get_logger

log = get_logger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetailBody(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    """At most 20 details (the message then says how many more there are); a field is at
    most 100 characters, a message at most 300 (cut with an ellipsis)."""

    code: str
    message: str
    details: list[ErrorDetailBody]


class ErrorBody(BaseModel):
    """The one shape of every error answer."""

    error: ErrorInfo
    request_id: str


_DESCRIPTIONS = {
    404: "Unknown route or site",
    413: "Body, batch or event too large",
    415: "Unsupported Content-Encoding",
    422: "Invalid input; details name the fields",
    500: "Internal error",
    503: "Store or queue unavailable (Retry-After)",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _DESCRIPTIONS.items()
}
# What only the ingest routes answer besides.
INGEST_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "rate_limited: over a rate limit on events per client address, site "
        "or API key (Retry-After); too_many_new_sites: the events name more new sites than a "
        "request or the minute may make (Retry-After for the minute); nothing accepted",
    }
}


def request_id_of(request: Request) -> str:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    rid = state.get("request_id")
    if not isinstance(rid, str):
        rid = new_request_id()
        state["request_id"] = rid
    return rid


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONBody:
    rid = request_id_of(request)
    body = error_body(rid, code, message, details)
    return JSONBody(body, status_code=status, headers={**(headers or {}), "X-Request-ID": rid})


async def _tapioca_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, TapiocaError)
    return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "body", "header"):
        parts = parts[1:]
    return ".".join(parts) or "request"


async def _validation_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, RequestValidationError)
    details = [
        ErrorDetail(_field(tuple(err.get("loc", ()))), str(err.get("msg", "invalid")))
        for err in exc.errors()
    ]
    return error_response(request, 422, "validation_error", "The request is not valid.", details)


async def _http_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's answer to a JSON body that is not UTF-8: the route's input is not
        # valid (a 400 is the HTTP layer's, docs/api.md)
        problem = [ErrorDetail("body", "JSON text in UTF-8")]
        return error_response(request, 422, "validation_error", "The body is not valid.", problem)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = {
        404: f"No route {request.url.path}.",
        405: f"Method {request.method} is not allowed on {request.url.path}.",
    }.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request, exc.status_code, code, message, headers=headers)


async def _unavailable(request: Request, exc: Exception) -> JSONBody:
    retry_after = str(request.app.state.settings.retry_after_seconds)
    what = "store" if isinstance(exc, StoreUnavailable) else "queue"
    log.warning("dependency_unavailable", dependency=what, error=type(exc).__name__)
    return error_response(
        request,
        503,
        "unavailable",
        f"The {what} is unavailable; retry later.",
        headers={"Retry-After": retry_after},
    )


async def _internal_error(request: Request, exc: Exception) -> JSONBody:
    log.error("request_failed", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return error_response(request, 500, "internal_error", "An internal error occurred.")


async def _query_timeout(request: Request, exc: Exception) -> JSONBody:
    log.warning("query_timed_out", path=request.url.path, error=type(exc).__name__)
    retry_after = str(request.app.state.settings.retry_after_seconds)
    return error_response(
        request,
        503,
        "query_timeout",
        "The report took longer than the statement timeout; narrow the range or retry.",
        headers={"Retry-After": retry_after},
    )


async def _answer_too_large(request: Request, exc: Exception) -> JSONBody:
    log.warning("answer_too_large", path=request.url.path, error=str(exc))
    return error_response(
        request,
        503,
        "answer_too_large",
        "The report needs more rows than the server reads for one answer; narrow the range.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TapiocaError, _tapioca_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(QueueUnavailable, _unavailable)
    app.add_exception_handler(QueryTimeout, _query_timeout)
    app.add_exception_handler(AnswerTooLarge, _answer_too_large)
    app.add_exception_handler(Exception, _internal_error)


class RequestIdMiddleware:
    """Gives every request an id (or keeps the client's X-Request-ID) and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id" and 0 < len(value) <= 128 and value.isascii():
                rid = value.decode()
        state = scope.setdefault("state", {})
        state["request_id"] = rid = rid or new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
