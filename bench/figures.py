"""The figures `make bench` measures, and the files that keep them.

Each part of `make bench` (hot paths, ingest, reports, e-commerce, freshness, end to end
beside seed 003) keeps its figures, with the time, the command and the machine, under its
own key of bench/results/latest.json; bench/results/latest.md is rendered again from that
file after every part. Nothing here edits the documentation: docs/benchmarks.md is written
by hand from these results.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# The parts of `make bench`, in the order it runs them and latest.md shows them.
PARTS = {
    "hot_paths": "Hot paths (CPU per event)",
    "ingest": "Ingest, durability, lag, /stats and memory",
    "reports": "Reports on a 10M-event, 90-day site",
    "commerce": "E-commerce reports on a BobaShop-sized shop (1M sessions, 90 days)",
    "freshness": "Freshness: from the last 202 to every report exact",
    "e2e_ab": "End to end beside seed 003: from the first POST",
}


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""
    pipeline: bool = False  # a target of the production pipeline (api + worker + stores)


@dataclass
class ModeResult:
    mode: str
    figures: list[Figure] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        if figure.pipeline and self.mode != "production":
            figure = replace(figure, target="", ok=None)  # recorded for comparison only
        self.figures.append(figure)
        mark = "" if figure.ok is None else (" ok" if figure.ok else " MISSED")
        print(f"[{self.mode}] {figure.name}: {figure.value:,.2f} {figure.unit}{mark}", flush=True)


def machine() -> dict[str, str]:
    """The machine and the versions of what the figures depend on."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {}
    for name, cmd in {
        "postgres": ["psql", "--version"],
        "redis": ["redis-server", "--version"],
        "wrk": ["wrk", "-v"],
    }.items():
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            versions[name] = (out.stdout or out.stderr).splitlines()[0][:80]
        except OSError:
            versions[name] = "missing"
    import duckdb

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        **versions,
    }


def record(
    results: list[ModeResult], command: str, info: dict[str, str], measured_at: datetime
) -> dict[str, Any]:
    """One part's results as latest.json keeps them."""
    return {
        "measured_at": f"{measured_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "command": command,
        "machine": info,
        "results": [asdict(result) for result in results],
    }


def render_part(name: str, part: dict[str, Any]) -> str:
    """One part as Markdown: when, with what command, on what machine, then a table of
    figures per mode."""
    lines = [
        f"## {PARTS.get(name, name)}",
        "",
        f"Measured {part['measured_at']} with `{part['command']}`.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in part["machine"].items()) + ".",
        "",
    ]
    for result in part["results"]:
        lines += [
            f"### {result['mode']}",
            "",
            "| figure | value | target | met | how |",
            "|---|---|---|---|---|",
        ]
        for f in result["figures"]:
            met = "" if f["ok"] is None else ("yes" if f["ok"] else "**no**")
            value = f"{f['value']:,.2f} {f['unit']}"
            lines.append(f"| {f['name']} | {value} | {f['target']} | {met} | {f['note']} |")
        lines.append("")
    return "\n".join(lines)


def render(doc: dict[str, Any]) -> str:
    """Every part of latest.json, in the order of PARTS (others after them)."""
    names = [name for name in PARTS if name in doc] + sorted(set(doc) - set(PARTS))
    head = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/figures.py); each part shows when it was measured.",
        "",
    ]
    return "\n".join(head + [render_part(name, doc[name]) for name in names])


def save(name: str, part: dict[str, Any], directory: Path = RESULTS) -> None:
    """Keep ``part`` under ``name`` in latest.json (the other parts stay as they are),
    and render latest.md again."""
    directory.mkdir(parents=True, exist_ok=True)
    latest = directory / "latest.json"
    doc: dict[str, Any] = json.loads(latest.read_text()) if latest.exists() else {}
    doc[name] = part
    latest.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    (directory / "latest.md").write_text(render(doc))


def finish(name: str, results: list[ModeResult], command: str, *, keep: bool = True) -> None:
    """Print a part's figures as Markdown; with ``keep``, save them in bench/results."""
    part = record(results, command, machine(), datetime.now(UTC))
    print(render_part(name, part), flush=True)
    if keep:
        save(name, part)
        print(f"saved in {RESULTS / 'latest.json'} and latest.md", flush=True)
