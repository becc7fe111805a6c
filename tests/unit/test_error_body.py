"""The one error body (errors.error_body) echoes a bounded part of the input, whatever the
route: field names and messages cut with an ellipsis, at most 20 details and the count of
the others (docs/api.md, Errors)."""

from __future__ import annotations

import orjson

from tapioca.errors import ErrorDetail, TapiocaError, error_body, validation_error

MB = 1 << 20


def test_a_short_error_is_echoed_unchanged() -> None:
    details = [ErrorDetail("3.timestamp", "is more than 300 seconds in the future")]
    assert error_body("rid", "validation_error", "The request is not valid.", details) == {
        "error": {
            "code": "validation_error",
            "message": "The request is not valid.",
            "details": [
                {"field": "3.timestamp", "message": "is more than 300 seconds in the future"}
            ],
        },
        "request_id": "rid",
    }


def test_a_field_name_of_a_megabyte_is_cut_to_100_characters() -> None:
    name = "k" * MB
    body = validation_error([ErrorDetail(f"0.{name}", "Extra inputs are not permitted")]).body("r")
    assert body["error"]["details"] == [
        {"field": "0." + "k" * 97 + "…", "message": "Extra inputs are not permitted"}
    ]


def test_messages_are_cut_to_300_characters() -> None:
    sites = ", ".join(f"site-{n}" for n in range(10_000))
    error = TapiocaError(404, "site_not_found", f"Unknown site(s): {sites}.",
                         [ErrorDetail("0.site_id", f"no site '{'s' * 1000}'")])  # fmt: skip
    body = error.body("r")["error"]
    assert body["message"] == f"Unknown site(s): {sites}"[:299] + "…"
    assert body["details"][0]["message"] == "no site '" + "s" * 290 + "…"
    assert (len(body["message"]), len(body["details"][0]["message"])) == (300, 300)


def test_at_most_20_details_are_listed_and_the_message_counts_the_others() -> None:
    details = [
        ErrorDetail(f"{n}.colour-{n}", "Extra inputs are not permitted") for n in range(10_000)
    ]
    body = validation_error(details, "10000 event(s) are invalid; nothing was accepted.").body("r")
    assert body == {
        "error": {
            "code": "validation_error",
            "message": "10000 event(s) are invalid; nothing was accepted. "
            "9980 more details are not listed.",
            "details": [
                {"field": f"{n}.colour-{n}", "message": "Extra inputs are not permitted"}
                for n in range(20)
            ],
        },
        "request_id": "r",
    }
    assert len(orjson.dumps(body)) < 2048


def test_exactly_20_details_are_all_listed() -> None:
    details = [ErrorDetail(str(n), "must be a JSON object") for n in range(20)]
    error = error_body("r", "validation_error", "20 event(s) are invalid.", details)["error"]
    assert (error["message"], len(error["details"])) == ("20 event(s) are invalid.", 20)


def test_store_limits_answer_503_in_the_one_shape() -> None:
    """A read past the statement timeout may be retried (Retry-After); one that would
    return more rows than an answer holds may not: narrow the range."""
    import asyncio
    from types import SimpleNamespace

    import httpx
    from fastapi import FastAPI

    from tapioca.api.errors import install_error_handlers
    from tapioca.errors import AnswerTooLarge, QueryTimeout

    app = FastAPI()
    app.state.settings = SimpleNamespace(retry_after_seconds=7)
    install_error_handlers(app)

    @app.get("/large")
    async def large() -> None:
        raise AnswerTooLarge("more than 100000 rows")

    @app.get("/slow")
    async def slow() -> None:
        raise QueryTimeout("cancelled")

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/large"), await client.get("/slow")

    large_answer, slow_answer = asyncio.run(ask())
    assert large_answer.status_code == 503 and "retry-after" not in large_answer.headers
    assert large_answer.json()["error"]["code"] == "answer_too_large"
    assert "narrow the range" in large_answer.json()["error"]["message"]
    assert slow_answer.status_code == 503 and slow_answer.headers["retry-after"] == "7"
    assert slow_answer.json()["error"]["code"] == "query_timeout"
