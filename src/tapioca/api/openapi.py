"""The OpenAPI document states the rules the server applies, where OpenAPI can say them.

The ingest routes read raw bodies (ingest/asgi.py) and the report routes take loose query
strings that their own parsers check, so FastAPI's generated document knows neither; this
adds the event schema and the bounds, patterns and choices those parsers enforce. Rules
it cannot state (a time relative to now, parameters that exclude each other, a site_id
needed only on an instance with several sites) are in docs/api.md.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from tapioca.ingest.schemas import MONEY_LIMIT, MONEY_TEXT, EventIn
from tapioca.kit.timerange import DATE_PATTERN
from tapioca.reports.filters import FILTERS_PATTERN, Dimension
from tapioca.reports.web import METRICS_PATTERN

_NO_NUL = r"^[^\x00]*$"  # ingest refuses NUL characters in any text
_DAY = {"type": "string", "format": "date", "pattern": f"^{DATE_PATTERN}$"}
_REPORT_PARAMETERS: dict[str, dict[str, Any]] = {
    "date": _DAY,
    "start_date": _DAY,
    "end_date": _DAY,
    "dimension": {"type": "string", "enum": [d.value for d in Dimension]},
    "tz": {"$ref": "#/components/schemas/TimeZone"},
    "metrics": {"type": "string", "maxLength": 200, "pattern": METRICS_PATTERN},
    # 4,096 characters of up to 12 bytes each once percent-encoded keep a query within
    # what the HTTP server reads of a request's head
    "filters": {"type": "string", "maxLength": 4096, "pattern": FILTERS_PATTERN},
}
_KEPT = ("title", "description", "default")  # of FastAPI's own schema for a parameter
_BATCH_PATHS = ("/events", "/api/events")


def complete(schema: dict[str, Any], max_events: int) -> dict[str, Any]:
    """Add the event schema and the rules of the ingest and report routes to ``schema``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    event = EventIn.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(event.pop("$defs", {}))
    components["EventIn"] = event
    components["TimeZone"] = {  # read from the zone files when the document is first asked for
        "type": "string",
        "description": "an IANA time zone; empty: the site's own",
        "enum": ["", *sorted(available_timezones())],
    }
    # a report's site_id follows the rule of the events' site_id
    parameters = {**_REPORT_PARAMETERS, "site_id": event["properties"]["site_id"]}
    for model in ("EventIn", "ItemIn"):
        for name, field in components[model]["properties"].items():
            _event_field(name, field)
    for path in _BATCH_PATHS:
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        _bound_batch(body["schema"], max_events)
    for item in schema["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                rule = parameters.get(parameter["name"])
                if parameter["in"] == "query" and rule is not None:
                    own = parameter["schema"]
                    parameter["schema"] = {**rule, **{k: own[k] for k in _KEPT if k in own}}
    return schema


def _alternatives(field: dict[str, Any]) -> list[dict[str, Any]]:
    alternatives: list[dict[str, Any]] = field.get("anyOf", [field])
    return alternatives


def _event_field(name: str, field: dict[str, Any]) -> None:
    """Texts without NUL; money below 10^14 either way, as a number or as text."""
    money = name in ("revenue", "price")
    for alt in _alternatives(field):
        if alt.get("type") == "string" and "pattern" not in alt and "format" not in alt:
            alt["pattern"] = MONEY_TEXT if money else _NO_NUL
        if money and alt.get("type") == "number":
            alt["exclusiveMinimum"] = -MONEY_LIMIT
            alt["exclusiveMaximum"] = MONEY_LIMIT


def _bound_batch(body: dict[str, Any], max_events: int) -> None:
    """A batch holds 1 to ``max_events`` events; the envelope holds only ``events``."""
    for alt in body["oneOf"]:
        events = alt if alt["type"] == "array" else alt["properties"]["events"]
        events.update(minItems=1, maxItems=max_events)
        if alt["type"] == "object":
            alt["additionalProperties"] = False
