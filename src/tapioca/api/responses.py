"""A JSON response rendered with msgspec (fast, UTF-8; Decimal as a JSON number)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

_ENCODER = msgspec.json.Encoder(decimal_format="number")


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content)
