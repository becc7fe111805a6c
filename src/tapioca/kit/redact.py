"""Credentials kept out of what Tapioca writes: log lines and error answers.

A client may put a credential where it does not belong (a key in the query string, a key
in place of a key's id, a token in a site id); the setup link carries its token in its
query string. Whatever echoes a request's path or input shows such values by their kind
only: Tapioca's own secrets by their prefix (``tpk_…`` keys, ``tpr_…`` refresh tokens,
``tpi_…`` invitations, ``tps_…`` setup links, ``tpl_…`` the local credential), JWTs as
``eyJ…``, and the values of query parameters named like secrets not at all."""

from __future__ import annotations

import re

MASK = "…"

_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:(tp[a-z]_)[A-Za-z0-9_-]{16,}"
    r"|(eyJ)[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)"
)
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&][^=&#]*(?:password|passwd|secret|token|key|invitation|auth)[^=&#]*=)[^&#]*"
)


def redact(text: str) -> str:
    """``text`` with every credential-shaped value shown by its prefix only."""
    if "tp" not in text and "eyJ" not in text:
        return text
    return _SHAPES.sub(lambda found: (found.group(1) or found.group(2)) + MASK, text)


def redact_target(target: str) -> str:
    """A request's path and query string, fit for a log line."""
    if "?" in target:
        target = _SECRET_PARAMETER.sub(lambda found: found.group(1) + MASK, target)
    return redact(target)
