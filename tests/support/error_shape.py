"""api.md's one error shape: ``{"error": {"code", "message", "details": [{"field",
"message"}]}, "request_id"}``, the request id also in the ``X-Request-ID`` header."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def error_shape_problems(status: int, content: bytes, request_id_header: str | None) -> list[str]:
    """What is wrong with an error answer, measured against api.md's one error shape:
    ``{"error": {"code", "message", "details": [{"field", "message"}]}, "request_id"}``."""
    try:
        body = json.loads(content)
    except ValueError:
        return [f"{status} body is not JSON: {content[:200]!r}"]
    if not isinstance(body, dict) or set(body) != {"error", "request_id"}:
        return [f"{status} top-level keys must be exactly error, request_id: {body!r:.300}"]
    problems = []
    error = body["error"]
    if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
        return [f"{status} error keys must be exactly code, message, details: {error!r:.300}"]
    if not isinstance(error["code"], str) or not SNAKE.match(error["code"]):
        problems.append(f"code is not snake_case text: {error['code']!r}")
    if not isinstance(error["message"], str) or not error["message"]:
        problems.append(f"message is not a non-empty string: {error['message']!r}")
    if not isinstance(error["details"], list):
        problems.append(f"details is not a list: {error['details']!r}")
    else:
        for detail in error["details"]:
            if not isinstance(detail, dict) or set(detail) != {"field", "message"}:
                problems.append(f"a detail is not exactly {{field, message}}: {detail!r}")
            elif not isinstance(detail["field"], str) or not isinstance(detail["message"], str):
                problems.append(f"a detail's field/message are not strings: {detail!r}")
    rid = body["request_id"]
    if not isinstance(rid, str) or not rid:
        problems.append(f"request_id is not a non-empty string: {rid!r}")
    elif request_id_header != rid:  # docs/api.md: request_id is also in X-Request-ID
        problems.append(f"X-Request-ID {request_id_header!r} is not request_id {rid!r}")
    return problems


def check_error(response: httpx.Response, repro: str) -> dict[str, Any]:
    """Assert the error shape of a 4xx/5xx answer; returns the body."""
    problems = error_shape_problems(
        response.status_code, response.content, response.headers.get("x-request-id")
    )
    assert not problems, f"{'; '.join(problems)}\n  repro: {repro}"
    body: dict[str, Any] = response.json()
    return body


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An answer of ``status`` in the one error shape (``code`` when given); returns the body."""
    assert response.status_code == status, f"{response.status_code} {response.text[:500]}"
    body = check_error(response, f"{response.request.method} {response.request.url}")
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


def fields_of(body: Mapping[str, Any]) -> list[str]:
    return [d["field"] for d in body["error"]["details"]]
