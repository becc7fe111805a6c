"""End to end, embedded mode: `tapioca serve` on a DuckDB file, and `tapioca import`.

In this mode a 202 means the events are committed, so every /stats check runs right
after the sends, without waiting.
"""

from __future__ import annotations

import csv
import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from support import validation_checks
from support.answers import compare_stats, metric
from support.procs import Launcher, Server
from support.reference import Event, from_wire, stored
from support.traffic import OFFSETS, SITES, START, make_events, rfc3339, send_dataset

pytestmark = pytest.mark.e2e


def _report(mismatches: list[str], asked: int) -> str:
    return f"{len(mismatches)} of {asked} /stats answers differ:\n" + "\n".join(mismatches[:8])


def test_stats_match_the_reference(embedded: Server) -> None:
    sender = send_dataset(embedded.client)
    ref = sender.reference()
    assert len(ref) > 1900
    assert len(sender.sent) - len(ref) > 300  # the resends

    mismatches, asked = compare_stats(embedded.client, ref)
    assert not mismatches, _report(mismatches, asked)

    text = embedded.client.get("/metrics").text
    assert metric(text, "tapioca_events_accepted_total") == len(sender.sent)
    assert metric(text, "tapioca_events_written_total") == len(ref)
    assert metric(text, "tapioca_events_duplicate_total") == len(sender.sent) - len(ref)
    health = embedded.client.get("/health").json()
    assert health["status"] == "ok"
    assert health["queue_lag"] == 0
    assert 0 <= health["derive"]["lag"] <= len(ref)
    deadline = time.monotonic() + 30  # the derive loop catches up by itself
    while health["derive"] != {"lag": 0, "days_pending": False} and time.monotonic() < deadline:
        time.sleep(0.2)
        health = embedded.client.get("/health").json()
    assert health["derive"] == {"lag": 0, "days_pending": False}


@pytest.fixture(scope="module")
def limited(module_launcher: Launcher) -> Server:
    """`tapioca serve` with small ingest limits, shared by the validation checks."""
    return module_launcher.serve(env=validation_checks.LIMITS)


@pytest.mark.parametrize("check", validation_checks.params())
def test_validation(limited: Server, check: Callable[[Server], None]) -> None:
    check(limited)


# -- tapioca import -------------------------------------------------------------------

CSV_SITE = "shop-csv"
CSV_COLUMNS = ["event_id", "occurred_at", "user_id", "event_type", "properties_json"]


def _csv_rows(count: int, seed: int) -> list[dict[str, str]]:
    """Seed-003 style rows: uuid ids, times with offsets, numeric user ids, JSON text."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        moment = START + timedelta(milliseconds=rng.randrange(3 * 86_400_000))
        properties = rng.choice(['{"plan": "pro", "amount": 12.5}', '{"button": "buy"}', ""])
        rows.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "occurred_at": rfc3339(moment, rng.choice(OFFSETS)),
                "user_id": str(rng.randrange(1, 120)),
                "event_type": rng.choice(["page_view", "pageview", "click", "purchase", "login"]),
                "properties_json": properties,
            }
        )
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _import(launcher: Launcher, data_dir: Path, file: Path, *args: str) -> tuple[int, str, str]:
    result = launcher.run(
        ["import", str(file), *args], env={"TAPIOCA_DATA_DIR": str(data_dir)}, cwd=file.parent
    )
    return result.returncode, result.stdout, result.stderr


def _new_count(stdout: str) -> int | None:
    match = re.search(r"(\d+) new", stdout)
    return int(match.group(1)) if match else None


def test_import_then_serve(launcher: Launcher, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rows = _csv_rows(400, seed=3)
    good = _write_csv(tmp_path / "events.csv", rows)
    # NDJSON: generated events with every alias and time format (and no event_id on some)
    events = make_events(seed=11, count=600)
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    imported_at = datetime.now(UTC)

    for attempt in range(2):  # the second import of the same file stores nothing new
        code, out, err = _import(launcher, data_dir, good, "--site-id", CSV_SITE)
        assert code == 0, out + err
        assert _new_count(out) == (len(rows) if attempt == 0 else 0), out
    code, out, err = _import(launcher, data_dir, ndjson)
    assert code == 0, out + err
    assert _new_count(out) == len(events), out

    # a file with one bad line among new rows: exit 1, nothing imported
    bad_rows = _csv_rows(30, seed=4)
    bad_rows[15]["occurred_at"] = "the day after tomorrow"
    bad = _write_csv(tmp_path / "bad.csv", bad_rows)
    code, out, err = _import(launcher, data_dir, bad, "--site-id", "never-imported")
    assert code == 1, out + err
    assert "17" in err, err  # names the line (the header is line 1)

    # the site's own time zone is used when a report names none (no API sets it yet)
    with duckdb.connect(str(data_dir / "tapioca.duckdb")) as con:
        con.execute("UPDATE site SET timezone = 'America/New_York' WHERE id = 'blog-b'")

    server = launcher.serve(data_dir=data_dir)
    csv_ref = stored(from_wire(r, imported_at, CSV_SITE) for r in _clean(rows))
    ndjson_ref = stored(from_wire(e, imported_at) for e in events)
    ref: list[Event] = csv_ref + ndjson_ref
    mismatches, asked = compare_stats(
        server.client, ref, sites=(CSV_SITE, *SITES), site_zone={"blog-b": "America/New_York"}
    )
    assert not mismatches, _report(mismatches, asked)
    response = server.client.get("/stats", params={"site_id": "never-imported"})
    assert response.status_code == 404, response.text


def _clean(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """CSV cells as the reference reads them: empty cells are absent."""
    return [{k: v for k, v in row.items() if v != ""} for row in rows]
