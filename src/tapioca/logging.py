"""Structured logs (structlog): one JSON object per line on stderr, snake_case past-tense
events.

Whatever else logs through the standard library (uvicorn's server and access logs,
asyncio, the drivers, warnings) is rendered by the same renderer, and so is an exception
that nothing caught, in the main thread or another (event ``crashed``): no line of a
Tapioca process is anything but a log line.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from tapioca.kit.redact import redact_target

# the arguments of uvicorn's access log line: '%s - "%s %s HTTP/%s" %d'
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def configure_logging(level: str = "info", json: bool = True) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    stamps: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *stamps,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # one write per line, its newline included: processes sharing stderr (the API's
        # workers) never run two lines together
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _render_stdlib_logs(numeric, stamps, renderer)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.unraisablehook = _log_unraisable


def _render_stdlib_logs(level: int, stamps: list[Processor], renderer: Processor) -> None:
    """The standard library's loggers write their records through ``renderer`` too."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *stamps, _access_fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
        pass_foreign_args=True,
    )
    root = logging.getLogger()
    root.handlers = [_LineHandler(formatter)]
    root.setLevel(level)
    # uvicorn's own start-up lines say less than `serving` and `api_started`: warnings only
    logging.getLogger("uvicorn.error").setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]


class _LineHandler(logging.Handler):
    """Writes each record of the standard library's loggers as one line, through the
    writer structlog's own lines go through (one lock per file, one write per line:
    lines never interleave, within a process or between processes sharing stderr)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._printer = structlog.WriteLogger(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._printer.msg(self.format(record))
        except Exception:
            self.handleError(record)


def _access_fields(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """uvicorn's access line as fields (event ``request_answered``); the positional
    arguments of every other record are in its message already."""
    args = event.pop("positional_args", ())
    if event.get("logger") == "uvicorn.access" and len(args) == len(_ACCESS_FIELDS):
        event["event"] = "request_answered"
        event.update(zip(_ACCESS_FIELDS, args, strict=True))
        event["path"] = redact_target(str(event["path"]))  # no credential in a log line
    return event


def _log_uncaught(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    log = get_logger("tapioca")
    if issubclass(kind, KeyboardInterrupt):
        log.warning("interrupted")
        return
    log.critical("crashed", error=kind.__name__, exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    thread = args.thread.name if args.thread is not None else None
    get_logger("tapioca").critical(
        "crashed",
        error=args.exc_type.__name__,
        thread=thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """An exception Python could only ignore (in a finalizer, say)."""
    kind, value = unraisable.exc_type, unraisable.exc_value
    get_logger("tapioca").error(
        "exception_ignored",
        error=kind.__name__,
        where=repr(unraisable.object),
        exc_info=(kind, value, unraisable.exc_traceback) if value is not None else None,
    )
