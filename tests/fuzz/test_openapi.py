"""Schemathesis over the served /openapi.json of a real `tapioca serve` (and, for the
ingest operations, a real `tapioca api`).

Enforced on every generated request (positive and negative data, examples, fuzzing and,
for POST /event and GET /stats, the coverage phase):

* no answer is a 5xx (``not_a_server_error``);
* every 4xx/5xx has exactly api.md's error shape (``error_shape``);
* a 2xx conforms to its documented schema (``response_schema_conformance``).

Checked as well, the document against the behaviour (``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance`` of non-2xx answers,
``positive_data_acceptance``, ``negative_data_rejection``): each failure is recorded with
a curl reproduction, and ``test_openapi_documents_what_the_api_answers`` fails on any. A
schema-valid request may be refused only for a rule OpenAPI cannot state
(``INEXPRESSIBLE``, docs/api.md): a time relative to now, parameters that exclude each
other, a site_id needed only on an instance with several sites.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, CheckFunction, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from support.error_shape import error_shape_problems
from support.procs import Server
from tapioca.ingest.event import BEYOND_64_BITS, TOO_DEEP

pytestmark = pytest.mark.fuzz

SETTINGS: dict[str, Any] = {
    "seed": 20251114,
    "output": {"sanitization": {"enabled": False}},  # show session_id etc. in repros
    "generation": {"mode": "all"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    # The batch routes take the same EventIn as POST /event, whose coverage phase
    # already walks every field's boundaries; their ~650 coverage cases each would
    # double the run time for little news. They are still fuzzed.
    "operations": [
        {"include-path": ["/events", "/api/events"], "phases": {"coverage": {"enabled": False}}}
    ],
}
CONFIG = schemathesis.Config.from_dict(SETTINGS)
# `tapioca api` runs the same validation code as `serve`, which gets the coverage phase;
# here the point is the production queue path, fuzzed without it.
PRODUCTION_CONFIG = schemathesis.Config.from_dict(
    {**SETTINGS, "phases": {**SETTINGS["phases"], "coverage": {"enabled": False}}}
)
FUZZ_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
)

# (environment, operation, check) -> first failure, with a curl reproduction
SPEC_GAPS: dict[tuple[str, str, str], str] = {}
EXERCISED = {"serve": 0, "api": 0}  # requests checked per environment


def error_shape(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """api.md: every error, from every route, has the one error shape."""
    if response.status_code < 400:
        return
    values = {k.lower(): v for k, v in response.headers.items()}.get("x-request-id")
    header = values[0] if values else None
    problems = error_shape_problems(response.status_code, response.content, header)
    if problems:
        raise AssertionError("; ".join(problems))


def success_conforms(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """A 2xx answer validates against the schema documented for it."""
    if 200 <= response.status_code < 300:
        response_schema_conformance(ctx, response, case)


def error_conforms(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """A non-2xx answer validates against the schema documented for it (spec gap check)."""
    if not 200 <= response.status_code < 300:
        response_schema_conformance(ctx, response, case)


ENFORCED: list[CheckFunction] = [not_a_server_error, error_shape, success_conforms]
RECORDED: list[CheckFunction] = [
    status_code_conformance,
    content_type_conformance,
    error_conforms,
    positive_data_acceptance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def http_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def served_schema(served: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.base_url}/openapi.json", config=CONFIG)


@pytest.fixture(scope="module")
def production_schema(production_api: Server) -> schemathesis.BaseSchema:
    url = f"{production_api.base_url}/openapi.json"
    return schemathesis.openapi.from_url(url, config=PRODUCTION_CONFIG)


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy loader (``from_fixture``) reads and rewrites
    ``node._nodeid``, which pytest 9.2 no longer has (it became ``_id``)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _shorten(text: str, limit: int = 900) -> str:
    return text if len(text) <= limit else f"{text[:limit]} …(+{len(text) - limit} chars)"


# Rules of the API that an OpenAPI document cannot state, with why. A schema-valid request
# refused (positive_data_acceptance) is a gap unless every detail of its 422 is one of these.
INEXPRESSIBLE: list[tuple[str, str, str]] = [
    (r"(\d+\.)?timestamp", r"is more than \d+ seconds in the future", "relative to now"),
    ("site_id", "required", "optional only on an instance with exactly one site"),
    ("date", "give either date or start_date/end_date, not both", "parameters that exclude"),
    ("start_date", "start_date is after end_date", "an order between two parameters"),
    ("date|start_date|end_date", "must be between 0001-01-02 and 9999-12-30", "zones at the ends"),
    ("filters", "a filter value is longer than 2048 characters", "a length inside a pattern"),
    ("interval", r"more than \d+ buckets; widen it", "the range over the interval"),
    ("metrics", r".* are session metrics; '.*' is an event dimension", "metrics that fit"),
    (
        r"(\d+\.)?(revenue|items\.\d+\.price)",
        r"must be a finite number below 10\^14",
        "text that rounds to 10^14 at four places",
    ),
    (
        r"(\d+\.)?properties(?s:\..*)?",
        f"{re.escape(TOO_DEEP)}|{re.escape(BEYOND_64_BITS)}|must not contain NUL characters",
        "any JSON value, nested; JSON numbers of any size",
    ),
]


def _inexpressible(response: schemathesis.Response) -> bool:
    """A refusal for a rule the document cannot state: an event larger than the limit
    (its encoded size), or a 422 whose details are all INEXPRESSIBLE rules."""
    if response.status_code == 413:
        return "larger than" in response.json()["error"]["message"]
    if response.status_code != 422:
        return False
    details = response.json()["error"]["details"]
    return bool(details) and all(
        any(
            re.fullmatch(field, d["field"]) and re.fullmatch(message, d["message"])
            for field, message, _ in INEXPRESSIBLE
        )
        for d in details
    )


def _fields(check: Any, response: schemathesis.Response) -> str:
    """For a refusal: the fields it names, so that each refused rule is reported."""
    if check is not positive_data_acceptance or response.status_code != 422:
        return ""
    return " " + ",".join(sorted({d["field"] for d in response.json()["error"]["details"]}))


def _exercise(
    case: schemathesis.Case[Any], base_url: str, session: requests.Session, env: str
) -> None:
    response = case.call(base_url=base_url, session=session, timeout=60)
    EXERCISED[env] += 1
    for check in RECORDED:
        key = (env, case.operation.label, check.__name__ + _fields(check, response))
        if key in SPEC_GAPS:
            continue
        try:
            case.validate_response(response, checks=[check])
        except FailureGroup as exc:
            if check is positive_data_acceptance and _inexpressible(response):
                continue
            titles = "; ".join(f"{f.title}: {f.message}" for f in exc.exceptions)
            SPEC_GAPS[key] = (
                f"{_shorten(titles, 300)}\n      answer: {response.status_code} "
                f"{_shorten(response.content.decode('utf-8', 'replace'), 200)}\n      repro: "
                f"{_shorten(case.as_curl_command(base_url=base_url))}"
            )
    case.validate_response(response, checks=ENFORCED)


embedded = schemathesis.pytest.from_fixture("served_schema")
production_ingest = schemathesis.pytest.from_fixture("production_schema").include(tag="ingest")


@embedded.parametrize()
@FUZZ_SETTINGS
def test_every_operation_of_serve(
    case: schemathesis.Case[Any], served: Server, http_session: requests.Session
) -> None:
    _exercise(case, served.base_url, http_session, "serve")


@production_ingest.parametrize()
@FUZZ_SETTINGS
def test_ingest_operations_of_api(
    case: schemathesis.Case[Any], production_api: Server, http_session: requests.Session
) -> None:
    _exercise(case, production_api.base_url, http_session, "api")


ERROR_STATUSES = {
    ("post", "/event"): ["403", "413", "415", "422", "503"],
    ("post", "/events"): ["403", "413", "415", "422", "503"],
    ("post", "/api/events"): ["403", "413", "415", "422", "503"],
    ("get", "/stats"): ["404", "422"],
    ("get", "/ready"): ["503"],
}


def _declared_problems(spec: dict[str, Any]) -> list[str]:
    """Error answers the API gives (docs/api.md) that its OpenAPI document leaves out."""
    problems = []
    schemas = spec.get("components", {}).get("schemas", {})
    for (method, path), statuses in ERROR_STATUSES.items():
        responses = spec["paths"][path][method].get("responses", {})
        missing = [s for s in statuses if s not in responses and "default" not in responses]
        if missing:
            problems.append(f"{method.upper()} {path}: undeclared statuses {missing}")
        for status in statuses:
            content = responses.get(status, {}).get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref", "")
            props = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
            if status in responses and set(props) != {"error", "request_id"}:
                problems.append(
                    f"{method.upper()} {path}: {status} is documented as {ref or 'no schema'}, "
                    "not the error shape"
                )
    timestamp = schemas.get("EventIn", {}).get("properties", {}).get("timestamp", {})
    types = {alt.get("type") for alt in timestamp.get("anyOf", [timestamp])}
    if not types & {"integer", "number"}:
        problems.append("EventIn.timestamp: epoch numbers (docs/api.md) are not documented")
    return problems


def test_openapi_documents_what_the_api_answers(served: Server) -> None:
    assert all(EXERCISED.values()), f"run with the tests above it (requests: {EXERCISED})"
    spec = served.client.get("/openapi.json").json()
    problems = _declared_problems(spec)
    problems += [
        f"[{env}] {operation} {check}: {detail}"
        for (env, operation, check), detail in sorted(SPEC_GAPS.items())
    ]
    assert not problems, "the OpenAPI document is incomplete:\n  " + "\n  ".join(problems)


def test_the_longest_filters_the_document_allows_reach_the_server(served: Server) -> None:
    """4,096 four-byte characters are 49 KB percent-encoded: still read as a request (the
    answer is the API's own, in the error shape), not refused by the HTTP server."""
    value = "\U0008a655" * (4096 - len("path=="))
    response = served.client.get(
        "/api/v1/stats/timeseries", params={"site_id": "0", "filters": f"path=={value}"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "filters", "message": "a filter value is longer than 2048 characters"}
    ]
