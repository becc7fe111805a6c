"""`tapioca api` with several processes, and the worker's CPU priority, for real."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from support.processes import child_pids
from support.procs import Launcher, PsqlRunner

pytestmark = pytest.mark.e2e


def established_on(port: int) -> dict[str, int]:
    """Socket inode -> 1 for every established TCP connection whose local port is ``port``."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes[fields[9]] = 1
    return inodes


def connections_by_process(pids: list[int], port: int) -> Counter[int]:
    """How many of the established connections to ``port`` each process holds."""
    wanted = established_on(port)
    held: Counter[int] = Counter()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in wanted:
                held[pid] += 1
    return held


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_api_processes_share_connections_and_stop_together(
    launcher: Launcher, pg_dsn: str, redis_url: str, psql: PsqlRunner
) -> None:
    server = launcher.production(pg_dsn, redis_url, env={"TAPIOCA_API_WORKERS": "2"})
    api_pids = [p for p in child_pids(server.http.pid) if b"resource_tracker" not in
                Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
    assert len(api_pids) == 2, api_pids
    deadline = time.monotonic() + 30
    while True:  # a process answers /ready once its own socket listens: wait for both
        clients = [httpx.Client(base_url=server.base_url, timeout=10) for _ in range(40)]
        for n, client in enumerate(clients):
            body = {"site_id": "procs", "event_id": f"e{n}", "event_type": "page_view"}
            assert client.post("/event", json=body).status_code == 202
        held = connections_by_process(api_pids, server.port)
        if len(held) == 2 or time.monotonic() > deadline:
            break
        for client in clients:
            client.close()
    # the kernel spreads connections over the processes' own sockets
    assert sorted(held) == sorted(api_pids) and sum(held.values()) == 40, held
    for client in clients:
        client.close()

    deadline = time.monotonic() + 30
    while psql("SELECT count(*) FROM event WHERE site_id = 'procs'") != [["40"]]:
        assert time.monotonic() < deadline, "events not stored"
        time.sleep(0.2)
    # the worker runs at a lower CPU priority than the API
    assert nice_of(server.workers[0].pid) == min(19, nice_of(server.http.pid) + 10)

    os.kill(server.http.pid, signal.SIGTERM)
    assert server.http.popen.wait(30) == 0, server.output()
    for pid in api_pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
