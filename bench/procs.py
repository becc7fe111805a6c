"""Start and measure `tapioca` processes for the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # test helpers
from support import credentials
from support.processes import child_pids
from support.servers import PostgresServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent

TAPIOCA = ROOT / ".venv" / "bin" / "tapioca"


class Proc:
    def __init__(
        self, name: str, args: list[str], env: dict[str, str], cwd: Path, exe: Path = TAPIOCA
    ) -> None:
        self.name = name
        self.log = (cwd / f"{name}.log").open("wb")
        self.popen = subprocess.Popen(
            [str(exe), *args], env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tree(self) -> list[int]:
        """This process and its children (the API processes)."""
        return [self.pid, *child_pids(self.pid)]

    def peak_rss_mb(self) -> float:
        """Largest peak resident set (VmHWM) of the process and its children."""
        peaks = []
        for pid in self.tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return max(peaks, default=0.0)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()
        return self.popen.returncode


# The benchmarks measure throughput from one address: no rate limit may refuse it.
NO_RATE_LIMITS = {
    "TAPIOCA_RATE_LIMIT_INGEST_IP": "none",
    "TAPIOCA_RATE_LIMIT_INGEST_SITE": "none",
    "TAPIOCA_RATE_LIMIT_INGEST_KEY": "none",
    "TAPIOCA_RATE_LIMIT_REPORTS": "none",
}


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a measured process: the test suite's owner, whom
    ``wait_ready`` signs in as (reports need a credential), and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPIOCA_")}
    env.update(
        {"TAPIOCA_LOG_LEVEL": "warning", **NO_RATE_LIMITS, **credentials.owner_env(), **extra}
    )
    return env


def production_env(dsn: str, redis_url: str, port: int, settings: dict[str, str]) -> dict[str, str]:
    return base_env(
        {
            "TAPIOCA_DATABASE_URL": dsn,
            "TAPIOCA_REDIS_URL": redis_url,
            "TAPIOCA_PORT": str(port),
            **credentials.production_env(),
            **settings,
        }
    )


def serve(data: Path, port: int, cwd: Path) -> Proc:
    """``tapioca serve`` on the embedded store in ``data``, listening on ``port``."""
    env = base_env({"TAPIOCA_DATA_DIR": str(data), "TAPIOCA_PORT": str(port)})
    return Proc("serve", ["serve"], env, cwd)


def start_serve(data: Path) -> tuple[str, Proc]:
    """``tapioca serve`` on the embedded store in ``data``: see ``_started``."""
    port = free_port()
    return _started(port, serve(data, port, data))


def start_api(dsn: str, redis_url: str, work: Path) -> tuple[str, Proc]:
    """One API process (one worker) of the production stores: see ``_started``."""
    port = free_port()
    env = production_env(dsn, redis_url, port, {"TAPIOCA_API_WORKERS": "1"})
    return _started(port, Proc("api", ["api"], env, work))


def _started(port: int, proc: Proc) -> tuple[str, Proc]:
    """The URL of ``proc``, listening on ``port``, once it is ready and its owner signed
    in; the process is stopped again when it does not get ready."""
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
    except BaseException:
        proc.stop()
        raise
    return url, proc


def wait_ready(url: str, proc: Proc, timeout: float = 60, sign_in: bool = True) -> None:
    """Poll /ready, then (``sign_in``) sign in as the owner (``credential(url)`` gives the
    header)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                if sign_in:
                    _CREDENTIALS[url] = _sign_in(url)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s")


_CREDENTIALS: dict[str, dict[str, str]] = {}  # base URL -> the owner's Authorization header


def _sign_in(url: str) -> dict[str, str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        probe = client.post(credentials.SIGN_IN, json={})
        if probe.status_code == 404:  # a build from before accounts (bench.ab): no credential
            return {}
        return credentials.signed_in(client)


def credential(url: str) -> dict[str, str]:
    """The header that reads the reports of the server at ``url`` (signed in by
    ``wait_ready``)."""
    if url not in _CREDENTIALS:
        _CREDENTIALS[url] = _sign_in(url)
    return _CREDENTIALS[url]


@contextmanager
def bench_servers(
    work: Path, settings: Sequence[str] = ()
) -> Iterator[tuple[PostgresServer, str, RedisServer]]:
    """A throw-away PostgreSQL (1 GB of shared buffers, 64 MB of work memory, and
    ``settings``) with a database ``bench``, and a Redis, under ``work``; removed after.
    Yields the server, the database's DSN and Redis."""
    pg = PostgresServer(work / "pg")
    redis = RedisServer(work / "redis")
    try:
        pg.init()
        pg._append(pg.data_dir / "postgresql.conf",
                   ["shared_buffers = 1GB", "work_mem = 64MB", *settings])  # fmt: skip
        pg.start()
        pg.create_database("bench")
        redis.start()
        yield pg, pg.dsn("bench"), redis
    finally:
        redis.cleanup()
        pg.cleanup()
