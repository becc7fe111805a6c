"""The ledger of runs: each run of a job for a site is keyed by (job, site, scheduled
time) and claimed once in the store, whoever asks (a scheduler, `tapioca batch run`, the
sync route): of two claims of one key, one inserts the row and the other gets nothing.

A failed run is tried again from ``next_try_at`` (backoff doubling from a minute to an
hour), by whichever scheduler claims it first; a running run whose lease has run out
(its process died) is taken over the same way."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tapioca.kit.clock import utc_text
from tapioca.storage.base import ReadStore, Store

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 10


def worker_name() -> str:
    """Who claims: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Run:
    job: str
    site_id: str
    scheduled_for: datetime
    run_id: str
    cause: str
    status: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    details: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        details = self.details or {}
        return {
            "run_id": self.run_id,
            "job": self.job,
            "site_id": self.site_id,
            "scheduled_for": utc_text(self.scheduled_for),
            "cause": self.cause,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": utc_text(self.started_at),
            "finished_at": utc_text(self.finished_at),
            "error": self.error,
            **details,
        }


_COLUMNS = (
    "job, site_id, scheduled_for, run_id, cause, status, attempts, started_at, finished_at, "
    "error, details"
)
_CLAIM = (
    f"INSERT INTO job_run (job, site_id, scheduled_for, run_id, cause, status, attempts, "
    f"claimed_by, lease_until, started_at) VALUES ($1, $2, $3, $4, $5, 'running', 1, $6, $7, "
    f"$8) ON CONFLICT (job, site_id, scheduled_for) DO NOTHING RETURNING {_COLUMNS}"
)
# again: a failed run whose time to retry came, or a running run whose lease ran out
_RETAKE = (
    "UPDATE job_run SET status = 'running', attempts = attempts + 1, claimed_by = $4, "
    "lease_until = $5, started_at = $6, finished_at = NULL, next_try_at = NULL "
    "WHERE job = $1 AND site_id = $2 AND scheduled_for = $3 AND attempts = $7 AND ("
    "(status = 'failed' AND next_try_at <= $6) OR (status = 'running' AND lease_until < $6)) "
    f"RETURNING {_COLUMNS}"
)
_FINISH = (
    "UPDATE job_run SET status = $2, finished_at = $3, error = $4, details = $5, "
    "next_try_at = $6 WHERE run_id = $1"
)


def _run(row: tuple[Any, ...]) -> Run:
    details = row[10]
    if isinstance(details, str | bytes):
        details = orjson.loads(details)
    job, site_id, scheduled_for, run_id, cause, status, attempts, started, finished, error = row[
        :10
    ]
    return Run(
        job, site_id, scheduled_for, run_id, cause, status, int(attempts), started, finished,
        error, details,
    )  # fmt: skip


async def claim(
    store: Store,
    job: str,
    site_id: str,
    scheduled_for: datetime,
    cause: str,
    lease: timedelta,
    now: datetime | None = None,
) -> Run | None:
    """The run of (job, site, scheduled_for), claimed by this process; None when it was
    claimed before (by anyone)."""
    now = now or datetime.now(UTC)
    rows = await store.change(
        _CLAIM,
        (job, site_id, scheduled_for, uuid.uuid4().hex, cause, worker_name(), now + lease, now),
    )
    return _run(rows[0]) if rows else None


async def retake(store: Store, run: Run, lease: timedelta, now: datetime) -> Run | None:
    """A failed run due again, or one whose claimer died, claimed by this process (None:
    another took it first)."""
    rows = await store.change(
        _RETAKE,
        (run.job, run.site_id, run.scheduled_for, worker_name(), now + lease, now, run.attempts),
    )
    return _run(rows[0]) if rows else None


def backoff(attempts: int) -> timedelta:
    """The wait before trying a failed run again: 1, 2, 4 … minutes, at most an hour."""
    wait: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(wait, LAST_RETRY)


async def finish(
    store: Store,
    run: Run,
    details: dict[str, Any] | None = None,
    error: str | None = None,
    retry: bool = True,
    now: datetime | None = None,
) -> Run:
    """Record the run's end: succeeded, or failed with ``error`` (then tried again after
    the backoff, up to MAX_ATTEMPTS, when ``retry``)."""
    now = now or datetime.now(UTC)
    status = SUCCEEDED if error is None else FAILED
    next_try = None
    if error is not None and retry and run.attempts < MAX_ATTEMPTS:
        next_try = now + backoff(run.attempts)
    document = orjson.dumps(details).decode() if details is not None else None
    await store.execute(_FINISH, (run.run_id, status, now, error, document, next_try))
    return Run(
        run.job, run.site_id, run.scheduled_for, run.run_id, run.cause, status, run.attempts,
        run.started_at, now, error, details,
    )  # fmt: skip


async def due_again(db: ReadStore, now: datetime) -> list[Run]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM job_run WHERE (status = 'failed' AND next_try_at <= $1) "
        "OR (status = 'running' AND lease_until < $1) ORDER BY scheduled_for",
        (now,),
    )
    return [_run(row) for row in rows]


async def latest_claimed(db: ReadStore, job: str, site_id: str) -> datetime | None:
    rows = await db.fetch(
        "SELECT max(scheduled_for) FROM job_run WHERE job = $1 AND site_id = $2 "
        "AND cause IN ('schedule', 'catch_up')",
        (job, site_id),
    )
    return rows[0][0] if rows else None


async def list_runs(db: ReadStore, site_id: str, job: str | None, limit: int) -> list[Run]:
    """A site's runs, newest first."""
    where, args = "site_id = $1", [site_id]
    if job is not None:
        where, args = where + " AND job = $2", [site_id, job]
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM job_run WHERE {where} "
        f"ORDER BY started_at DESC, run_id LIMIT {int(limit)}",
        args,
    )
    return [_run(row) for row in rows]


async def last_runs(db: ReadStore) -> list[dict[str, Any]]:
    """The last run of each job (any site): /health."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS}, waiting FROM (SELECT {_COLUMNS}, row_number() OVER ("
        "PARTITION BY job ORDER BY started_at DESC, run_id) AS n, count(*) FILTER (WHERE "
        "status = 'failed' AND next_try_at IS NOT NULL) OVER (PARTITION BY job) AS waiting "
        "FROM job_run) AS runs WHERE n = 1 ORDER BY job"
    )
    return [
        {"job": row[0], "waiting_retries": int(row[-1]), "last": _run(row[:-1]).public()}
        for row in rows
    ]


async def scheduler_status(db: ReadStore) -> dict[str, Any]:
    """/health: the schedulers' last signs of life, and the last run of each job."""
    now = datetime.now(UTC)
    rows = await db.fetch(
        "SELECT scheduler_id, host, pid, started_at, beat_at FROM scheduler_beat "
        "ORDER BY beat_at DESC"
    )
    beats = [
        {"scheduler_id": r[0], "host": r[1], "pid": int(r[2]), "started_at": utc_text(r[3]),
         "beat_at": utc_text(r[4]), "seconds_since_beat": round((now - r[4]).total_seconds(), 1)}
        for r in rows
    ]  # fmt: skip
    return {"schedulers": beats, "jobs": await last_runs(db)}
