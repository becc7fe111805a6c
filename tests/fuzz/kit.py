"""Helpers of the fuzz suite: the error shape of api.md, repro lines, and counting views."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from e2e.procs import Server
from e2e.traffic import wait_until_drained

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
REPRO_BODY = 600  # bytes of a body shown in a reproduction


def curl(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """A curl-style reproduction (the body shortened when long)."""
    parts = ["curl", "-i", "-X", method]
    for name, value in (headers or {}).items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if body is not None:
        shown = body[:REPRO_BODY]
        text = shown.decode("utf-8", "backslashreplace")
        more = f" …(+{len(body) - len(shown)} bytes)" if len(body) > len(shown) else ""
        parts += ["--data-binary", shlex.quote(text) + more]
    parts.append(shlex.quote(url))
    return " ".join(parts)


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


def fields(body: Mapping[str, Any]) -> list[str]:
    return [d["field"] for d in body["error"]["details"]]


def send(
    client: httpx.Client,
    method: str,
    url: str,
    content: bytes | Iterable[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    repro_body: bytes | None = None,
) -> tuple[httpx.Response, str]:
    """One request; a dropped connection or a 5xx fails with a reproduction."""
    shown = (
        repro_body if repro_body is not None else content if isinstance(content, bytes) else None
    )
    repro = curl(method, url, shown, headers)
    try:
        response = client.request(method, url, content=content, headers=headers)
    except httpx.TransportError as exc:
        raise AssertionError(f"dropped connection ({exc!r})\n  repro: {repro}") from exc
    assert response.status_code < 500, (
        f"{response.status_code} {response.text[:300]}\n  repro: {repro}"
    )
    if response.status_code >= 400:
        check_error(response, repro)
    return response, repro


def total_views(server: Server, site: str) -> int:
    """All-time page views of a site once everything acknowledged is visible (0 if unknown)."""
    if server.mode == "production":
        wait_until_drained(server.client, sites=[site])
    response = server.client.get("/stats", params={"site_id": site})
    if response.status_code == 404:
        assert response.json()["error"]["code"] == "site_not_found", response.text
        return 0
    assert response.status_code == 200, response.text
    views: int = response.json()["total_views"]
    return views
