"""Fault tests: real `tapioca` processes on real servers, broken while events flow.

Every test drives traffic from client threads, records what happened to every event it
sent (202, another answer, or a transport error), breaks one part of the pipeline,
repairs it, and then compares what the store holds with what was acknowledged:

- every acknowledged event is stored, exactly once (no lost event, no duplicate);
- nothing is stored that was not sent, and an event that was not acknowledged is never
  required: it may be stored only when its request's outcome is unknown to the client
  (a connection dropped after the request was sent). Where every request got a definite
  answer, stored == acknowledged.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import msgspec
import orjson
import pytest
import redis

from support.answers import metric
from support.error_shape import assert_error, fields_of
from support.processes import cpu_seconds
from support.procs import BROWSER_UA, Launcher, Proc, PsqlRunner, Server, wait_ready
from support.reference import Event, from_wire
from support.reference import stats as reference_stats
from support.servers import PostgresServer, RedisServer
from tapioca.ingest.normalize import RequestContext
from tapioca.ingest.protocols.native import encode_events
from tapioca.queue.record import as_json, decode_entry, decode_one, encode, pack

pytestmark = pytest.mark.faults

STREAM = "tapioca:events"
GROUP = "tapioca-workers"
DEAD = "tapioca:events:dead"
DAY_MS = 1_741_478_400_000  # 2025-03-09T00:00:00Z, event times are in that day
SIZES = (1, 1, 4, 25)  # requests cycle through single posts and batches of these sizes
POLL_S = 0.02
WAIT_S = 60.0  # upper bound of every wait (only a failing test waits this long)


# -- traffic --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One request: its events and what the client saw."""

    ids: tuple[str, ...]
    started: float
    ended: float
    status: int | None = None
    retry_after: str | None = None
    error: str | None = None  # transport error class
    reached: bool = True  # False when the connection could not even be opened


