"""One raw HTTP request with a curl reproduction: a dropped connection or a 5xx fails the
test with the command that repeats it; a 4xx must have the error shape."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping

import httpx

from support.error_shape import check_error

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
