"""The CPU budget of bench/e2e_ab.py's production run: where the CPU of 100k events goes,
from the first POST until the derive job is idle (docs/benchmarks.md, "CPU budget of
100k events end to end").

One production run of bench/e2e_ab.py (the same events, client, poller and servers: its
``run_tapioca`` with a ``Watch``), and meanwhile:

- CPU seconds (utime + stime from /proc/PID/stat, at the start, every ``--every``
  seconds, and once the derive job is idle) of the API's supervisor and each API process,
  the worker, PostgreSQL (the postmaster, its live processes, and those that ended: the
  postmaster's cutime + cstime), redis-server, this bench process (the client: the POSTs,
  the poller of the five reports, the /health polls) and the profilers; split at the
  run's moments (last 202, queue drained, every report exact, derive idle);
- the derive job's position (derive_state, read every ``--every`` seconds): when each run
  that did work began and committed;
- ``--spy``: py-spy (``record --format raw --full-filenames --gil``) attached to each API
  process and to the worker: collapsed stacks of the samples in which a thread holds the
  GIL, for the functions that take the Python CPU;
- ``--pg-log``: every statement's duration in PostgreSQL's JSON log
  (``log_min_duration_statement = 0``) and pg_stat_statements: which statements take
  PostgreSQL's time, which process sent them (each backend's client, found by its socket),
  and each derive run's statements, matched to the step builders of derive/; with
  ``--plans`` also the plans of the statements of 250 ms or more (auto_explain).

Each of them costs CPU of its own (py-spy pauses each process 100 times a second, the
statement log writes every statement, auto_explain times every plan node): they are off
by default, so that a plain run gives the budget as it is, and another run with them the
detail. Everything is kept in ``--out`` (raw stacks, the JSON log, ``run.json``), and
the report is printed and written to ``--out``/report.md; ``--report-only`` renders it
again from what a run kept; ``--summary DIR...`` prints the CPU per process of several
kept runs side by side with their median.

    python -m bench.e2e_profile --out DIR [--spy] [--pg-log [--plans]] [--rate 100]
        [--events 100000] [--batch 1000] [--concurrency 4] [--days 90]
        [--api-workers 2] [--poll-pause 0.05] [--every 0.25] [--report-only]
    python -m bench.e2e_profile --summary DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import functools
import itertools
import json
import linecache
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.e2e_ab import REPORTS, Polls, Run, bodies, run_tapioca
from bench.procs import ROOT, Proc
from support.processes import child_pids
from support.servers import PostgresServer, RedisServer
from tapioca.derive import commerce, commerce_rollups, product, rollups, sessions
from tapioca.derive.days import day_steps
from tapioca.derive.runner import Step, Transform
from tapioca.model.derived import WEB_JOB

PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
TICK = os.sysconf("SC_CLK_TCK")
PG_LOG_SETTINGS = [
    "logging_collector = on",
    "log_destination = 'jsonlog'",
    "log_min_duration_statement = 0",
    "log_rotation_size = 0",
    "log_autovacuum_min_duration = 0",
    "log_checkpoints = on",
    "shared_preload_libraries = 'pg_stat_statements,auto_explain'",
    "pg_stat_statements.max = 10000",
]
# --plans: the plan, with its rows and times, of every statement of 250 ms or more (in
# plans.txt); it times every statement's plan nodes, which slows them
PLAN_SETTINGS = ["auto_explain.log_min_duration = '250ms'", "auto_explain.log_analyze = on"]


# -- CPU from /proc ---------------------------------------------------------------------
def stat(pid: int) -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of its ended and waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def own(pid: int) -> float:
    try:
        return stat(pid)[0]
    except OSError:  # ended
        return 0.0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def tree_cpu(pid: int) -> tuple[float, dict[int, float]]:
    """A server's CPU: its own, its ended children's, and each live child's (by pid)."""
    try:
        mine, ended = stat(pid)
    except OSError:
        return 0.0, {}
    return mine + ended, {child: own(child) for child in child_pids(pid)}


