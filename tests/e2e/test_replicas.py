"""Reads under replica and primary outages, with real streaming replication and processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support.procs import Launcher, Server
from support.replication import Replicated, replicated_pair

pytestmark = pytest.mark.e2e

CHECK_SECONDS = 2
STATS = "/stats?site_id=repl&date=2025-11-14"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Replicated]:
    with replicated_pair(tmp_path / "replication") as replicated:
        yield replicated


class ReportLoad:
    """GET /stats at a steady rate from a thread; records every outcome."""

    def __init__(self, base_url: str, headers: dict[str, str], rate: float = 50.0) -> None:
        self.base_url = base_url
        self.headers = headers  # the credential reports need
        self.interval = 1 / rate
        self.outcomes: list[tuple[float, int | str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=10) as client:
            tick = time.monotonic()
            while not self._stop.is_set():
                try:
                    response = client.get(STATS)
                    self.outcomes.append((time.monotonic(), response.status_code, response.json()))
                except httpx.HTTPError as exc:
                    self.outcomes.append((time.monotonic(), type(exc).__name__, None))
                tick += self.interval
                time.sleep(max(0.0, tick - time.monotonic()))

    def __enter__(self) -> ReportLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def since(self, moment: float) -> list[tuple[float, int | str, Any]]:
        return [o for o in self.outcomes if o[0] >= moment]


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"site_id": "repl", "event_id": f"{prefix}-{i}", "event_type": "page_view",
         "user_id": f"u{i % 17}", "path": f"/p/{i % 5}",
         "timestamp": f"2025-11-14T{10 + i % 10:02d}:00:00Z"}
        for i in range(count)
    ]  # fmt: skip


def stored(pair: Replicated) -> int:
    return int(pair.primary.psql("SELECT count(*) FROM event", pair.dbname).strip())


def wait_for(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def health(server: Server) -> dict[str, Any]:
    result: dict[str, Any] = server.client.get("/health").json()
    return result


def test_reads_survive_replica_and_primary_outages(
    launcher: Launcher, pair: Replicated, redis_url: str
) -> None:
    server = launcher.production(
        pair.primary_dsn,
        redis_url,
        env={
            "TAPIOCA_REPLICA_URLS": pair.replica_dsn,
            "TAPIOCA_REPLICA_CHECK_SECONDS": str(CHECK_SECONDS),
            "TAPIOCA_REPLICA_MAX_LAG_SECONDS": "3",
            "TAPIOCA_PG_ACQUIRE_TIMEOUT_S": "2",
        },
    )
    first = events("a", 300)
    assert server.client.post("/events", content=orjson.dumps(first)).status_code == 202
    wait_for(lambda: stored(pair) == 300, 30, "the first events")
    pair.wait_replayed()
    wait_for(lambda: health(server)["reading_from"] == "replica", 10, "reads on the replica")
    expected = server.client.get(STATS).json()
    assert (expected["total_views"], expected["unique_users"]) == (300, 17)

    with ReportLoad(server.base_url, server.headers) as load:
        time.sleep(2)
        # 1. the replica dies: not one report fails, reads move to the primary
        died = time.monotonic()
        pair.replica.stop(mode="immediate")
        time.sleep(4)
        assert health(server)["reading_from"] == "primary"
        assert health(server)["replicas"][0]["state"] == "down"

        # 2. it comes back: reads return within the check interval + 5 s
        pair.replica.start()
        back = wait_for(lambda: health(server)["reading_from"] == "replica", CHECK_SECONDS + 5,
                        "reads back on the replica")  # fmt: skip
        assert back <= CHECK_SECONDS + 5

        # 3. the primary dies: reports answer from the replica, ingest keeps accepting
        pair.primary.stop(mode="immediate")
        time.sleep(3)
        second = events("b", 120)
        for chunk in (second[:60], second[60:]):
            response = server.client.post("/events", content=orjson.dumps(chunk))
            assert response.status_code == 202, response.text
        assert health(server)["reading_from"] == "replica"
        time.sleep(2)
        ended = time.monotonic()
    outcomes = load.since(died)
    assert len(outcomes) >= 50 * (ended - died) * 0.6, len(outcomes)
    failures = [o for o in outcomes if o[1] != 200 or o[2] != expected]
    assert failures == []

    # the primary returns: every event accepted meanwhile is stored, once
    pair.primary.start()
    wait_for(lambda: stored(pair) == 420, 60, "the events accepted while the primary was down")
    ids = pair.primary.psql("SELECT count(DISTINCT event_id) FROM event", pair.dbname).strip()
    assert ids == "420"
    metrics = server.client.get("/metrics").text
    failovers = [ln for ln in metrics.splitlines() if ln.startswith("tapioca_read_failovers_total")]
    assert failovers and float(failovers[0].split()[-1]) >= 1


def test_a_lagging_replica_is_skipped(launcher: Launcher, pair: Replicated, redis_url: str) -> None:
    server = launcher.production(
        pair.primary_dsn,
        redis_url,
        env={
            "TAPIOCA_REPLICA_URLS": pair.replica_dsn,
            "TAPIOCA_REPLICA_CHECK_SECONDS": "1",
            "TAPIOCA_REPLICA_MAX_LAG_SECONDS": "2",
        },
    )
    wait_for(lambda: health(server)["reading_from"] == "replica", 10, "reads on the replica")
    pair.replica.psql("SELECT pg_wal_replay_pause()")
    try:
        n = 0

        def lagging() -> bool:
            nonlocal n
            n += 1  # keep the primary writing so there is WAL to replay
            server.client.post("/events", content=orjson.dumps(events(f"l{n}", 5)))
            return bool(health(server)["replicas"][0]["state"] == "lagging")

        wait_for(lagging, 30, "the replica to be marked lagging")
        state = health(server)
        assert state["reading_from"] == "primary"
        assert state["replicas"][0]["lag_seconds"] > 2
        response = server.client.get(STATS)
        assert response.status_code == 200
    finally:
        pair.replica.psql("SELECT pg_wal_replay_resume()")
    wait_for(lambda: health(server)["reading_from"] == "replica", 15, "reads back after catch-up")
