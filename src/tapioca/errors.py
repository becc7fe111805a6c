"""One error root: every failure a client can see is a ``TapiocaError``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tapioca.kit.redact import redact


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


# What an error answer echoes of the input is bounded (docs/api.md, Errors): a field name
# (a client's unknown key, say) at most FIELD_MAX characters, a message (which may hold a
# value sent) at most MESSAGE_MAX, and at most DETAILS_MAX details, the message then
# saying how many more there are. A credential in the input is shown by its kind only
# (kit/redact.py).
FIELD_MAX = 100
MESSAGE_MAX = 300
DETAILS_MAX = 20
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def error_body(
    request_id: str, code: str, message: str, details: list[ErrorDetail] | None = None
) -> dict[str, Any]:
    """The body of every error answer (api.md, Errors), echoing a bounded part of the input."""
    details = details or []
    message = redact(clip(message, MESSAGE_MAX))
    if len(details) > DETAILS_MAX:
        message += f" {len(details) - DETAILS_MAX} more details are not listed."
    listed = [
        {"field": redact(clip(d.field, FIELD_MAX)), "message": redact(clip(d.message, MESSAGE_MAX))}
        for d in details[:DETAILS_MAX]
    ]
    return {
        "error": {"code": code, "message": message, "details": listed},
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


class AnswerTooLarge(Exception):
    """A read would return more rows than the store hands one answer: refused whole,
    never cut short (a report over part of its rows would be wrong)."""


class QueueUnavailable(Exception):
    """The queue cannot hold events durably right now."""
