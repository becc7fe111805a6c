"""Functions compiled from a table of fields, as the standard library's dataclasses and
namedtuple are: the per-event functions of ingest and the worker name every field of the
event (model/event.py) as a local variable, made from the table, so that they run as fast
as if each were written out by hand, while the table stays the one place fields are
declared. Only code this project writes is compiled, never input."""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any


def compile_function(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """Define function ``name`` from ``source`` in ``namespace`` and return it. Its source
    is kept for tracebacks and for reading (``function.__source__``)."""
    filename = f"<{namespace.get('__name__', 'tapioca')}.{name}>"
    code = compile(source, filename, "exec")
    exec(code, namespace)  # noqa: S102 - the source is made from the field tables
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    function: Callable[..., Any] = namespace[name]
    function.__source__ = source  # type: ignore[attr-defined]
    return function
