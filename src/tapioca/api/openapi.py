"""The OpenAPI document states the rules the server applies, where OpenAPI can say them.

The ingest routes are served before routing (api/ingest.py) and the report routes take
loose query strings that their own parsers check, so FastAPI's generated document knows
neither; this adds every route of every ingest protocol (ingest/protocols), the event
schema, and the bounds, patterns and choices those parsers enforce. Rules
it cannot state (a time relative to now, parameters that exclude each other, a site_id
needed only on an instance with several sites) are in docs/api.md.
"""

from __future__ import annotations

from typing import Any

from tapioca.ingest.protocols import PROTOCOLS
from tapioca.ingest.protocols.base import IngestProtocol, Route, Shape
from tapioca.ingest.schemas import MONEY_LIMIT, MONEY_TEXT, EventIn
from tapioca.kit.timerange import DATE_PATTERN, iana_zones
from tapioca.model.dimensions import Dimension
from tapioca.reports.filters import FILTERS_PATTERN
from tapioca.reports.funnel import STEPS_PATTERN, WINDOW_PATTERN
from tapioca.reports.params import METRICS_PATTERN

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
    "from_date": _DAY,  # seed 003's names
    "to_date": _DAY,
    "steps": {"type": "string", "maxLength": 4096, "pattern": STEPS_PATTERN},
    "window": {"type": "string", "pattern": WINDOW_PATTERN},
}
_KEPT = ("title", "description", "default")  # of FastAPI's own schema for a parameter
_BROWSERS = (
    "Browsers (CORS): a preflight (OPTIONS) is answered for an origin that some site accepts "
    "(one of its domains, or any origin when the site allows it), and a text/plain body is "
    "read as JSON. An event whose site does not accept the request's Origin is refused (403)."
)
_REF = "#/components/schemas/{model}"


def _operation(
    protocol: IngestProtocol, route: Route, errors: dict[str, Any], max_events: int
) -> dict[str, Any]:
    slug = route.path.strip("/").replace("/", "_")
    body = {media: dict(content) for media, content in route.body.items()}
    if route.shape is Shape.BATCH and "application/json" in body:
        body["application/json"] = {"schema": _bounded_batch(body["application/json"]["schema"],
                                                              max_events)}  # fmt: skip
    answer = {"$ref": _REF.format(model=route.answer.__name__)}
    return {
        "tags": ["ingest"],
        "summary": route.summary,
        "description": _BROWSERS,
        "operationId": f"post_{slug}_{slug}_post",
        "requestBody": {"required": True, "content": body},
        "responses": {
            "202": {
                "description": "Successful Response",
                "content": {"application/json": {"schema": answer}},
            },
            "403": {
                "description": "An event's site does not accept the request's Origin",
                "content": errors["422"]["content"],
            },
            **errors,
        },
    }


def _ingest_paths(schema: dict[str, Any], errors: dict[str, Any], max_events: int) -> None:
    """Every route of every ingest protocol, first in the document, with its answer's model."""
    components = schema["components"]["schemas"]
    paths: dict[str, Any] = {}
    for protocol in PROTOCOLS:
        for route in protocol.routes:
            paths[route.path] = {"post": _operation(protocol, route, errors, max_events)}
            components[route.answer.__name__] = route.answer.model_json_schema(ref_template=_REF)
    schema["paths"] = {**paths, **schema.get("paths", {})}


# The credentials routes take (api/access.py names them per route; docs/security.md).
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an access token (POST /api/v1/auth/token) or an API key (tpk_…)",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "basic": {"type": "http", "scheme": "basic", "description": "an API key as user name"},
}


def complete(schema: dict[str, Any], max_events: int, errors: dict[str, Any]) -> dict[str, Any]:
    """Add the ingest routes, the event schema and the rules of the ingest and report
    routes to ``schema``; ``errors``: the error answers every route may give."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    event = EventIn.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(event.pop("$defs", {}))
    components["EventIn"] = event
    components["TimeZone"] = {  # read from the zone files when the document is first asked for
        "type": "string",
        "description": "an IANA time zone; empty: the site's own",
        "enum": ["", *sorted(iana_zones())],
    }
    # a site's own time zone is one of those zones (sites/service.py), as is an order
    # source's (orders/source.py)
    for model in ("SiteFields", "SiteIn", "SourceIn"):
        if model in components:
            components[model]["properties"]["timezone"] = {
                "anyOf": [{"allOf": [{"$ref": _REF.format(model="TimeZone")}, {"minLength": 1}]},
                          {"type": "null"}],
                "title": "Timezone",
            }  # fmt: skip
    # a report's site_id follows the rule of the events' site_id
    parameters = {**_REPORT_PARAMETERS, "site_id": event["properties"]["site_id"]}
    for model in ("EventIn", "ItemIn"):
        for name, field in components[model]["properties"].items():
            _event_field(name, field)
    _ingest_paths(schema, errors, max_events)
    schema["components"]["securitySchemes"] = SECURITY_SCHEMES
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


def _bounded_batch(body: dict[str, Any], max_events: int) -> dict[str, Any]:
    """A batch holds 1 to ``max_events`` events; the envelope holds only ``events``."""
    alternatives = []
    for shape in body["oneOf"]:
        alt = {**shape}
        if alt["type"] == "array":
            alt.update(minItems=1, maxItems=max_events)
        else:
            events = {**alt["properties"]["events"], "minItems": 1, "maxItems": max_events}
            alt.update(properties={**alt["properties"], "events": events},
                       additionalProperties=False)  # fmt: skip
        alternatives.append(alt)
    return {**body, "oneOf": alternatives}
