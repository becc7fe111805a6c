"""What an ingest protocol is (ingest/protocols/__init__.py lists them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from tapioca.errors import ErrorDetail, TapiocaError, too_large


class Shape(StrEnum):
    ONE = "one"  # the body is one event
    BATCH = "batch"  # the body holds several


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    shape: Shape
    summary: str
    body: dict[str, Any]  # the OpenAPI request body's content, by media type
    answer: type[Any]  # the model of the 202 answer (OpenAPI)


class Parsed(NamedTuple):
    """Validated events (ingest/event.py), None where one failed (``details`` say why);
    ``indexed``: the details name events by their position; ``nul_possible``: the body
    could carry a NUL character (normalize.encode looks for one only then)."""

    events: Sequence[Any]
    indexed: bool
    details: Sequence[ErrorDetail] = ()
    nul_possible: bool = True


Headers = Mapping[str, str]  # lower-case names
Parse = Callable[[Route, bytes, Headers, int], Parsed]
Answer = Callable[[Route, list[str]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class IngestProtocol:
    name: str
    routes: tuple[Route, ...]
    parse: Parse  # pure: no I/O, no clock
    answer: Answer  # the 202 answer's body, from the accepted events' ids


def ensure_batch_size(count: int, limit: int) -> None:
    if count > limit:
        raise too_large(f"A request may carry at most {limit} events; this one has {count}.")
    if count == 0:
        raise TapiocaError(
            422, "validation_error", "The batch is empty.", [ErrorDetail("events", "no events")]
        )
