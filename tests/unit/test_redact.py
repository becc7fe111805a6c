"""Credentials in log lines and error answers are shown by their kind only."""

from __future__ import annotations

import pytest

from tapioca.errors import ErrorDetail, error_body
from tapioca.kit.redact import redact, redact_target

KEY = "tpk_4en4-h6nPXufc_m3N9Rw1OTd3ZNyeLZxDjvA5CHDqds"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY2NfMSJ9.c2lnbmF0dXJl"
UNSIGNED = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"No key '{KEY}' on this site.", "No key 'tpk_…' on this site."),
        (f"/api/v1/sites/{KEY}", "/api/v1/sites/tpk_…"),
        (f"Bearer {JWT}", "Bearer eyJ…"),
        (f"[{UNSIGNED}]", "[eyJ…]"),
        ("tpr_" + "x" * 43 + " tpi_" + "y" * 43, "tpr_… tpi_…"),
        # not credentials: short, or inside another word
        ("site tpk_short, http_version, stpk_aaaaaaaaaaaaaaaaaaaa", None),
        ("/api/v1/stats/overview?site_id=shop&date=2025-11-14", None),
    ],
)
def test_credentials_are_shown_by_their_prefix(text: str, shown: str | None) -> None:
    assert redact(text) == (text if shown is None else shown)


def test_query_parameters_named_like_secrets_lose_their_values() -> None:
    target = "/x?site_id=shop&api_key=abc&password=hunter22&Token=1&date=2025-11-14#f"
    assert redact_target(target) == "/x?site_id=shop&api_key=…&password=…&Token=…&date=2025-11-14#f"
    assert redact_target(f"/setup?token={'tps_' + 'z' * 43}") == "/setup?token=…"
    assert redact_target(f"/api/v1/sites/{KEY}") == "/api/v1/sites/tpk_…"


def test_error_answers_do_not_echo_credentials() -> None:
    body = error_body("r", "site_not_found", f"Site '{KEY}'.", [ErrorDetail(KEY, f"'{JWT}'")])
    assert body["error"]["message"] == "Site 'tpk_…'."
    assert body["error"]["details"] == [{"field": "tpk_…", "message": "'eyJ…'"}]
