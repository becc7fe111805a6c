"""Real `tapioca` processes for the end-to-end suite, spoken to over HTTP.

Every process is started from the project's own CLI (``.venv/bin/tapioca``) with a
private working directory, a clean ``TAPIOCA_*`` environment and its output captured
in files (shown when a start fails). At teardown each process started here is sent
SIGTERM by its PID (SIGKILL after a timeout); a worker must exit with status 0.

Every server has the suite's owner (support/credentials.py) and no rate limits unless the
test's environment says otherwise; once it is ready the launcher signs in as that owner,
and ``server.client`` sends the access token (``server.anonymous`` sends none).
``server.headers`` holds the same header, for clients a test makes itself (empty when the
server has no owner to sign in as).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from support.credentials import SIGN_IN, owner_env, production_env, signed_in
from support.rate_limits import LIMITS_OFF
from support.servers import PostgresServer, free_port

READY_TIMEOUT = 30.0
# Rate limits are off unless a test turns one on: its load is one client's, and what it
# looks at is not the limiter (tests/*/test_ratelimit*.py look at that).
NO_RATE_LIMITS = {f"TAPIOCA_{name.upper()}": value for name, value in LIMITS_OFF.items()}
STOP_TIMEOUT = 20.0
# A browser User-Agent: no future bot filter may mistake the test traffic for a crawler.
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def tapioca_bin() -> Path:
    here = Path(sys.executable).parent / "tapioca"
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tapioca"


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test runner's environment without any TAPIOCA_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPIOCA_")}
    env.update({"TAPIOCA_LOG_JSON": "true", "TAPIOCA_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"})
    # `serve` runs the scheduler unless told not to: the tests of the scheduler and of order
    # sources turn it on; elsewhere its forecasts would share the process with what is
    # measured
    env["TAPIOCA_SCHEDULER_IN_SERVE"] = "false"
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Proc:
    """One child process with its output in files."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return (
            f"--- {self.name} (pid {self.pid}) stderr:\n{_tail(self.stderr_path)}\n"
            f"--- {self.name} stdout:\n{_tail(self.stdout_path)}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM by PID, SIGKILL when it does not exit within ``timeout``."""
        if self.returncode is not None:
            return self.returncode
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
                self.returncode = -9
                return self.returncode
        self.returncode = self.popen.returncode
        return self.returncode


@dataclass
class Server:
    """An HTTP front (``serve`` or ``api``) and the processes behind it."""

    mode: str
    port: int
    base_url: str
    client: httpx.Client  # sends the owner's credential (``headers``)
    anonymous: httpx.Client  # sends none
    http: Proc
    env: dict[str, str]
    workdir: Path
    workers: list[Proc] = field(default_factory=list)
    dsn: str | None = None
    # the owner's credential (Authorization: Bearer …), sent by ``client`` as well
    headers: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return "\n".join(p.output() for p in [self.http, *self.workers])

    @property
    def owner(self) -> tuple[str, str] | None:
        """The email and password of the owner the server was started with, if any."""
        email = self.env.get("TAPIOCA_OWNER_EMAIL")
        password = self.env.get("TAPIOCA_OWNER_PASSWORD")
        return (email, password) if email and password else None

    def sign_in(self) -> None:
        """Sign in as the owner and have ``client`` (and ``headers``) carry the token. An
        instance that had accounts before it started never made that owner: its sign-in
        is refused (401), and the test speaks for itself (no credential is sent)."""
        if self.owner is None:
            return
        email, password = self.owner
        with httpx.Client(base_url=self.base_url, timeout=30.0) as client:
            try:
                probe = client.post(SIGN_IN, json={"email": email, "password": password})
                if probe.status_code == 401:
                    return
                self.headers = signed_in(client, email, password)
            except (AssertionError, httpx.TransportError) as exc:
                pytest.fail(f"{exc}\n{self.output()}")
        self.client.headers.update(self.headers)


