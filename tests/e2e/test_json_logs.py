"""Every line a Tapioca process writes is a JSON log line: its own events, uvicorn's server
and access logs, the API's child processes, a worker waiting for an unreachable Redis, and
tracebacks (an application that cannot start, a worker that crashes)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from support.procs import Launcher, Proc, PsqlRunner, wait_ready
from support.servers import RedisServer, free_port

pytestmark = pytest.mark.e2e

EVENT = {"site_id": "logs", "event_type": "page_view", "path": "/"}


def log_lines(proc: Proc) -> list[dict[str, Any]]:
    """Every line of the process's stdout and stderr, each parsed as one JSON object."""
    records = []
    for path in (proc.stdout_path, proc.stderr_path):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"{path.name} line {number} is not JSON: {line!r}\n{proc.output()}")
            assert isinstance(record, dict), line
            assert isinstance(record.get("event"), str), line
            assert isinstance(record.get("level"), str), line
            assert isinstance(record.get("timestamp"), str), line
            records.append(record)
    return records


def named(records: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [record for record in records if record["event"] == event]


def wait_for_event(proc: Proc, event: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not named(log_lines(proc), event):
        assert proc.alive(), f"{proc.name} exited before logging {event}\n{proc.output()}"
        assert time.monotonic() < deadline, f"no {event} within {timeout}s\n{proc.output()}"
        time.sleep(0.1)


def test_serve_logs_its_url_requests_and_uvicorn_warnings_as_json(launcher: Launcher) -> None:
    server = launcher.serve(env={"TAPIOCA_ACCESS_LOG": "true"})
    assert server.client.post("/event", json=EVENT).status_code == 202
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"NOT HTTP\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 400 ")
    server.http.stop()

    records = log_lines(server.http)
    [serving] = named(records, "serving")
    assert serving["url"] == server.base_url == f"http://127.0.0.1:{server.port}"
    assert serving["level"] == "info"
    answered = {
        (r["method"], r["path"], r["status"], r["logger"])
        for r in named(records, "request_answered")
    }
    assert ("POST", "/event", 202, "uvicorn.access") in answered
    assert ("GET", "/ready", 200, "uvicorn.access") in answered
    [refused] = [r for r in records if r.get("logger") == "uvicorn.error"]
    assert refused["level"] == "warning"
    assert "Invalid HTTP request" in refused["event"]
    assert records[-1]["event"] == "api_stopped"


def test_a_start_that_fails_is_logged_with_its_traceback_as_json(
    launcher: Launcher, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    env = {"TAPIOCA_DATA_DIR": str(not_a_directory)}
    proc = launcher.spawn("serve", ["serve", "--port", str(free_port())], env, workdir)
    assert proc.popen.wait(timeout=60) == 3  # uvicorn's exit status of a failed start

    records = log_lines(proc)
    [failure] = [r for r in records if r["event"].startswith("Traceback (most recent call last)")]
    assert failure["logger"] == "uvicorn.error"
    assert failure["level"] == "error"
    assert "FileExistsError" in failure["event"]
    assert not named(records, "serving")


def test_production_processes_log_json_while_redis_is_away_and_when_crashing(
    launcher: Launcher, pg_dsn: str, psql: PsqlRunner, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "redis")  # its port is chosen now, the server started later
    try:
        server = launcher.production(
            pg_dsn, redis.url, env={"TAPIOCA_API_WORKERS": "2"}, wait=False
        )
        [worker] = server.workers
        wait_for_event(worker, "queue_unavailable")
        redis.start()
        wait_ready(server)
        assert server.client.post("/event", json=EVENT).status_code == 202
        deadline = time.monotonic() + 30
        while psql("SELECT count(*) FROM event WHERE site_id = 'logs'") != [["1"]]:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)

        with socket.socket() as taken:  # a worker whose metrics port is taken cannot start
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            env = {**server.env, "TAPIOCA_WORKER_METRICS_PORT": str(taken.getsockname()[1])}
            crashing = launcher.spawn("crashing", ["worker"], env, server.workdir)
            assert crashing.popen.wait(timeout=60) == 1
        assert server.http.stop() == 0
        assert worker.stop() == 0
    finally:
        redis.cleanup()

    waits = named(log_lines(worker), "queue_unavailable")
    assert waits and {(r["level"], r["error"]) for r in waits} == {("warning", "ConnectionError")}
    assert named(log_lines(worker), "batch_written")
    api = log_lines(server.http)
    assert len(named(api, "serving")) == 2  # each API process, once it listens
    assert len(named(api, "api_started")) == 2
    [crash] = named(log_lines(crashing), "crashed")
    assert crash["level"] == "critical"
    assert crash["error"] == "OSError"
    assert crash["exception"].startswith("Traceback (most recent call last)")
    assert "start_http_server" in crash["exception"]
    assert "Address already in use" in crash["exception"]
