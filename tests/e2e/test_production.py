"""End to end, production mode: `tapioca api` → Redis stream → `tapioca worker` → PostgreSQL.

A 202 here means the events are durable in Redis; the tests wait until the worker has
drained the queue before comparing what the reports say.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support import validation_checks
from support.answers import compare_stats, get_stats, metric, wait_until_drained
from support.error_shape import assert_error
from support.procs import BROWSER_UA, Launcher, PsqlRunner, Server
from support.reference import from_wire
from support.reference import stats as reference_stats
from support.servers import RedisServer
from support.traffic import send_dataset

pytestmark = pytest.mark.e2e


def _report(mismatches: list[str], asked: int) -> str:
    return f"{len(mismatches)} of {asked} /stats answers differ:\n" + "\n".join(mismatches[:8])


def test_stats_match_the_reference(
    launcher: Launcher, pg_dsn: str, redis_url: str, psql: PsqlRunner
) -> None:
    production = launcher.production(pg_dsn, redis_url, workers=2)  # competing consumers
    sender = send_dataset(production.client)
    ref = sender.reference()
    wait_until_drained(production.client)

    mismatches, asked = compare_stats(production.client, ref)
    assert not mismatches, _report(mismatches, asked)

    # the site's own time zone applies when a report names none (no API sets it yet)
    psql("UPDATE site SET timezone = 'America/New_York' WHERE id = 'blog-b'")
    mismatches, asked = compare_stats(
        production.client, ref, site_zone={"blog-b": "America/New_York"}, zones=("UTC",)
    )
    assert not mismatches, _report(mismatches, asked)

    stored = psql("SELECT count(*), count(DISTINCT (site_id, event_id)) FROM event")
    assert stored == [[str(len(ref)), str(len(ref))]]
    text = production.client.get("/metrics").text
    assert metric(text, "tapioca_events_accepted_total") == len(sender.sent)
    assert metric(text, "tapioca_cluster_events", kind="written") == len(ref)
    assert metric(text, "tapioca_cluster_events", kind="duplicates") == len(sender.sent) - len(ref)
    health = production.client.get("/health").json()
    assert (health["status"], health["queue_lag"]) == ("ok", 0), health
    assert health["reading_from"] in ("primary", "replica"), health


@pytest.fixture(scope="module")
def limited(module_launcher: Launcher, module_pg_dsn: str, module_redis_url: str) -> Server:
    """api + worker with small ingest limits, shared by the validation checks."""
    return module_launcher.production(module_pg_dsn, module_redis_url, validation_checks.LIMITS)


@pytest.mark.parametrize("check", validation_checks.params())
def test_validation(limited: Server, check: Callable[[Server], None]) -> None:
    check(limited)


@pytest.mark.parametrize(
    "env",
    [{}, {"TAPIOCA_REDIS_URL": "redis://127.0.0.1:9/0"}],
    ids=["no-env", "redis-only"],
)
@pytest.mark.parametrize("command", ["api", "worker"])
def test_production_commands_need_a_database(
    launcher: Launcher, command: str, env: dict[str, str]
) -> None:
    result = launcher.run([command, *(["--port", "9"] if command == "api" else [])], env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "TAPIOCA_DATABASE_URL" in output, output
    assert "tapioca serve" in output, output


# -- a worker stopped while events keep coming -----------------------------------------

LOAD_SITE = "load"
BATCH = 25


def load_event(k: int) -> dict[str, Any]:
    """The ``k``-th event the poster sends (its id is ``L`` and ``k`` in six digits)."""
    return {
        "site_id": LOAD_SITE,
        "event_id": f"L{k:06d}",
        "event_type": "pageview",
        "timestamp": 1_741_500_000_000 + k * 1000,
        "user_id": f"u{k % 97}",
        "path": f"/p{k % 7}",
    }


class Poster(threading.Thread):
    """Posts batches until stopped; every fourth batch repeats the previous one."""

    def __init__(self, base_url: str) -> None:
        super().__init__(name="poster", daemon=True)
        self.base_url = base_url
        self.acknowledged: set[str] = set()
        self.requests = 0
        self.events_sent = 0
        self.failures: list[str] = []
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def _batch(self, n: int) -> list[dict[str, Any]]:
        return [load_event(k) for k in range(n * BATCH, (n + 1) * BATCH)]

    def run(self) -> None:
        headers = {"User-Agent": BROWSER_UA}
        with httpx.Client(base_url=self.base_url, timeout=10.0, headers=headers) as client:
            n = 0
            while not self.halt.is_set():
                batch = self._batch(n - 1 if n % 4 == 3 else n)
                try:
                    response = client.post("/events", content=orjson.dumps(batch))
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.requests += 1
                self.events_sent += len(batch)
                if response.status_code != 202:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    with self.lock:
                        self.acknowledged.update(e["event_id"] for e in batch)
                n += 1


def _wait_count(poster: Poster, at_least: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while poster.count() < at_least:
        assert poster.is_alive() and not poster.failures, poster.failures[:3]
        assert time.monotonic() < deadline, f"only {poster.count()} events acknowledged"
        time.sleep(0.02)


def test_worker_stopped_while_posting(
    launcher: Launcher, pg_dsn: str, redis_url: str, psql: PsqlRunner
) -> None:
    server = launcher.production(pg_dsn, redis_url, env={"TAPIOCA_CLAIM_IDLE_MS": "5000"})
    poster = Poster(server.base_url)
    poster.start()
    try:
        _wait_count(poster, 600)
        deadline = time.monotonic() + 30  # the worker is at work (it has written events)
        while not int(psql(f"SELECT count(*) FROM event WHERE site_id = '{LOAD_SITE}'")[0][0]):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        first = server.workers[0]
        assert first.stop() == 0, first.output()
        stopped_at = poster.count()
        _wait_count(poster, stopped_at + 600)  # no worker: the api still answers 202
        health = server.client.get("/health").json()
        assert health["queue_lag"] > 0, health
        launcher.start_worker(server)
        _wait_count(poster, poster.count() + 600)
    finally:
        poster.halt.set()
        poster.join(timeout=20)
    assert not poster.failures, poster.failures[:5]
    acknowledged = poster.acknowledged
    assert poster.events_sent > len(acknowledged)  # some batches were sent twice

    wait_until_drained(server.client, sites=(LOAD_SITE,))
    stats = get_stats(server.client, LOAD_SITE, limit=100)
    # the only site of the instance: site_id may be left out
    alone = server.client.get("/stats", params={"limit": 100})
    assert alone.status_code == 200, alone.text
    assert alone.json() == stats
    sent = [from_wire(load_event(int(i[1:])), datetime.now(UTC)) for i in acknowledged]
    assert stats == reference_stats(sent, LOAD_SITE, None, "UTC", 100)
    assert stats["total_views"] == len(acknowledged)
    rows = psql(f"SELECT event_id FROM event WHERE site_id = '{LOAD_SITE}'")
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids)) == len(acknowledged)
    assert set(ids) == acknowledged
    text = server.client.get("/metrics").text
    assert metric(text, "tapioca_cluster_events", kind="written") == len(acknowledged)
    assert metric(text, "tapioca_events_accepted_total") == poster.events_sent


def test_no_202_when_redis_does_not_persist(
    launcher: Launcher, pg_dsn: str, tmp_path: Path
) -> None:
    """Redis with appendonly off: the api must not acknowledge events it cannot keep."""
    redis = RedisServer(tmp_path / "redis-no-aof", appendonly=False)
    redis.start()
    try:
        server = launcher.production(pg_dsn, redis.url, workers=0, wait=False)
        event = {"site_id": "aof", "event_type": "page_view", "user_id": "u1", "path": "/"}
        deadline = time.monotonic() + 30
        while server.http.alive() and time.monotonic() < deadline:
            try:
                if server.client.get("/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        if server.http.alive():  # up, but not ready and not accepting
            ready = server.client.get("/ready")
            assert_error(ready, 503)
            assert [d["field"] for d in ready.json()["error"]["details"]] == ["queue"], ready.text
            response = server.client.post("/event", content=orjson.dumps(event))
            assert_error(response, 503)
            assert response.headers.get("Retry-After"), dict(response.headers)
        else:  # or it refused to start at all
            assert server.http.stop() != 0, server.output()
            assert "appendonly" in server.output().lower(), server.output()

        allowed = launcher.production(
            pg_dsn, redis.url, env={"TAPIOCA_REDIS_REQUIRE_AOF": "false"}, workers=1
        )
        response = allowed.client.post("/event", content=orjson.dumps(event))
        assert response.status_code == 202, response.text
        wait_until_drained(allowed.client, sites=("aof",))
        assert get_stats(allowed.client, "aof")["total_views"] == 1
    finally:
        for proc in launcher.procs:
            proc.stop()
        redis.cleanup()