class Launcher:
    """Starts tapioca processes for one test and stops all of them at teardown."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.procs: list[Proc] = []
        self.clients: list[httpx.Client] = []
        self._count = 0

    def _workdir(self, name: str) -> Path:
        self._count += 1
        path = self.base / f"{self._count:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def spawn(self, name: str, args: list[str], env: Mapping[str, str], cwd: Path) -> Proc:
        out, err = cwd / f"{name}.stdout", cwd / f"{name}.stderr"
        with out.open("wb") as out_f, err.open("wb") as err_f:
            popen = subprocess.Popen(
                [str(tapioca_bin()), *args],
                cwd=cwd,
                env=clean_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out_f,
                stderr=err_f,
            )
        proc = Proc(name, popen, out, err)
        self.procs.append(proc)
        return proc

    def run(
        self, args: list[str], env: Mapping[str, str], cwd: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a short CLI command to completion."""
        workdir = cwd or self._workdir("cli")
        return subprocess.run(
            [str(tapioca_bin()), *args],
            cwd=workdir,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _client(self, base_url: str) -> httpx.Client:
        client = httpx.Client(base_url=base_url, timeout=30.0, headers={"User-Agent": BROWSER_UA})
        self.clients.append(client)
        return client

    def serve(self, env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> Server:
        """`tapioca serve --port P` on a DuckDB file in a private data dir."""
        workdir = self._workdir("serve")
        port = free_port()
        full_env = {
            "TAPIOCA_DATA_DIR": str(data_dir or workdir / "data"),
            **NO_RATE_LIMITS,
            **owner_env(),
            **(env or {}),
        }
        proc = self.spawn("serve", ["serve", "--port", str(port)], full_env, workdir)
        base_url = f"http://127.0.0.1:{port}"
        server = Server(
            "embedded", port, base_url, self._client(base_url), self._client(base_url), proc,
            full_env, workdir,
        )  # fmt: skip
        wait_ready(server)
        return server

    def production(
        self,
        dsn: str,
        redis_url: str,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        wait: bool = True,
    ) -> Server:
        """`tapioca api --port P` plus `tapioca worker` on PostgreSQL and Redis."""
        workdir = self._workdir("production")
        port = free_port()
        full_env = {
            "TAPIOCA_DATABASE_URL": dsn,
            "TAPIOCA_REDIS_URL": redis_url,
            "TAPIOCA_BATCH_MAX_WAIT_MS": "50",
            "TAPIOCA_AUTO_CREATE_SITES": "true",
            "TAPIOCA_DATA_DIR": str(workdir / "data"),
            **NO_RATE_LIMITS,
            **owner_env(),
            **production_env(),
            **(env or {}),
        }
        api = self.spawn("api", ["api", "--port", str(port)], full_env, workdir)
        base_url = f"http://127.0.0.1:{port}"
        server = Server(
            "production", port, base_url, self._client(base_url), self._client(base_url), api,
            full_env, workdir, dsn=dsn,
        )  # fmt: skip
        for _ in range(workers):
            self.start_worker(server)
        if wait:
            wait_ready(server)
        return server

    def start_worker(self, server: Server) -> Proc:
        name = f"worker{len(server.workers) + 1}"
        proc = self.spawn(name, ["worker", "--name", name], server.env, server.workdir)
        server.workers.append(proc)
        return proc

    def close(self) -> list[str]:
        """Stop everything (newest first); return the problems found."""
        problems = []
        for client in self.clients:
            client.close()
        for proc in reversed(self.procs):
            rc = proc.stop()
            if proc.name.startswith("worker") and rc != 0:
                problems.append(f"{proc.name} exited with {rc} after SIGTERM\n{proc.output()}")
        return problems


def wait_ready(server: Server, timeout: float = READY_TIMEOUT) -> None:
    """Poll GET /ready until 200, then sign in as the owner (Server.sign_in); fail with
    the processes' output otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        for proc in [server.http, *server.workers]:
            if not proc.alive():
                pytest.fail(
                    f"{proc.name} exited with {proc.popen.returncode} before /ready\n"
                    f"{server.output()}"
                )
        try:
            response = httpx.get(f"{server.base_url}/ready", timeout=2.0)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                server.sign_in()
                return
            last = f"{response.status_code} {response.text[:300]}"
        time.sleep(0.1)
    pytest.fail(f"{server.base_url}/ready not 200 within {timeout}s ({last})\n{server.output()}")


@dataclass
class PsqlRunner:
    """Read the production database directly (to check what is stored)."""

    server: PostgresServer
    dbname: str

    def __call__(self, sql: str) -> list[list[str]]:
        out = self.server.psql(sql, self.dbname)
        return [line.split("|") for line in out.splitlines() if line]