class Tracked:
    """The processes of a run, by name, and their CPU seconds at a moment."""

    def __init__(self, procs: list[Proc], pg: PostgresServer, redis: RedisServer) -> None:
        api, worker = procs
        self.api = api.pid
        children = child_pids(api.pid)
        self.api_children = [p for p in children if "spawn_main" in cmdline(p)]
        self.others = [p for p in children if p not in self.api_children]
        self.worker = worker.pid
        pid_file = (pg.data_dir / "postmaster.pid").read_text().split()
        self.postmaster = int(pid_file[0])
        self.redis = redis.pid
        self.client = os.getpid()
        self.spies: list[subprocess.Popen[bytes]] = []

    def names(self) -> dict[int, str]:
        """The Tapioca processes and the client, by pid (the clients of PostgreSQL)."""
        named = {self.api: "api supervisor", self.worker: "worker", self.client: "client"}
        for n, pid in enumerate(self.api_children, start=1):
            named[pid] = f"api process {n}"
        return named

    def snapshot(self) -> dict[str, float]:
        """CPU seconds so far of each: PostgreSQL and Redis with their children."""
        out = {name: own(pid) for pid, name in self.names().items()}
        out["api helpers"] = sum(own(pid) for pid in self.others)
        pg_self, pg_children = tree_cpu(self.postmaster)
        out["postgres"] = pg_self + sum(pg_children.values())
        redis_self, redis_children = tree_cpu(self.redis)
        out["redis-server"] = redis_self + sum(redis_children.values())
        out["py-spy"] = sum(own(spy.pid) for spy in self.spies)
        return out

    def pg_processes(self) -> dict[int, tuple[str, float]]:
        """Each live PostgreSQL process: its title and its CPU seconds so far."""
        _, children = tree_cpu(self.postmaster)
        return {pid: (cmdline(pid), cpu) for pid, cpu in children.items()}


# -- which process holds the other end of a backend's connection ------------------------
_CLIENT_PORT = re.compile(r"127\.0\.0\.1\((\d+)\)")


def socket_owners(pids: Sequence[int]) -> dict[int, int]:
    """Local TCP port → pid, for the sockets of ``pids``."""
    inode_pid: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inode_pid[target[8:-1]] = pid
        except OSError:
            continue
    owners = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        port = int(parts[1].split(":")[1], 16)
        if parts[9] in inode_pid:
            owners[port] = inode_pid[parts[9]]
    return owners


def backend_clients(tracked: Tracked) -> dict[int, str]:
    """PostgreSQL backend pid → the name of the process it serves."""
    owners = socket_owners(list(tracked.names()))
    names = tracked.names()
    out = {}
    for pid, (title, _) in tracked.pg_processes().items():
        if match := _CLIENT_PORT.search(title):
            owner = owners.get(int(match.group(1)))
            out[pid] = names.get(owner, "other") if owner else "other"
    return out


