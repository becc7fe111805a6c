"""/openapi.json states the rules the ingest and report parsers apply (api/openapi.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import pytest

from tapioca.api.app import create_app
from tapioca.config import Settings
from tapioca.errors import TapiocaError
from tapioca.ingest.schemas import MONEY_TEXT, parse_money
from tapioca.model.dimensions import Dimension
from tapioca.reports.filters import FILTERS_PATTERN, parse_filters
from tapioca.reports.params import METRICS_PATTERN, parse_metrics


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("openapi")
    settings = Settings(data_dir=Path(data), max_events_per_request=250)
    return create_app(settings).openapi()


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_no_constraint_goes_by_pydantic_names(document: dict[str, Any]) -> None:
    """A bound written ge/le (pydantic's names) is no bound to an OpenAPI client."""
    leaked = [node for node in _walk(document) if {"ge", "le", "gt", "lt"} & node.keys()]
    assert leaked == []


def test_batches_hold_one_to_the_configured_number_of_events(document: dict[str, Any]) -> None:
    for path in ("/events", "/api/events"):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        array, envelope = body["schema"]["oneOf"]
        assert (array["minItems"], array["maxItems"]) == (1, 250)
        events = envelope["properties"]["events"]
        assert (events["minItems"], events["maxItems"]) == (1, 250)
        assert envelope["additionalProperties"] is False


def test_report_parameters(document: dict[str, Any]) -> None:
    params = {
        p["name"]: p["schema"]
        for p in document["paths"]["/api/v1/stats/breakdown"]["get"]["parameters"]
    }
    assert params["dimension"]["enum"] == [d.value for d in Dimension]
    assert params["date"]["format"] == "date"
    assert params["site_id"]["pattern"] == "^[A-Za-z0-9_.:-]+$"
    assert params["tz"]["$ref"] == "#/components/schemas/TimeZone"
    zones = document["components"]["schemas"]["TimeZone"]["enum"]
    assert set(zones) == {"", *available_timezones()} - {"localtime"}  # this machine's zone


def test_event_fields(document: dict[str, Any]) -> None:
    event = document["components"]["schemas"]["EventIn"]["properties"]
    width = event["screen_width"]["anyOf"][0]
    assert (width["minimum"], width["maximum"]) == (0, 100_000)
    number, text, _ = event["revenue"]["anyOf"]
    assert (number["exclusiveMinimum"], number["exclusiveMaximum"]) == (-(10**14), 10**14)
    assert text["pattern"] == MONEY_TEXT
    assert event["url"]["anyOf"][0]["pattern"] == r"^[^\x00]*$"


@pytest.mark.parametrize(
    "text", ["19.90", " 5.5 ", "+5", ".5", "5.", "-0", "1e3", "1_000", "", "x", "123456789012345"]
)
def test_money_text_pattern_is_what_the_server_takes(text: str) -> None:
    matches = re.search(MONEY_TEXT, text) is not None
    try:
        parse_money(text)
        accepted = True
    except ValueError:
        accepted = False
    assert matches == accepted


def _accepts(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except TapiocaError:
        return False
    return True


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pageviews",
        "pageviews,visitors",
        " pageviews , visitors ",
        "pageviews,",
        ",pageviews",
        "pageviews,,visitors",
        "pageviews,\tvisitors",
        "nope",
        "   ",
        "pageviewsvisitors",
    ],
)
def test_metrics_pattern_is_what_the_server_takes(text: str) -> None:
    matches = re.search(METRICS_PATTERN, text) is not None
    assert matches == _accepts(lambda t: parse_metrics(t, ("pageviews",)), text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "path==/a",
        "path==/a;channel==Direct",
        "path==a==b",
        "path==",
        "path==/a;",
        ";path==/a",
        " path==/a",
        "path=/a",
        "landing_page==/",
        "colour==red",
        ";".join(["path==/x"] * 20),
        ";".join(["path==/x"] * 21),
    ],
)
def test_filters_pattern_is_what_the_server_takes(text: str) -> None:
    matches = re.search(FILTERS_PATTERN, text) is not None
    assert matches == _accepts(parse_filters, text)