class Traffic:
    """Client threads POSTing fresh events until stopped; every outcome is recorded."""

    def __init__(
        self,
        base_url: str,
        site: str,
        *,
        threads: int = 3,
        sizes: Sequence[int] = SIZES,
        timeout: float = 15.0,
        pause: float = 0.005,
    ) -> None:
        self.base_url = base_url
        self.pause = pause  # between two requests of a thread: steady load, not a flood
        self.site = site
        self.sizes = tuple(sizes)
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self.anomalies: list[str] = []
        self.acked_events = 0
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(k,), name=f"traffic-{k}", daemon=True)
            for k in range(threads)
        ]

    # running

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 15)
        assert not any(t.is_alive() for t in self._threads), "a traffic thread hangs"
        assert not self.anomalies, "\n".join(self.anomalies[:5])

    def event(self, number: int) -> dict[str, Any]:
        """The ``number``-th event of this traffic, as sent."""
        return {
            "site_id": self.site,
            "event_id": f"{self.site}-{number:07d}",
            "event_type": "pageview",
            "timestamp": DAY_MS + number,
            "user_id": f"u{number % 50}",
            "path": f"/p{number % 9}",
        }

    def events_of(self, ids: Iterable[str]) -> list[Event]:
        """The events with these ids, as the reference reads them (support/reference.py)."""
        now = datetime.now(UTC)  # every event has a timestamp
        return [from_wire(self.event(int(i.rsplit("-", 1)[1])), now) for i in ids]

    def _events(self, size: int) -> list[dict[str, Any]]:
        with self._lock:
            numbers = [next(self._numbers) for _ in range(size)]
        return [self.event(n) for n in numbers]

    def _run(self, k: int) -> None:
        headers = {"User-Agent": BROWSER_UA, "Content-Type": "application/json"}
        try:
            with httpx.Client(
                base_url=self.base_url, timeout=self.timeout, headers=headers
            ) as client:
                for turn in itertools.count(k):
                    if self._halt.is_set():
                        return
                    outcome = self._post(client, self._events(self.sizes[turn % len(self.sizes)]))
                    with self._lock:
                        self.outcomes.append(outcome)
                        if outcome.status == 202:
                            self.acked_events += len(outcome.ids)
                    # after a refusal the server is down or busy: do not spin
                    self._halt.wait(self.pause if outcome.status == 202 else POLL_S)
        except Exception:
            self.anomalies.append(traceback.format_exc())

    def _post(self, client: httpx.Client, events: list[dict[str, Any]]) -> Outcome:
        ids = tuple(e["event_id"] for e in events)
        single = len(events) == 1
        body = orjson.dumps(events[0] if single else events)
        started = time.monotonic()
        try:
            response = client.post("/event" if single else "/events", content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return Outcome(ids, started, time.monotonic(), error=type(exc).__name__, reached=False)
        except httpx.TransportError as exc:  # sent, answer lost: outcome unknown
            return Outcome(ids, started, time.monotonic(), error=type(exc).__name__)
        ended = time.monotonic()
        if response.status_code == 202:
            answer = response.json()
            echoed = [answer.get("event_id")] if single else answer.get("event_ids")
            if echoed != list(ids):
                self.anomalies.append(f"202 names other events: {response.text[:300]}")
        return Outcome(
            ids, started, ended, response.status_code, response.headers.get("Retry-After")
        )

    # what happened

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def acked_count(self) -> int:
        with self._lock:
            return self.acked_events

    def sent(self) -> set[str]:
        return {i for o in self.snapshot() for i in o.ids}

    def acked(self) -> set[str]:
        return {i for o in self.snapshot() if o.status == 202 for i in o.ids}

    def unknown(self) -> set[str]:
        """Events whose request reached the server but whose answer was lost."""
        return {i for o in self.snapshot() if o.error and o.reached for i in o.ids}

    def statuses(self) -> Counter[int | str]:
        return Counter(
            o.status if o.status is not None else o.error or "?" for o in self.snapshot()
        )

    def wait_acked(self, count: int, *procs: Proc, timeout: float = WAIT_S) -> None:
        """Poll until ``count`` events are acknowledged (the processes must stay up)."""
        poll_until(
            lambda: self.acked_count() >= count,
            f"{count} events acknowledged (got {self.acked_count()}, {self.statuses()})",
            procs,
            timeout,
        )
        assert not self.anomalies, "\n".join(self.anomalies[:5])

    def summary(self, stored: int) -> str:
        return (
            f"{self.site}: sent {len(self.sent())} events in {len(self.snapshot())} requests, "
            f"acknowledged {len(self.acked())}, stored {stored}; answers {dict(self.statuses())}"
        )


def poll_until(
    condition: Callable[[], bool],
    what: str,
    procs: Sequence[Proc] = (),
    timeout: float = WAIT_S,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.alive(), f"{proc.name} died while waiting for {what}\n{proc.output()}"
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(POLL_S)


def check_exactly_once(traffic: Traffic, stored: list[str], *, definite: bool) -> None:
    """Acknowledged ⊆ stored ⊆ sent, each once; ``definite``: every answer was definite."""
    print(traffic.summary(len(stored)))
    counts = Counter(stored)
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert not twice, f"{len(twice)} events are stored more than once, e.g. {twice[:5]}"
    kept, acked = set(counts), traffic.acked()
    assert acked, "nothing was acknowledged: the test proves nothing"
    lost = sorted(acked - kept)
    assert not lost, (
        f"{len(lost)} of {len(acked)} acknowledged events are not stored, e.g. {lost[:5]}\n"
        + traffic.summary(len(stored))
    )
    foreign = sorted(kept - traffic.sent())
    assert not foreign, f"stored events that were never sent: {foreign[:5]}"
    unknown = traffic.unknown()
    if definite:
        assert not unknown, f"requests with lost answers in a test that expects none: {unknown}"
    extra = sorted(kept - acked - unknown)
    assert not extra, (
        f"{len(extra)} events are stored although the client was told they were not "
        f"accepted, e.g. {extra[:5]}"
    )


# -- processes and servers --------------------------------------------------------------


def sigkill(launcher: Launcher, proc: Proc) -> None:
    """kill -9 by PID, reap it, and drop it from the launcher (nothing left to stop)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.popen.wait(timeout=10)
    proc.returncode = proc.popen.returncode
    launcher.procs.remove(proc)


def stop_gracefully(proc: Proc) -> None:
    """SIGTERM an HTTP process; it must finish its shutdown (uvicorn then re-raises SIGTERM)."""
    assert proc.stop() in (0, -signal.SIGTERM), proc.output()
    assert "api_stopped" in proc.stderr_path.read_text(), proc.output()


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


def pending_of(queue: redis.Redis, consumer: str) -> int:
    """Entries a consumer has read and not acknowledged."""
    summary: Any = queue.xpending(STREAM, GROUP)
    for row in summary.get("consumers") or []:
        name = row["name"].decode() if isinstance(row["name"], bytes) else row["name"]
        if name == consumer:
            return int(row["pending"])
    return 0


def queue_backlog(queue: redis.Redis) -> int:
    """Entries not yet acknowledged by the workers: delivered and pending, plus those never
    delivered. Redis reports the latter as the group's ``lag``, or as null when it cannot
    tell (after deletions inside the stream): then they are counted, entry by entry after
    the group's last delivered id."""
    groups: Any = queue.xinfo_groups(STREAM)
    found = [g for g in groups if g["name"] in (GROUP, GROUP.encode())]
    assert found, f"no consumer group {GROUP} on {STREAM}: {groups}"
    group = found[0]
    lag = group.get("lag")
    if lag is None:
        lag = entries_after(queue, group["last-delivered-id"])
    return int(lag) + int(group["pending"])


def entries_after(queue: redis.Redis, entry_id: bytes) -> int:
    """How many entries the stream holds after ``entry_id``, counted a page at a time."""
    count, start = 0, b"(" + entry_id
    while True:
        page: Any = queue.xrange(STREAM, min=start, max="+", count=1000)
        if not page:
            return count
        count += len(page)
        start = b"(" + page[-1][0]


def pending_ids(queue: redis.Redis, consumer: str) -> list[bytes]:
    rows: Any = queue.xpending_range(STREAM, GROUP, "-", "+", 10_000, consumername=consumer)
    return [row["message_id"] for row in rows]


def event_ids_in(queue: redis.Redis, entry_ids: Sequence[bytes]) -> set[str]:
    """The event ids carried by stream entries (one request's records each)."""
    found: set[str] = set()
    for entry_id in entry_ids:
        rows: Any = queue.xrange(STREAM, entry_id, entry_id)
        for _, fields in rows:
            found.update(record.event_id for record in decode_entry(fields[b"e"]))
    return found


def xack_ids(data: bytes) -> list[bytes]:
    """The entry ids of the XACK command in RESP bytes a client sent."""
    lines = data.split(b"\r\n")
    args: list[bytes] = []
    for line in lines[lines.index(b"XACK") + 1 :]:
        if line.startswith(b"*") or not line:
            break  # the next command
        if not line.startswith(b"$"):
            args.append(line)
    return args[2:]  # after the stream and the group


def log_count(proc: Proc, event: str) -> int:
    """How many times a process logged ``event`` (JSON lines on stderr)."""
    return proc.stderr_path.read_text(errors="replace").count(f'"event": "{event}"')


class CuttableProxy:
    """A TCP proxy in front of Redis that drops every connection when a command matches.

    While it is down it accepts and at once closes new connections, like a network blip.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.trigger: Callable[[bytes], bool] | None = None
        self.down = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if self.down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst, inspect in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, inspect), daemon=True).start()

    def _matches(self, data: bytes) -> bool:
        with self._lock:
            trigger = self.trigger
            if trigger is None:
                return False
            try:
                hit = trigger(data)
            except Exception:
                hit = False
            if hit:
                self.trigger = None
            return hit

    def _pump(self, src: socket.socket, dst: socket.socket, inspect: bool) -> None:
        try:
            while data := src.recv(65536):
                if inspect and self._matches(data):
                    self.cut()  # the command is never forwarded
                    return
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            _close(sock)

    def cut(self) -> None:
        self.down.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        _close(self._listener)
        self.cut()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxies() -> Iterator[Callable[[int], CuttableProxy]]:
    """Makes proxies to a Redis port; request it before ``launcher`` (closed after the procs)."""
    made: list[CuttableProxy] = []

    def make(upstream_port: int) -> CuttableProxy:
        made.append(CuttableProxy(upstream_port))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def spawn_worker(launcher: Launcher, server: Server, name: str, redis_url: str) -> Proc:
    """A `tapioca worker` of ``server`` that reaches Redis at ``redis_url``."""
    env = {**server.env, "TAPIOCA_REDIS_URL": redis_url}
    proc = launcher.spawn(name, ["worker", "--name", name], env, server.workdir)
    server.workers.append(proc)
    return proc


def pg_ids(psql: PsqlRunner, site: str) -> list[str]:
    return [row[0] for row in psql(f"SELECT event_id FROM event WHERE site_id = '{site}'")]


def pg_count(psql: PsqlRunner, site: str) -> int:
    return int(psql(f"SELECT count(*) FROM event WHERE site_id = '{site}'")[0][0])


def wait_stored(
    psql: PsqlRunner,
    queue: redis.Redis,
    site: str,
    expected: set[str],
    procs: Sequence[Proc] = (),
    timeout: float = WAIT_S,
) -> list[str]:
    """Poll until the queue is drained and ``expected`` is stored; return the stored ids."""
    state: dict[str, Any] = {}

    def done() -> bool:
        state["backlog"] = queue_backlog(queue)
        if state["backlog"] != 0:
            return False
        state["ids"] = pg_ids(psql, site)
        return expected <= set(state["ids"])

    try:
        poll_until(done, "the queue to drain into the store", procs, timeout)
    except AssertionError as exc:
        missing = sorted(expected - set(state.get("ids", [])))
        raise AssertionError(
            f"{exc}; backlog {state.get('backlog')}, {len(missing)} acknowledged events "
            f"not stored, e.g. {missing[:5]}"
        ) from None
    return pg_ids(psql, site)


def cluster_metric(server: Server, kind: str) -> float | None:
    response = server.client.get("/metrics")
    assert response.status_code == 200, response.text
    return metric(response.text, "tapioca_cluster_events", kind=kind)


# -- a. a worker killed mid-batch --------------------------------------------------------


def test_worker_killed_between_commit_and_ack_is_replaced(
    redis_server: RedisServer,
    pg_dsn: str,
    redis_url: str,
    psql: PsqlRunner,
    proxies: Callable[[int], CuttableProxy],
    launcher: Launcher,
) -> None:
    """kill -9 of a worker whose batch is committed and not yet acknowledged."""
    site = "fault-a"
    queue = redis_client(redis_url)
    proxy = proxies(redis_server.port)  # the victim reaches Redis through it
    env = {"TAPIOCA_CLAIM_IDLE_MS": "1000"}
    server = launcher.production(pg_dsn, redis_url, env=env, workers=0)
    victim = spawn_worker(launcher, server, "worker1", proxy.url)
    traffic = Traffic(server.base_url, site).start()
    try:
        traffic.wait_acked(400, server.http, victim)
        poll_until(lambda: pg_count(psql, site) > 0, "the first batch written", [victim])

        cut: list[bytes] = []

        def kill_before_ack(data: bytes) -> bool:
            if b"\r\nXACK\r\n" not in data:
                return False
            os.kill(victim.pid, signal.SIGKILL)  # the XACK is never forwarded
            cut.extend(xack_ids(data))
            return True

        proxy.trigger = kill_before_ack
        poll_until(proxy.down.is_set, "the worker's next acknowledgement", [server.http])
        sigkill(launcher, victim)  # reap it
        orphaned = pending_ids(queue, victim.name)
        # The batch whose acknowledgement was cut is committed; the worker may also have
        # held a next batch it had not written yet (batches overlap).
        assert cut and set(cut) <= set(orphaned), (cut, orphaned)
        held = event_ids_in(queue, cut)
        assert held, "the killed worker held no entry"
        assert held <= set(pg_ids(psql, site)), "the killed worker's batch was not committed"

        # no worker: ingest keeps acknowledging, the dead worker's entries stay pending
        traffic.wait_acked(traffic.acked_count() + 400, server.http)
        assert pending_ids(queue, victim.name) == orphaned

        successor = launcher.start_worker(server)
        assert successor.name != victim.name
        poll_until(
            lambda: not pending_ids(queue, victim.name),
            "the new worker to claim the dead worker's entries",
            [successor],
        )
        traffic.wait_acked(traffic.acked_count() + 400, server.http, successor)
    finally:
        traffic.stop()

    assert set(traffic.statuses()) == {202}, traffic.statuses()
    stored = wait_stored(psql, queue, site, traffic.acked(), [successor])
    check_exactly_once(traffic, stored, definite=True)
    assert successor.alive(), successor.output()
    # the replayed batch counts as duplicates: the killed worker never reported its rows
    written = cluster_metric(server, "written") or 0
    duplicates = cluster_metric(server, "duplicates") or 0
    assert written <= len(stored) <= written + duplicates, (written, duplicates, len(stored))
    assert duplicates >= len(held)


# -- b. PostgreSQL stopped (immediate) during sustained ingest ----------------------------

OUTAGE_S = 4.0


def test_postgres_immediate_stop_during_ingest(
    own_pg: PostgresServer, own_pg_dsn: str, redis_url: str, launcher: Launcher
) -> None:
    site = "fault-b"
    psql = PsqlRunner(own_pg, own_pg_dsn.rsplit("/", 1)[1])
    server = launcher.production(own_pg_dsn, redis_url, env={"TAPIOCA_PG_ACQUIRE_TIMEOUT_S": "2"})
    queue = redis_client(redis_url)
    worker = server.workers[0]
    traffic = Traffic(server.base_url, site).start()
    try:
        traffic.wait_acked(300, server.http, worker)
        poll_until(lambda: pg_count(psql, site) > 0, "the first batch written", [worker])

        own_pg.stop(mode="immediate")
        down_at = time.monotonic()
        cpu_before = cpu_seconds(worker.pid)
        # Redis holds the events: ingest keeps answering 202 through the outage
        traffic.wait_acked(traffic.acked_count() + 500, server.http, worker)
        while time.monotonic() - down_at < OUTAGE_S:  # a real outage lasts a while
            assert worker.alive(), f"the worker died without its store\n{worker.output()}"
            time.sleep(0.1)
        cpu = cpu_seconds(worker.pid) - cpu_before
        wall = time.monotonic() - down_at
        assert worker.alive(), worker.output()
        print(f"worker CPU over the outage: {cpu:.2f}s in {wall:.2f}s")
        assert cpu < 0.2 * wall, f"the worker spins: {cpu:.2f}s CPU in {wall:.2f}s of outage"
        # every request acknowledged since the store went down is one entry that cannot
        # be written, so none of them is acknowledged in Redis
        in_outage = [o for o in traffic.snapshot() if o.status == 202 and o.started >= down_at]
        backlog = queue_backlog(queue)
        print(f"queue backlog {backlog} entries; {len(in_outage)} requests acknowledged since")
        assert backlog >= len(in_outage) > 0, (backlog, len(in_outage), traffic.statuses())
        acked_in_outage = traffic.acked_count()

        own_pg.start()
        traffic.wait_acked(acked_in_outage + 300, server.http, worker)
    finally:
        traffic.stop()

    assert set(traffic.statuses()) == {202}, traffic.statuses()
    stored = wait_stored(psql, queue, site, traffic.acked(), [worker])
    check_exactly_once(traffic, stored, definite=True)
    assert worker.alive(), worker.output()
    assert "store_unavailable" in worker.stderr_path.read_text(), worker.output()
    # A batch whose commit reached the disk as the server stopped, before its answer, is
    # written again and its rows then count as duplicates: each stored event is counted
    # once, as written or as a duplicate (this worker acknowledges every entry once).
    written = cluster_metric(server, "written") or 0
    duplicates = cluster_metric(server, "duplicates") or 0
    assert written + duplicates == len(stored), (written, duplicates, len(stored))
    assert written <= len(stored)


# -- c. Redis killed, then restarted on the same port --------------------------------------


def test_redis_killed_then_restarted(
    own_redis: RedisServer, pg_dsn: str, psql: PsqlRunner, launcher: Launcher
) -> None:
    site = "fault-c"
    # a small claim delay: see test_worker_resumes_promptly_after_a_redis_blip
    env = {"TAPIOCA_RETRY_AFTER_SECONDS": "1", "TAPIOCA_CLAIM_IDLE_MS": "1000"}
    server = launcher.production(pg_dsn, own_redis.url, env=env)
    worker = server.workers[0]
    traffic = Traffic(server.base_url, site).start()
    try:
        traffic.wait_acked(300, server.http, worker)

        noticed = log_count(worker, "queue_unavailable")
        own_redis.kill()
        down_from = time.monotonic()
        poll_until(
            lambda: (
                sum(o.started >= down_from for o in traffic.snapshot()) >= 20
                and log_count(worker, "queue_unavailable") > noticed
            ),
            "answers while Redis is down, and the worker to notice",
            [server.http, worker],
        )
        ready = server.client.get("/ready")
        body = assert_error(ready, 503)
        assert "queue" in fields_of(body), body
        down_until = time.monotonic()
        own_redis.start()  # same port, same AOF

        acked_at_restart = traffic.acked_count()
        traffic.wait_acked(acked_at_restart + 400, server.http, worker)  # the same api process
        # ready again once the API's pooled connections to the old Redis are replaced (each
        # is retried with a backoff): within seconds, not at the first probe necessarily
        poll_until(
            lambda: server.client.get("/ready").status_code == 200,
            "ready again", [server.http], timeout=10.0,
        )  # fmt: skip
    finally:
        traffic.stop()

    during = [o for o in traffic.snapshot() if o.started >= down_from and o.ended <= down_until]
    assert len(during) >= 10, "too few requests were answered during the outage"
    wrong = [o for o in during if o.status != 503 or o.retry_after != "1"]
    assert not wrong, f"{len(wrong)} answers while Redis was down were not 503: {wrong[:3]}"
    assert set(traffic.statuses()) == {202, 503}, traffic.statuses()
    queue = redis_client(own_redis.url)
    stored = wait_stored(psql, queue, site, traffic.acked(), [server.http, worker])
    check_exactly_once(traffic, stored, definite=True)
    assert worker.alive(), worker.output()


FRESH_S = 5.0  # "an accepted event shows in reports within seconds"
# the worker's follow-up read while it holds entries: XREADGROUP ... BLOCK 1 (worker/loop.py)
READ_WITH_ENTRIES_IN_HAND = b"$5\r\nBLOCK\r\n$1\r\n1\r\n"


def test_worker_resumes_promptly_after_a_redis_blip(
    own_redis: RedisServer,
    pg_dsn: str,
    psql: PsqlRunner,
    proxies: Callable[[int], CuttableProxy],
    launcher: Launcher,
) -> None:
    """The worker loses its Redis connection while it collects a batch (default settings)."""
    site = "fault-c2"
    queue = redis_client(own_redis.url)
    proxy = proxies(own_redis.port)  # the worker reaches Redis through it
    server = launcher.production(pg_dsn, own_redis.url, workers=0)
    worker = spawn_worker(launcher, server, "worker1", proxy.url)
    traffic = Traffic(server.base_url, site).start()
    try:
        traffic.wait_acked(300, server.http, worker)
        poll_until(lambda: pg_count(psql, site) > 0, "the first batch written", [worker])
        held: set[bytes] = set()

        def in_hand(data: bytes) -> bool:
            if READ_WITH_ENTRIES_IN_HAND not in data:
                return False
            held.update(pending_ids(queue, worker.name))
            return bool(held)

        noticed = log_count(worker, "queue_unavailable")
        proxy.trigger = in_hand
        poll_until(proxy.down.is_set, "the worker to read with entries in hand", [worker])
        poll_until(
            lambda: log_count(worker, "queue_unavailable") > noticed,
            "the worker to notice the outage",
            [worker],
        )
        proxy.down.clear()  # Redis reachable again
        poll_until(
            lambda: not held & set(pending_ids(queue, worker.name)),
            f"the {len(held)} entries the worker held to be written once Redis answered",
            [server.http, worker],
            timeout=FRESH_S,
        )
    finally:
        traffic.stop()
    stored = wait_stored(psql, queue, site, traffic.acked(), [server.http, worker])
    check_exactly_once(traffic, stored, definite=True)


# -- d. poison entries ---------------------------------------------------------------------


def _records(site: str, count: int) -> list[bytes]:
    """Queue records exactly as ingest builds them (encode_events)."""
    now = datetime.now(UTC)
    ctx = RequestContext(now, "127.0.0.1", BROWSER_UA, b"salt", timedelta(minutes=5), 65536)
    raw = [
        {
            "site_id": site,
            "event_id": f"{site}-p{i}",
            "event_type": "pageview",
            "timestamp": DAY_MS + i,
            "user_id": f"u{i}",
            "path": f"/x{i}",
        }
        for i in range(count)
    ]
    return [payload for _, payload in encode_events(raw, ctx, indexed=True)]


def test_poison_entries_are_dead_lettered(
    pg_dsn: str, redis_url: str, psql: PsqlRunner, launcher: Launcher
) -> None:
    site, poison_site = "fault-d", "fault-d-poison"
    server = launcher.production(pg_dsn, redis_url, env={"TAPIOCA_MAX_DELIVERIES": "3"})
    queue = redis_client(redis_url)
    worker = server.workers[0]

    records = _records(poison_site, 5)
    # PostgreSQL refuses NUL in text
    records[2] = encode(msgspec.structs.replace(decode_one(records[2]), path="/bad\x00path"))
    good_ids = {f"{poison_site}-p{i}" for i in (0, 1, 3, 4)}

    traffic = Traffic(server.base_url, site).start()
    try:
        traffic.wait_acked(200, server.http, worker)
        poison_entry = queue.xadd(STREAM, {b"e": pack(records), b"n": len(records)})
        garbage_entry = queue.xadd(STREAM, {b"e": b'{"site_id": "fault-d", not json', b"n": 1})
        traffic.wait_acked(traffic.acked_count() + 400, server.http, worker)  # later entries
    finally:
        traffic.stop()

    assert set(traffic.statuses()) == {202}, traffic.statuses()
    stored = wait_stored(psql, queue, site, traffic.acked(), [worker])
    check_exactly_once(traffic, stored, definite=True)
    assert set(pg_ids(psql, poison_site)) == good_ids  # the poison entry's other events

    entries: Any = queue.xrange(DEAD)
    dead = {fields[b"entry_id"]: fields for _, fields in entries}
    assert set(dead) == {poison_entry, garbage_entry}, dead
    poison = dead[poison_entry]
    assert poison[b"e"] == as_json(decode_one(records[2])), poison  # dead letters are JSON
    assert poison[b"reason"].strip(), poison
    assert b"undecodable" in dead[garbage_entry][b"reason"], dead[garbage_entry]
    assert dead[garbage_entry][b"e"].startswith(b'{"site_id"'), dead[garbage_entry]

    assert worker.alive(), worker.output()
    assert cluster_metric(server, "dead_lettered") == 2
    assert cluster_metric(server, "written") == len(stored) + len(good_ids)


# -- e. the api restarted under load --------------------------------------------------------


def test_api_restarted_under_load(
    pg_dsn: str, redis_url: str, psql: PsqlRunner, launcher: Launcher
) -> None:
    site = "fault-e"
    server = launcher.production(pg_dsn, redis_url)
    queue = redis_client(redis_url)
    worker = server.workers[0]
    traffic = Traffic(server.base_url, site, threads=4).start()
    try:
        for generation, how in enumerate(("SIGTERM", "SIGKILL"), start=2):
            traffic.wait_acked(traffic.acked_count() + 400, server.http, worker)
            old = server.http
            if how == "SIGTERM":
                stop_gracefully(old)
            else:
                sigkill(launcher, old)
            args = ["api", "--port", str(server.port)]
            server.http = launcher.spawn(f"api{generation}", args, server.env, server.workdir)
            wait_ready(server, timeout=WAIT_S)
        traffic.wait_acked(traffic.acked_count() + 400, server.http, worker)
    finally:
        traffic.stop()

    statuses = traffic.statuses()
    assert {s for s in statuses if isinstance(s, int)} <= {202, 503}, statuses  # never a 500
    assert any(isinstance(s, str) for s in statuses), f"no client noticed the restarts: {statuses}"
    stored = wait_stored(psql, queue, site, traffic.acked(), [server.http, worker])
    check_exactly_once(traffic, stored, definite=False)
    assert worker.alive(), worker.output()


# -- f. embedded: kill -9 right after a run of 202s -----------------------------------------


def _stored_in_duckdb(data_dir: Path, site: str) -> list[str]:
    """Event ids in the DuckDB file (opened by this test, after the process is gone)."""
    with duckdb.connect(str(data_dir / "tapioca.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT event_id FROM event WHERE site_id = ?", [site]).fetchall()
    return [row[0] for row in rows]


def test_embedded_kill9_keeps_every_acknowledged_event(launcher: Launcher, tmp_path: Path) -> None:
    site = "fault-f"
    data_dir = tmp_path / "data"
    # `tapioca migrate` first: the migrations are checkpointed, so this test is about the
    # group commit (kill -9 with migrations still in the WAL: the test after this one)
    migrated = launcher.run(["migrate"], env={"TAPIOCA_DATA_DIR": str(data_dir)})
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    server = launcher.serve(data_dir=data_dir)
    traffic = Traffic(server.base_url, site, threads=8, sizes=(1, 1, 1, 3, 20), pause=0).start()
    try:
        traffic.wait_acked(2000, server.http)
        sigkill(launcher, server.http)  # while requests are in flight
    finally:
        traffic.stop()
    statuses = traffic.statuses()  # 202, or a connection error once the process is gone
    assert {s for s in statuses if isinstance(s, int)} == {202}, statuses

    restarted = launcher.serve(data_dir=data_dir)  # same DuckDB file: WAL replayed
    stats = restarted.client.get("/stats", params={"site_id": site})
    assert stats.status_code == 200, stats.text
    stop_gracefully(restarted.http)

    stored = _stored_in_duckdb(data_dir, site)
    check_exactly_once(traffic, stored, definite=False)
    assert stats.json() == reference_stats(traffic.events_of(stored), site, None, "UTC")


def test_embedded_kill9_right_after_migrations(launcher: Launcher, tmp_path: Path) -> None:
    """A fresh data dir (or an upgrade): `serve` migrates, acknowledges, and is killed."""
    site = "fault-f2"
    data_dir = tmp_path / "data"
    server = launcher.serve(data_dir=data_dir)
    traffic = Traffic(server.base_url, site, threads=4).start()
    try:
        traffic.wait_acked(300, server.http)
    finally:
        traffic.stop()
    assert set(traffic.statuses()) == {202}, traffic.statuses()
    sigkill(launcher, server.http)

    restarted = launcher.serve(data_dir=data_dir)
    stats = restarted.client.get("/stats", params={"site_id": site})
    assert stats.status_code == 200, stats.text
    stop_gracefully(restarted.http)
    stored = _stored_in_duckdb(data_dir, site)
    check_exactly_once(traffic, stored, definite=True)
    assert stats.json() == reference_stats(traffic.events_of(stored), site, None, "UTC")
