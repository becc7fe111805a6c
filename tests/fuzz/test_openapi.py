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

An operation whose document says it takes a credential (``security``) is called with the
test owner's access token (support/credentials.py), an owner of the instance, so that its
answers are about what is sent and not a 401; the others (ingest, signing in, health)
are called without one, as browsers and people call them. ``NOT_FUZZED`` lists the
operations left out, with why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, CheckFunction, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from support.error_shape import check_error, error_shape_problems
from support.procs import Server
from tapioca.ingest.event import BEYOND_64_BITS, TOO_DEEP

pytestmark = pytest.mark.fuzz

SETTINGS: dict[str, Any] = {
    "seed": 20251114,
    "output": {"sanitization": {"enabled": False}},  # show session_id etc. in repros
    "generation": {"mode": "all"},
    # too many events in a batch is refused as too large (413), as api.md says
    "checks": {
        "negative_data_rejection": {
            "expected-statuses": [
                "400",
                "401",
                "403",
                "404",
                "405",
                "406",
                "409",
                "413",
                "415",
                "422",
                "428",
                "429",
                "5xx",
            ],
        }
    },
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
    ("from_date", "from_date is after to_date", "an order between two parameters"),
    (r"(\w+_)?date", "must be between 0001-01-02 and 9999-12-30", "zones at the ends"),
    ("filters", "a filter value is longer than 2048 characters", "a length inside a pattern"),
    (
        "interval|cohort|start_date|from_date",
        r"more than \d+ buckets; widen it( or shorten the range)?",
        "the range over the interval",
    ),
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


CREDENTIAL_HEADERS = {"authorization", "x-api-key"}


def _credential(case: schemathesis.Case[Any], server: Server) -> dict[str, str]:
    """The owner's credential for an operation documented to take one; none for the
    others, nor for a case about a credential that is missing or not valid (it is sent as
    drawn: the answer must be the refusal)."""
    if not case.operation.definition.raw.get("security"):
        return {}
    for name, location in negated_parameters(case.meta):
        if location is ParameterLocation.HEADER and name.lower() in CREDENTIAL_HEADERS:
            return {}
    return dict(server.headers)


def _exercise(
    case: schemathesis.Case[Any], server: Server, session: requests.Session, env: str
) -> None:
    base_url = server.base_url
    headers = _credential(case, server)
    response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
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
                f"{_shorten(case.as_curl_command(headers=headers, base_url=base_url))}"
            )
    case.validate_response(response, checks=ENFORCED)


# Operations not fuzzed, with why. Every other operation of the document is.
NOT_FUZZED = {
    "DELETE /api/v1/users/{email}": "deletes accounts with the owner's token: an email drawn "
    "could name the owner whose token the fuzz sends (once POST /api/v1/users has made another "
    "instance owner, the last-owner rule no longer keeps it), and every later case would then "
    "be answered 401; test_deleting_accounts_never_fails_the_server sends it chosen emails",
    "POST /api/v1/sites/{site_id}/order-source/sync": "connects to the order database the "
    "site's source names, which the fuzz sets to any host and port (a host that drops the "
    "connection makes each case wait out the connect timeout); its parameters and answers are "
    "tested against real MariaDB and PostgreSQL databases (test_order_batch.py, "
    "test_orders_retail.py, the authorization matrix)",
}
embedded = schemathesis.pytest.from_fixture("served_schema").exclude(name=list(NOT_FUZZED))
production_ingest = schemathesis.pytest.from_fixture("production_schema").include(tag="ingest")
# Accounts, sites and keys are read and written on PostgreSQL directly: fuzzed there too.
production_accounts = (
    schemathesis.pytest.from_fixture("production_schema")
    .include(tag=["accounts", "sites"])
    .exclude(name=list(NOT_FUZZED))
)


@embedded.parametrize()
@FUZZ_SETTINGS
def test_every_operation_of_serve(
    case: schemathesis.Case[Any], served: Server, http_session: requests.Session
) -> None:
    _exercise(case, served, http_session, "serve")


@production_ingest.parametrize()
@FUZZ_SETTINGS
def test_ingest_operations_of_api(
    case: schemathesis.Case[Any], production_api: Server, http_session: requests.Session
) -> None:
    _exercise(case, production_api, http_session, "api")


