"""The files `make bench` keeps its results in: each part under its own key, rendered as
Markdown, and nothing else written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from bench.figures import Figure, ModeResult, record, render, render_part, save

MACHINE = {"cpu": "Test CPU", "cores": "2"}
AT = datetime(2026, 12, 6, 9, 21, 30, tzinfo=UTC)


def ingest_results() -> list[ModeResult]:
    embedded, production = ModeResult("embedded"), ModeResult("production")
    for result in (embedded, production):
        result.add(
            Figure(
                "single-event POST /event",
                15_095.734,
                "req/s",
                "≥ 5,000",
                True,
                "wrk -t2 -c64 -d10s; non-2xx 0",
                pipeline=True,
            )
        )
    production.add(Figure("peak RSS of worker", 312.5, "MB", "≤ 300", False))
    return [embedded, production]


def test_a_part_renders_as_tables_with_its_time_command_and_machine() -> None:
    part = record(ingest_results(), "python -m bench.run", MACHINE, AT)
    assert render_part("ingest", part) == "\n".join(
        [
            "## Ingest, durability, lag, /stats and memory",
            "",
            "Measured 2026-12-06 09:21 UTC with `python -m bench.run`.",
            "",
            "Machine: cpu Test CPU, cores 2.",
            "",
            "### embedded",
            "",
            "| figure | value | target | met | how |",
            "|---|---|---|---|---|",
            # a target of the production pipeline is recorded without it when embedded
            "| single-event POST /event | 15,095.73 req/s |  |  | wrk -t2 -c64 -d10s; non-2xx 0 |",
            "",
            "### production",
            "",
            "| figure | value | target | met | how |",
            "|---|---|---|---|---|",
            "| single-event POST /event | 15,095.73 req/s | ≥ 5,000 | yes | wrk -t2 -c64 -d10s;"
            " non-2xx 0 |",
            "| peak RSS of worker | 312.50 MB | ≤ 300 | **no** |  |",
            "",
        ]
    )


def test_the_time_is_written_in_utc() -> None:
    berlin = AT.astimezone(timezone(timedelta(hours=1)))
    assert record([], "c", MACHINE, berlin)["measured_at"] == "2026-12-06 09:21 UTC"


def test_saving_a_part_keeps_the_others_and_renders_them_all_in_order(tmp_path: Path) -> None:
    hot = ModeResult("20,000 generated events, best of 3")
    hot.add(Figure("worker, decode + enrichment + row", 2.154, "µs/event"))
    save("ingest", record(ingest_results(), "python -m bench.run", MACHINE, AT), tmp_path)
    save("hot_paths", record([hot], "python -m bench.bench_ingest", MACHINE, AT), tmp_path)
    later = AT + timedelta(hours=1)
    save("hot_paths", record([hot], "python -m bench.bench_ingest", MACHINE, later), tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "latest.md"]
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert sorted(doc) == ["hot_paths", "ingest"]
    assert doc["ingest"]["measured_at"] == "2026-12-06 09:21 UTC"
    assert doc["hot_paths"]["measured_at"] == "2026-12-06 10:21 UTC"
    assert doc["hot_paths"]["results"] == [
        {
            "mode": "20,000 generated events, best of 3",
            "figures": [
                {
                    "name": "worker, decode + enrichment + row",
                    "value": 2.154,
                    "unit": "µs/event",
                    "target": "",
                    "ok": None,
                    "note": "",
                    "pipeline": False,
                }
            ],
        }
    ]
    page = (tmp_path / "latest.md").read_text()
    assert page == render(doc)
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Hot paths (CPU per event)",
        "## Ingest, durability, lag, /stats and memory",
    ]
    assert "| worker, decode + enrichment + row | 2.15 µs/event |  |  |  |" in page
