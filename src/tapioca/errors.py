"""One error root: every failure a client can see is a ``TapiocaError``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    field: str
    message: str


@dataclass(eq=False)
class TapiocaError(Exception):
    """An error with an HTTP status and a stable snake_case code."""

    status: int
    code: str
    message: str
    details: list[ErrorDetail] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def body(self, request_id: str) -> dict[str, Any]:
        return error_body(request_id, self.code, self.message, self.details)


def error_body(
    request_id: str, code: str, message: str, details: list[ErrorDetail] | None = None
) -> dict[str, Any]:
    """The body of every error answer (api.md, Errors)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": [{"field": d.field, "message": d.message} for d in details or []],
        },
        "request_id": request_id,
    }


def validation_error(details: list[ErrorDetail], message: str | None = None) -> TapiocaError:
    return TapiocaError(422, "validation_error", message or "The request is not valid.", details)


def invalid_parameter(name: str, message: str) -> TapiocaError:
    return validation_error([ErrorDetail(name, message)], f"Invalid parameter '{name}'.")


def too_large(message: str) -> TapiocaError:
    return TapiocaError(413, "payload_too_large", message)


def not_found(code: str, message: str, field_name: str | None = None) -> TapiocaError:
    details = [ErrorDetail(field_name, message)] if field_name else []
    return TapiocaError(404, code, message, details)


def unavailable(message: str, retry_after: int) -> TapiocaError:
    return TapiocaError(503, "unavailable", message, headers={"Retry-After": str(retry_after)})


class StoreUnavailable(Exception):
    """The store cannot be reached right now (connection-class failure)."""


class ReadsMoved(StoreUnavailable):
    """The replica a snapshot read from went away mid-answer: the answer can be asked
    again at once, from another database."""


class QueryTimeout(Exception):
    """A read ran longer than the statement timeout (the store cancelled it)."""


class QueueUnavailable(Exception):
    """The queue cannot hold events durably right now."""