@production_accounts.parametrize()
@FUZZ_SETTINGS
def test_account_operations_of_api(
    case: schemathesis.Case[Any], production_api: Server, http_session: requests.Session
) -> None:
    _exercise(case, production_api, http_session, "api")


ERROR_STATUSES = {
    ("post", "/event"): ["403", "413", "415", "422", "503"],
    ("post", "/events"): ["403", "413", "415", "422", "503"],
    ("post", "/api/events"): ["403", "413", "415", "422", "503"],
    ("get", "/stats"): ["401", "403", "404", "422"],
    ("get", "/ready"): ["503"],
    ("get", "/metrics"): ["401", "403"],
    ("post", "/api/v1/auth/token"): ["401", "422"],
    ("post", "/api/v1/auth/refresh"): ["401", "422"],
    ("post", "/api/v1/auth/register"): ["403", "409", "422"],
    ("post", "/api/v1/auth/setup"): ["403", "409", "422"],
    ("post", "/api/v1/sites"): ["401", "403", "409", "422"],
    ("patch", "/api/v1/sites/{site_id}"): ["401", "403", "404", "422"],
    ("post", "/api/v1/users"): ["401", "403", "409", "422"],
    ("delete", "/api/v1/users/{email}"): ["401", "403", "404", "409"],
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


@pytest.mark.parametrize(
    ("email", "status", "code"),
    [
        ("nobody@example.com", 404, "account_not_found"),
        ("not an email", 422, "validation_error"),
        ("a" * 400 + "@example.com", 422, "validation_error"),
        ("nul\x00@example.com", 422, "validation_error"),
        ("two@@example.com", 422, "validation_error"),
    ],
)
def test_deleting_accounts_never_fails_the_server(
    served: Server, email: str, status: int, code: str
) -> None:
    """DELETE /api/v1/users/{email} (not fuzzed, NOT_FUZZED): chosen emails, and an
    account made and deleted twice."""
    response = served.client.delete(f"/api/v1/users/{quote(email, safe='')}")
    assert response.status_code == status, response.text
    assert check_error(response, email)["error"]["code"] == code
    made = served.client.post(
        "/api/v1/users", json={"email": "made-to-go@example.com", "password": "a long password"}
    )
    assert made.status_code == 201, made.text
    gone = served.client.delete("/api/v1/users/made-to-go@example.com")
    assert (gone.status_code, gone.json()["deleted"]) == (200, True), gone.text
    again = served.client.delete("/api/v1/users/made-to-go@example.com")
    assert check_error(again, "again")["error"]["code"] == "account_not_found"


NUL_CASES = [
    ("POST", "/api/v1/users", {"email": "a\x00b@example.com", "password": "a long password"}, 422),
    ("DELETE", "/api/v1/users/a%00b@example.com", None, 422),
    ("POST", "/api/v1/sites", {"site_id": "fz-nul", "name": "x\x00y"}, 422),
    ("POST", "/api/v1/sites", {"site_id": "fz-nul", "domains": ["a\x00b"]}, 422),
    ("GET", "/api/v1/sites/a%00b", None, 404),
    ("POST", "/api/v1/sites/a%00b/keys", {"scope": "read"}, 404),
    ("DELETE", "/api/v1/sites/a%00b/keys/key_0123456789abcdef", None, 404),
    ("POST", "/api/v1/invitations", {"email": "a\x00b@example.com"}, 422),
    ("POST", "/api/v1/invitations", {"email": "ab@example.com", "site_id": "a\x00"}, 404),
    ("POST", "/api/v1/auth/token", {"email": "a\x00b@example.com", "password": "x"}, 401),
    ("POST", "/api/v1/auth/register", {"email": "a\x00@b.co", "password": "long enough"}, 422),
    ("PUT", "/api/v1/sites/a%00b/members/ab@example.com", {"role": "viewer"}, 404),
    ("GET", "/stats?site_id=a%00b", None, 422),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), NUL_CASES)
def test_texts_postgresql_cannot_hold_are_refused(
    production_api: Server, method: str, path: str, body: Any, status: int
) -> None:
    """A NUL character in an email, a site's texts or a path: the request's own 4xx, not
    a 500 from PostgreSQL (whose text cannot hold one)."""
    with httpx.Client(base_url=production_api.base_url, headers=production_api.headers) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    check_error(response, f"{method} {path}")