# -- the watch ---------------------------------------------------------------------------
def spy_on(pid: int, stacks: Path, rate: int) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` until SIGINT: collapsed stacks of the samples in which a
    thread holds the GIL (the Python CPU: a thread waiting in epoll or on a lock does
    not; this kernel's idle detection alone kept such samples)."""
    command = [str(PY_SPY), "record", "-p", str(pid), "-o", str(stacks), "--format", "raw",
               "--full-filenames", "--gil", "-r", str(rate)]  # fmt: skip
    log = stacks.with_suffix(".py-spy.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=log)


_POSITION = (
    "SELECT last_seq, extract(epoch FROM updated_at)::float8 FROM derive_state WHERE name = $1"
)


class Profiler:
    """bench.e2e_ab.Watch: CPU before, during and after, py-spy, PostgreSQL's log."""

    def __init__(
        self, out: Path, spy: bool, pg_log: bool, rate: int, every: float, plans: bool = False
    ) -> None:
        self.out = out
        self.spy = spy
        self.pg_log = pg_log
        self.rate = rate
        self.every = every
        self.pg_settings = [*PG_LOG_SETTINGS, *(PLAN_SETTINGS if plans else [])] if pg_log else []
        self.kept: dict[str, Any] = {}
        self.tracked: Tracked | None = None
        self.pg: PostgresServer | None = None
        self.timeline: list[tuple[float, dict[str, float]]] = []
        self.sampling: asyncio.Task[None] | None = None
        self.pg_before: dict[int, tuple[str, float]] = {}
        self.clients: dict[int, str] = {}
        self.state: asyncpg.Connection | None = None  # reads derive_state while sampling
        self.positions: list[tuple[float, int, float]] = []  # (seen, last_seq, updated_at)

    async def begin(self, procs: list[Proc], pg: PostgresServer, redis: RedisServer) -> None:
        self.pg = pg
        self.tracked = tracked = Tracked(procs, pg, redis)
        if self.pg_log:
            connection = await asyncpg.connect(pg.dsn("bench"))
            try:
                await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                await connection.execute("SELECT pg_stat_statements_reset()")
            finally:
                await connection.close()
        if self.spy:
            for pid, name in tracked.names().items():
                if name.startswith("api process") or name == "worker":
                    stacks = self.out / f"{name.replace(' ', '-')}.txt"
                    tracked.spies.append(spy_on(pid, stacks, self.rate))
            await asyncio.sleep(1.0)  # attached
        self.clients = backend_clients(tracked)
        self.pg_before = tracked.pg_processes()
        self.kept["pids"] = {str(pid): name for pid, name in tracked.names().items()}
        self.kept["begin_wall"] = time.time()
        self.state = await asyncpg.connect(pg.dsn("bench"))
        self.timeline.append((time.monotonic(), tracked.snapshot()))
        self.sampling = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        """CPU so far, and the derive job's position (each change is a run committed:
        updated_at is the start of its transaction), every ``every`` seconds."""
        assert self.tracked is not None and self.state is not None
        while True:
            await asyncio.sleep(self.every)
            self.timeline.append((time.monotonic(), self.tracked.snapshot()))
            await self._position()

    async def _position(self) -> None:
        assert self.state is not None
        for seq, updated in await self.state.fetch(_POSITION, WEB_JOB):
            if not self.positions or self.positions[-1][1:] != (seq, updated):
                self.positions.append((time.monotonic(), seq, updated))

    async def end(self, started: float, polls: Polls) -> None:
        tracked, pg = self.tracked, self.pg
        assert tracked is not None and pg is not None and self.sampling is not None
        assert self.state is not None
        self.sampling.cancel()  # and wait for it: it may be reading the position
        with contextlib.suppress(asyncio.CancelledError):
            await self.sampling
        self.timeline.append((time.monotonic(), tracked.snapshot()))
        await self._position()  # the last run, committed since the last sample
        await self.state.close()
        now_wall, now = time.time(), time.monotonic()
        self.kept["started_wall"] = wall = now_wall - (now - started)
        self.kept["timeline"] = [(at - started, cpu) for at, cpu in self.timeline]
        self.kept["positions"] = [
            (seen - started, seq, updated - wall) for seen, seq, updated in self.positions
        ]
        self.kept["answers"] = [(at - started, report) for at, report, _ in polls.answers]
        self.clients.update(backend_clients(tracked))
        after = tracked.pg_processes()
        self.kept["pg_processes"] = [
            {
                "pid": pid,
                "title": title,
                "client": self.clients.get(pid, ""),
                "cpu_s": cpu - (self.pg_before[pid][1] if pid in self.pg_before else 0.0),
                "new": pid not in self.pg_before,
            }
            for pid, (title, cpu) in after.items()
        ]
        for spy in tracked.spies:
            spy.send_signal(signal.SIGINT)
        for spy in tracked.spies:
            try:
                spy.wait(60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        if self.pg_log:
            connection = await asyncpg.connect(pg.dsn("bench"))
            try:
                rows = await connection.fetch(
                    "SELECT s.query, s.calls, s.total_exec_time, s.total_plan_time, s.rows, "
                    "d.datname FROM pg_stat_statements s "
                    "LEFT JOIN pg_database d ON d.oid = s.dbid "
                    "ORDER BY s.total_exec_time DESC"
                )
            finally:
                await connection.close()
            self.kept["pg_stat_statements"] = [dict(row) for row in rows]
            for path in sorted((pg.data_dir / "log").glob("*.json")):
                shutil.copy(path, self.out / f"postgres-{path.name}")


# -- report -----------------------------------------------------------------------------
def share_table(cpu: dict[str, float], wall: float) -> list[str]:
    total = sum(cpu.values())
    lines = ["| process | CPU s | share | cores busy over the run |", "|---|---:|---:|---:|"]
    for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {seconds:.2f} | {seconds / total:.1%} | {seconds / wall:.2f} |")
    lines.append(f"| **total** | **{total:.2f}** | 100% | {total / wall:.2f} of 2 |")
    return lines


def at(timeline: list[tuple[float, dict[str, float]]], moment: float) -> dict[str, float]:
    """The CPU so far at ``moment``: between the samples around it, in proportion."""
    for (t0, c0), (t1, c1) in itertools.pairwise(timeline):
        if t0 <= moment <= t1:
            part = (moment - t0) / (t1 - t0) if t1 > t0 else 1.0
            return {name: c0[name] + part * (c1[name] - c0[name]) for name in c0}
    return timeline[0][1] if moment < timeline[0][0] else timeline[-1][1]


def phase_table(kept: dict[str, Any], groups: dict[str, list[str]]) -> list[str]:
    """CPU seconds per process group between the run's moments."""
    run = kept["run"]
    timeline = [(float(t), cpu) for t, cpu in kept["timeline"]]
    moments = [
        ("first POST", 0.0),
        ("last 202", run["accepted_s"]),
        ("queue drained", run["drained_s"]),
        ("every report exact", run["exact_s"]),
        ("derive idle", run["derived_s"]),
    ]
    moments.sort(key=lambda m: m[1])
    head = ["from → to", "s", *groups, "total", "cores busy"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    moments[0] = ("first POST", timeline[0][0])  # the watch began just before it
    for (a, t0), (b, t1) in itertools.pairwise(moments):
        c0, c1 = at(timeline, t0), at(timeline, t1)
        sums = [sum(c1[n] - c0[n] for n in names) for names in groups.values()]
        total = sum(sums)
        span = max(t1 - t0, 1e-9)
        cells = [
            f"{a} → {b}",
            f"{t1 - t0:.1f}",
            *(f"{s:.2f}" for s in sums),
            f"{total:.2f}",
            f"{total / span:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# py-spy frames: "function (/path/file.py:line)"
_FRAME = re.compile(r"^(.*) \((.*?)(?::(\d+))?\)$")


def short(path: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


@functools.cache
def _functions(path: str) -> list[tuple[int, int, str]]:
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return []
    return [
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def def_line(path: str, line: int, name: str) -> int:
    """The line where the function holding ``line`` of ``path`` begins (``line`` when the
    source cannot be read)."""
    name = name.rsplit(".", 1)[-1]
    inner = [(lo, hi) for lo, hi, n in _functions(path) if lo <= line <= hi and n == name]
    return max(inner)[0] if inner else line


Stacks = list[tuple[list[tuple[str, str, int]], int]]


def read_stacks(path: Path) -> Stacks:
    out: Stacks = []
    for raw in path.read_text().splitlines():
        stack, _, count = raw.rpartition(" ")
        frames = []
        for frame in stack.split(";"):
            if match := _FRAME.match(frame):
                name, file, line = match.group(1), match.group(2), int(match.group(3) or 0)
                frames.append((name, file, line))
            else:
                frames.append((frame, "", 0))
        out.append((frames, int(count)))
    return out


# The activity of a stack. A stack inside derive/ or reports/ is that derive step or a
# report; else the innermost Tapioca frame that is not a shared helper (storage/, kit/,
# model/, logging) says what it does; the entry points (cli/, api/processes.py,
# worker/main.py) are in every stack and say nothing.
DERIVE = [
    ("days.py", "derive: daily rollups (derive/days.py, kit/sketch.py)"),
    ("commerce", "derive: commerce (derive/commerce*.py)"),
    ("product.py", "derive: product (derive/product.py)"),
    ("sessions.py", "derive: sessions (derive/sessions.py)"),
    ("rollups.py", "derive: hourly rollups (derive/rollups.py)"),
    ("runner.py", "derive: runner, statements (derive/runner.py, jobs.py)"),
]
MODULES = [
    ("api/ingest.py", "ingest: HTTP handler, body, validation (api/ingest.py, ingest/)"),
    ("ingest/", "ingest: HTTP handler, body, validation (api/ingest.py, ingest/)"),
    ("queue/redis_stream.py", "queue: Redis stream (queue/redis_stream.py)"),
    ("queue/record.py", "queue records: encode / decode (queue/record.py)"),
    ("worker/transform.py", "worker: enrich/transform (worker/transform.py, enrich/)"),
    ("enrich/", "worker: enrich/transform (worker/transform.py, enrich/)"),
    ("worker/loop.py", "worker: batches, acks (worker/loop.py)"),
    ("worker/writer.py", "worker: batches, acks (worker/loop.py)"),
    ("sites/", "sites, spellings (sites/)"),
    ("api/health", "api: /health"),
    ("auth/", "api: auth (auth/)"),
    ("api/", "api: routes, middleware (api/)"),
]
_ENTRY = ("tapioca/cli/", "tapioca/api/processes.py", "tapioca/worker/main.py")
_HELPERS = ("tapioca/storage/", "tapioca/kit/", "tapioca/model/", "tapioca/logging.py")


def activity(frames: list[tuple[str, str, int]]) -> str:
    files = [file for _, file, _ in frames]
    if derive := [f for f in files if "tapioca/derive/" in f]:
        for marker, label in DERIVE:
            if any(marker in f for f in derive if not f.endswith(("runner.py", "jobs.py"))):
                return label
        return DERIVE[-1][1]
    if any("write_events" in name for name, _, _ in frames):
        return "worker: event writes (storage write_events: COPY)"
    if any("tapioca/reports/" in f for f in files):
        return "report queries (reports/)"
    own = [f for f in files if "tapioca/" in f and not f.split("/src/")[-1].startswith(_ENTRY)]
    for file in reversed(own):
        if not any(h in file for h in _HELPERS):
            for marker, label in MODULES:
                if f"tapioca/{marker}" in file:
                    return label
            return short(file)
    if own:
        return "storage: " + short(own[-1]) if "storage/" in own[-1] else short(own[-1])
    return "event loop, HTTP server (no Tapioca frame)"


# The library a stack ends in: its leaf frame's package.
LIBRARIES = [
    ("asyncpg", "/asyncpg/"),
    ("redis", "/redis/"),
    ("orjson / json", "/json/"),
    ("pydantic", "/pydantic"),
    ("numpy", "/numpy/"),
    ("uvicorn / starlette / fastapi", "/uvicorn/"),
    ("uvicorn / starlette / fastapi", "/starlette/"),
    ("uvicorn / starlette / fastapi", "/fastapi/"),
    ("structlog", "/structlog/"),
    ("asyncio", "/asyncio/"),
    ("tapioca", "tapioca/"),
]


def library(frames: list[tuple[str, str, int]]) -> str:
    name, file, _ = frames[-1]
    if "orjson" in name or ("json" in name.lower() and "tapioca" not in file):
        return "orjson / json"
    for label, marker in LIBRARIES:
        if marker in file:
            return label
    return "stdlib, other" if file else "native"


# Frames every request or run passes through: not listed among the top functions.
_PLUMBING = (
    "/multiprocessing/",
    "/asyncio/",
    "/uvicorn/",
    "/starlette/",
    "/fastapi/",
    "/typer/",
    "/click/",
    "/bin/tapioca",
    "/concurrent/futures/",
    "threading.py",
    "/contextlib.py",
    "tapioca/cli/",
    "tapioca/api/processes.py",
    "tapioca/worker/main.py",
    "tapioca/api/errors.py",
    "tapioca/api/middleware",
)


def spy_report(path: Path, rate: int, top: int = 15) -> list[str]:
    stacks = read_stacks(path)
    total = sum(count for _, count in stacks)
    if not total:
        return ["(no samples)"]
    seconds = 1 / rate
    inclusive: dict[tuple[str, str, int], int] = defaultdict(int)
    itself: dict[tuple[str, str, int], int] = defaultdict(int)
    lines_hot: dict[tuple[str, str, int], int] = defaultdict(int)
    by_activity: dict[str, int] = defaultdict(int)
    by_library: dict[str, int] = defaultdict(int)
    for frames, count in stacks:
        seen = set()
        for name, file, line in frames:
            if "await self.app(" in linecache.getline(file, line):
                continue  # an ASGI middleware passing the request on
            key = (name, file, def_line(file, line, name))
            if key not in seen:
                seen.add(key)
                inclusive[key] += count
        name, file, line = frames[-1]
        itself[(name, file, def_line(file, line, name))] += count
        lines_hot[frames[-1]] += count
        by_activity[activity(frames)] += count
        by_library[library(frames)] += count
    out = [
        f"{total:,} samples at {rate}/s: {total * seconds:.1f} s of CPU in Python threads "
        "(idle left out).",
        "",
        "| activity | s | share |",
        "|---|---:|---:|",
    ]
    for label, count in sorted(by_activity.items(), key=lambda kv: -kv[1]):
        out.append(f"| {label} | {count * seconds:.2f} | {count / total:.1%} |")
    out += ["", "| ends in (leaf frame's package) | s | share |", "|---|---:|---:|"]
    for label, count in sorted(by_library.items(), key=lambda kv: -kv[1]):
        out.append(f"| {label} | {count * seconds:.2f} | {count / total:.1%} |")
    out += [
        "",
        "| function (own + children) | file:line | s | share | own s |",
        "|---|---|---:|---:|---:|",
    ]
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    shown = 0
    for (name, file, line), count in ranked:
        if not file or any(p in file for p in _PLUMBING) or file.startswith("<"):
            continue
        mine = itself.get((name, file, line), 0)
        out.append(
            f"| {name} | {short(file)}:{line} | {count * seconds:.2f} | "
            f"{count / total:.1%} | {mine * seconds:.2f} |"
        )
        shown += 1
        if shown == top:
            break
    out += ["", "| hottest lines (own) | file:line | s | share |", "|---|---|---:|---:|"]
    for (name, file, line), count in sorted(lines_hot.items(), key=lambda kv: -kv[1])[:10]:
        out.append(
            f"| {name} | {short(file)}:{line} | {count * seconds:.2f} | {count / total:.1%} |"
        )
    return out


# -- PostgreSQL's statements -------------------------------------------------------------
def norm(sql: str) -> str:
    return " ".join(sql.split())


def derive_labels() -> dict[str, str]:
    """Each derive statement's text → the step builder it comes from (a statement two
    builders share, such as product's counts, goes to the first listed)."""
    labelled: list[tuple[str, list[Step]]] = [
        ("commerce rollups", commerce_rollups.commerce_rollup_steps()),
        ("product", product.product_steps(0, 1)),
        ("daily rollups: product redo", product.redo_steps("derive_day_event")),
        ("sessions", sessions.session_steps(0, 1)),
        ("commerce", commerce.commerce_steps(0, 1)),
        ("sessions", sessions.session_cleanup()),
        ("hourly rollups", rollups.rollup_steps(0, 1)),
        ("hourly rollups: ahead", rollups.event_rows_ahead(0, 1)),
        ("hourly rollups", rollups.merge_ahead(0, 1)),
        ("daily rollups", day_steps(1, 1)),
    ]
    out: dict[str, str] = {}
    for label, steps in labelled:
        for step in steps:
            sql = step.rows_sql if isinstance(step, Transform) else step[0]
            out.setdefault(norm(sql), label)
    return out


# BulkInsert targets of the Transforms
_INSERTED = {
    "rollup_sketch": "daily rollups",
    "rollup_day": "daily rollups",
    "rollup_week": "daily rollups",
}
_MESSAGE = re.compile(
    r"^duration: ([\d.]+) ms  (statement|parse|bind|execute)[^:]*: (.*)$", re.DOTALL
)
_RUN_START = norm("SELECT last_seq FROM derive_state WHERE name = $1")


def derive_label(sql: str, labels: dict[str, str]) -> str:
    if (found := labels.get(sql)) is not None:
        return found
    if match := re.match(r"INSERT INTO (\w+) \(.*unnest\(", sql):
        return _INSERTED.get(match.group(1), "commerce")
    return "run: lock, position, BEGIN/COMMIT"


def pg_statements(out: Path) -> list[dict[str, Any]]:
    """Every logged statement: time (end, wall), pid, ms, kind, text, detail."""
    rows = []
    for path in sorted(out.glob("postgres-*.json")):
        for raw in path.read_text().splitlines():
            entry = json.loads(raw)
            if not (match := _MESSAGE.match(entry.get("message", ""))):
                continue
            moment = datetime.strptime(entry["timestamp"], "%Y-%m-%d %H:%M:%S.%f %Z")
            rows.append(
                {
                    "end": moment.timestamp(),
                    "pid": entry.get("pid"),
                    "ms": float(match.group(1)),
                    "kind": match.group(2),
                    "sql": norm(match.group(3)),
                    "detail": entry.get("detail", ""),
                }
            )
    return rows


def derive_runs(
    rows: list[dict[str, Any]], started: float
) -> tuple[list[dict[str, Any]], set[int]]:
    """The derive transactions: BEGIN to COMMIT on a backend that reads derive_state."""
    labels = derive_labels()
    pids = {row["pid"] for row in rows if row["sql"] == _RUN_START}
    runs: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for row in sorted((r for r in rows if r["pid"] in pids), key=lambda r: r["end"]):
        sql = row["sql"].rstrip(";").upper()
        if sql == "BEGIN":
            current = {
                "start": row["end"] - row["ms"] / 1000 - started,
                "steps": {},
                "statements": [],
                "upto": None,
                "days": False,
            }
        if current is None:
            continue
        label = derive_label(row["sql"], labels)
        current["steps"][label] = current["steps"].get(label, 0.0) + row["ms"]
        current["statements"].append((label, row["ms"], row["sql"]))
        if row["sql"].startswith("CREATE TEMP TABLE derive_days"):
            current["days"] = True
        saved = row["sql"].startswith("INSERT INTO derive_state") and row["kind"] != "parse"
        if saved and (found := re.search(r"\$2 = '(\d+)'", row["detail"] or "")):
            current["upto"] = int(found.group(1))
        if sql in ("COMMIT", "ROLLBACK"):
            current["end"] = row["end"] - started
            if len(current["statements"]) > 4:  # more than BEGIN, position, pending, COMMIT
                runs.append(current)
            current = None
    return runs, pids


def classify(row: dict[str, Any], client: str, derive: set[int], writes: set[int]) -> str:
    if row["pid"] in derive:
        return "worker: derive (its connection: BEGIN to COMMIT, and the lock)"
    if row["pid"] in writes:
        return "worker: event writes (BEGIN, fence, sites, COPY, COMMIT)"
    if client == "worker":
        return "worker: other (sites, spellings)"
    if client.startswith("api process"):
        return f"{client}: reports, /health, auth"
    return client or "other"


def pg_report(kept: dict[str, Any], out: Path) -> list[str]:
    started = kept["started_wall"]
    clients = {p["pid"]: p["client"] for p in kept["pg_processes"]}
    lines = [
        "PostgreSQL's CPU by process (/proc; a backend by the process at the other end "
        "of its connection):",
        "",
        "| PostgreSQL process | CPU s |",
        "|---|---:|",
    ]
    groups: dict[str, float] = defaultdict(float)
    for proc in kept["pg_processes"]:
        title = proc["title"].removeprefix("postgres: ")
        name = f"backend of {proc['client']}" if proc["client"] else title.split(" ", 1)[0]
        if not proc["client"] and title.startswith(
            ("autovacuum", "checkpointer", "background", "walwriter", "logger")
        ):
            name = title.rsplit(" ", 1)[0] if "worker" in title else title.split("  ")[0]
        groups[name] += proc["cpu_s"]
    total = kept["cpu"]["postgres"]
    groups["ended processes (autovacuum workers, closed connections)"] = total - sum(
        groups.values()
    )
    for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {seconds:.2f} |")
    rows = pg_statements(out)
    if not rows:
        return lines
    plans = []
    for path in sorted(out.glob("postgres-*.json")):
        for raw in path.read_text().splitlines():
            message = json.loads(raw).get("message", "")
            if re.match(r"duration: [\d.]+ ms  plan:", message):
                plans.append(message)
    (out / "plans.txt").write_text("\n\n".join(plans) + "\n")
    runs, derive_pids = derive_runs(rows, started)
    writes = {row["pid"] for row in rows if row["sql"].startswith("COPY ")}
    by_kind: dict[str, float] = defaultdict(float)
    for row in rows:
        by_kind[classify(row, clients.get(row["pid"], ""), derive_pids, writes)] += row["ms"]
    lines += [
        "",
        "Statement time in PostgreSQL's log (parse + bind + execute, wall time in the "
        "backend; a COMMIT includes its WAL flush):",
        "",
        "| sent by | statement s |",
        "|---|---:|",
    ]
    for name, ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {ms / 1000:.2f} |")
    steps: dict[str, float] = defaultdict(float)
    for run in runs:
        for label, ms in run["steps"].items():
            steps[label] += ms
    lines += [
        "",
        "Derive statement time by step builder (all runs):",
        "",
        "| step | s |",
        "|---|---:|",
    ]
    for label, ms in sorted(steps.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {ms / 1000:.2f} |")
    lines += [
        "",
        "Derive runs (s from the first POST; statement time per step, ms):",
        "",
        "| start | end | s | events up to seq | days | steps (ms) |",
        "|---:|---:|---:|---:|---|---|",
    ]
    for run in (run for run in runs if run["upto"] is not None):  # the runs that did work
        shown = ", ".join(
            f"{label} {ms:.0f}"
            for label, ms in sorted(run["steps"].items(), key=lambda kv: -kv[1])
            if ms >= 5
        )
        lines.append(
            f"| {run['start']:.2f} | {run['end']:.2f} | {run['end'] - run['start']:.2f} "
            f"| {run['upto'] or ''} | {'yes' if run['days'] else ''} | {shown} |"
        )
    slow: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in runs:
        for label, ms, sql in run["statements"]:
            slow[(label, sql)].append(ms)
    lines += [
        "",
        "Slowest derive statements (all runs):",
        "",
        "| step | statement | runs | s total | s max |",
        "|---|---|---:|---:|---:|",
    ]
    for (label, sql), times in sorted(slow.items(), key=lambda kv: -sum(kv[1]))[:15]:
        lines.append(
            f"| {label} | `{sql[:110]}` | {len(times)} | {sum(times) / 1000:.2f} | "
            f"{max(times) / 1000:.2f} |"
        )
    stats = kept.get("pg_stat_statements", [])
    lines += [
        "",
        "pg_stat_statements, top 15 by execution time:",
        "",
        "| statement | calls | exec s | plan s | rows |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in stats[:15]:
        text = norm(row["query"])[:110].replace("|", "\\|")
        lines.append(
            f"| `{text}` | {row['calls']} | {row['total_exec_time'] / 1000:.2f} | "
            f"{row['total_plan_time'] / 1000:.2f} | {row['rows']} |"
        )
    return lines


def answers_table(kept: dict[str, Any]) -> list[str]:
    """Each report's answer time, from the poller's answers: they go one after the other,
    each kept with the moment it came back (e2e_ab's poller), so an answer took from the
    return of the one before it, less the pause before a round, to its own return."""
    pause = float(kept["args"]["poll_pause"])
    exact = kept["run"]["exact_s"]
    times: dict[int, list[tuple[float, float]]] = defaultdict(list)
    answers = kept["answers"]
    for (before, _), (back, report) in itertools.pairwise(answers):
        times[report].append((back, back - before - (pause if report == 0 else 0.0)))
    lines = [
        "| report | answers | ms each (mean) | s in all | of it until every report exact |",
        "|---|---:|---:|---:|---:|",
    ]
    for report, found in sorted(times.items()):
        total = sum(t for _, t in found)
        early = sum(t for at, t in found if at <= exact)
        lines.append(
            f"| {REPORTS[report][0]} | {len(found)} | {1000 * total / len(found):.0f} "
            f"| {total:.2f} | {early:.2f} |"
        )
    return lines


def positions_table(kept: dict[str, Any]) -> list[str]:
    """The derive runs that did work, from derive_state: began (its transaction's start),
    seen committed (within --every), events up to seq."""
    lines = ["| run began | seen committed | s | events up to seq |", "|---:|---:|---:|---:|"]
    for seen, seq, began in kept.get("positions", []):
        lines.append(f"| {began:.2f} | {seen:.2f} | {seen - began:.2f} | {seq:,} |")
    return lines


def report(out: Path) -> str:
    kept = json.loads((out / "run.json").read_text())
    run = kept["run"]
    wall = run["derived_s"]
    lines = [
        f"Run: last 202 {run['accepted_s']:.2f} s, queue drained {run['drained_s']:.2f} s, "
        + ", ".join(f"{REPORTS[k][0]} exact {s:.2f} s" for k, s in enumerate(run["reports_s"]))
        + f", derive idle {run['derived_s']:.2f} s; {run['polls']} report answers polled; "
        f"py-spy {'on' if kept['spy'] else 'off'}, statement log "
        f"{'on' if kept['pg_log'] else 'off'}, plans {'on' if kept.get('plans') else 'off'}.",
        "",
        f"CPU seconds from the first POST to derive idle ({wall:.1f} s of wall time):",
        "",
    ]
    lines += share_table(kept["cpu"], wall)
    groups = {
        "api": ["api supervisor", "api process 1", "api process 2", "api helpers"],
        "worker": ["worker"],
        "postgres": ["postgres"],
        "redis": ["redis-server"],
        "client": ["client"],
    }
    if kept["spy"]:
        groups["py-spy"] = ["py-spy"]
    lines += ["", "CPU seconds per phase:", "", *phase_table(kept, groups), ""]
    lines += [
        "Derive runs that did work (derive_state, read every "
        f"{kept['args']['every']} s; s from the first POST):",
        "",
        *positions_table(kept),
        "",
        "The poller's answers:",
        "",
        *answers_table(kept),
        "",
    ]
    for stacks in [*sorted(out.glob("api-process-*.txt")), *out.glob("worker.txt")]:
        lines += [f"### {stacks.stem} (py-spy)", "", *spy_report(stacks, kept["rate"]), ""]
    lines += ["### PostgreSQL", "", *pg_report(kept, out)]
    return "\n".join(lines) + "\n"


def summary(outs: list[Path]) -> str:
    """CPU seconds per process of several kept runs, side by side, and their median."""
    kept = [json.loads((out / "run.json").read_text()) for out in outs]
    for k in kept:  # which API process gets the poller's connection differs from run to run
        busier, other = sorted((k["cpu"].pop("api process 1"), k["cpu"].pop("api process 2")))[::-1]
        k["cpu"].update({"api process (the busier)": busier, "api process (the other)": other})
    names = {name for k in kept for name in k["cpu"]}
    medians = {n: statistics.median(k["cpu"].get(n, 0.0) for k in kept) for n in names}
    total = sum(medians.values())
    head = ["process", *(f"run {n + 1}" for n in range(len(kept))), "median", "share"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name in sorted(names, key=lambda n: -medians[n]):
        cells = [f"{k['cpu'].get(name, 0.0):.2f}" for k in kept]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {medians[name]:.2f} | {medians[name] / total:.1%} |"
        )
    totals = [f"{sum(k['cpu'].values()):.2f}" for k in kept]
    lines.append(f"| total | {' | '.join(totals)} | {total:.2f} | 100% |")
    walls = [f"{k['run']['derived_s']:.1f}" for k in kept]
    lines.append(
        f"| first POST → derive idle, s | {' | '.join(walls)} | "
        f"{statistics.median(k['run']['derived_s'] for k in kept):.1f} | |"
    )
    return "\n".join(lines) + "\n"


async def measure(work: Path, args: argparse.Namespace, profiler: Profiler) -> Run:
    requests = bodies(args.events, args.batch, args.days)
    return await run_tapioca("production", work, requests, args, profiler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="where to keep it all")
    parser.add_argument("--spy", action="store_true", help="py-spy on the Tapioca processes")
    parser.add_argument("--pg-log", action="store_true", help="every statement's time")
    parser.add_argument(
        "--plans",
        action="store_true",
        help="with --pg-log: the plans of statements of 250 ms or more",
    )
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples a second")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between CPU samples")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--poll-pause", type=float, default=0.05)
    parser.add_argument("--report-only", action="store_true", help="render a kept run again")
    parser.add_argument(
        "--summary",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="only print the CPU per process of these kept runs and the median",
    )
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary), flush=True)
        return
    if args.out is None:
        parser.error("--out is required")
    out: Path = args.out
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
        profiler = Profiler(out, args.spy, args.pg_log, args.rate, args.every, args.plans)
        with tempfile.TemporaryDirectory(prefix="tapioca-e2e-profile-") as tmp:
            work = Path(tmp) / "production"
            work.mkdir()
            run = asyncio.run(measure(work, args, profiler))
            for log in work.glob("*.log"):
                shutil.copy(log, out / f"tapioca-{log.name}")
        kept = profiler.kept
        timeline = kept["timeline"]
        kept["cpu"] = {
            name: timeline[-1][1][name] - value
            for name, value in timeline[0][1].items()
            if args.spy or name != "py-spy"
        }
        kept.update(
            run=asdict(run),
            spy=args.spy,
            pg_log=args.pg_log,
            plans=args.plans,
            rate=args.rate,
            args={k: str(v) for k, v in vars(args).items()},
        )
        (out / "run.json").write_text(json.dumps(kept, indent=1, default=str))
    text = report(out)
    (out / "report.md").write_text(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
