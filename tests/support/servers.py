"""Throw-away PostgreSQL and Redis servers started from the local binaries.

Used by the integration and end-to-end test fixtures. Every server listens on
127.0.0.1 only, on a port picked once when the object is created (restarts keep
the same port), and keeps all its files in a private temp directory that
``cleanup()`` removes. Only processes started by these objects are ever stopped.

PostgreSQL refuses to run as root, so when the tests run as root every
PostgreSQL binary is run as the ``postgres`` OS user via ``runuser``, and the
temp directory is created under /tmp (``base_dir`` is usually inside a 0700
pytest directory that the ``postgres`` user cannot traverse).
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "free_port",
    "pg_bin_dir",
    "redis_command",
]

PG_OS_USER = "postgres"
PG_SUPERUSER = "postgres"
PG_START_TIMEOUT = 60
REDIS_START_TIMEOUT = 20.0


class ServerError(RuntimeError):
    """A test server failed to start, stop or run a command."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> numeric version, e.g. 15 or 9.6
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


@functools.cache
def pg_bin_dir() -> Path:
    """Directory holding the PostgreSQL server binaries (newest installed version)."""
    candidates = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    if candidates:
        return max(candidates, key=_version_key)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise ServerError("PostgreSQL binaries not found (no /usr/lib/postgresql/*/bin, no pg_ctl)")
    return Path(pg_ctl).resolve().parent


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a server's log or output (for a failure's message)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def signal_and_wait(
    proc: subprocess.Popen[bytes] | None, sig: signal.Signals, timeout: float
) -> None:
    """Send ``sig`` to a server process we started and wait for it to exit (SIGKILL after
    ``timeout``); nothing when it is not running."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresServer:
    """A private PostgreSQL cluster: ``init()`` then ``start()``; ``cleanup()`` at the end."""

    def __init__(self, base_dir: Path) -> None:
        self._as_root = os.geteuid() == 0
        self._bin_dir = pg_bin_dir()
        self._port = free_port()
        parent = Path("/tmp") if self._as_root else Path(base_dir)
        parent.mkdir(parents=True, exist_ok=True)
        self._root = Path(tempfile.mkdtemp(prefix="tapioca-pg-", dir=parent))
        os.chmod(self._root, 0o755)
        self._socket_dir = self._root / "sock"
        self._socket_dir.mkdir(mode=0o755)
        if self._as_root:
            user = pwd.getpwnam(PG_OS_USER)
            os.chown(self._root, user.pw_uid, user.pw_gid)
            os.chown(self._socket_dir, user.pw_uid, user.pw_gid)

    # -- properties -------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def data_dir(self) -> Path:
        return self._root / "data"

    @property
    def bin_dir(self) -> Path:
        return self._bin_dir

    @property
    def log_path(self) -> Path:
        return self._root / "postgres.log"

    @property
    def root_dir(self) -> Path:
        """The private temp directory holding data dir, socket dir and log."""
        return self._root

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self._port}/{dbname}"

    # -- helpers ----------------------------------------------------------------

    def run_tool(
        self, tool: str, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``bin_dir/tool args...`` (as the postgres OS user when we are root)."""
        cmd: list[str] = [str(self._bin_dir / tool), *args]
        if self._as_root:
            cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            cmd,
            cwd=self._root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ServerError(
                f"{' '.join(cmd)} exited with {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def _append(self, path: Path, lines: Sequence[str]) -> None:
        # Appending keeps the file's owner (postgres) and mode.
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n# added by tests/support/servers.py\n")
            fh.write("".join(line + "\n" for line in lines))

    def _instance_settings(self) -> list[str]:
        return [
            f"port = {self._port}",
            f"unix_socket_directories = '{self._socket_dir}'",
        ]

    # -- lifecycle --------------------------------------------------------------

    def init(self) -> None:
        """Create the cluster with initdb and write the test configuration."""
        self.run_tool(
            "initdb",
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            PG_SUPERUSER,
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        self._append(
            self.data_dir / "postgresql.conf",
            [
                "listen_addresses = '127.0.0.1'",
                *self._instance_settings(),
                "fsync = off",
                "synchronous_commit = on",
                "full_page_writes = off",
                "wal_level = replica",
                "max_wal_senders = 5",
                "hot_standby = on",
                "max_connections = 200",
                "shared_buffers = 128MB",
            ],
        )
        self._append(
            self.data_dir / "pg_hba.conf",
            ["host    replication     all             127.0.0.1/32            trust"],
        )

    def start(self) -> None:
        result = self.run_tool(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(PG_START_TIMEOUT),
            check=False,
            timeout=PG_START_TIMEOUT + 30,
        )
        if result.returncode != 0:
            raise ServerError(
                f"PostgreSQL on port {self._port} failed to start (pg_ctl exit "
                f"{result.returncode})\npg_ctl output:\n{result.stdout}{result.stderr}\n"
                f"log tail ({self.log_path}):\n{tail(self.log_path)}"
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode`` is a pg_ctl shutdown mode: smart, fast or immediate."""
        self.run_tool(
            "pg_ctl",
            "stop",
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            "-w",
            "-t",
            str(PG_START_TIMEOUT),
            timeout=PG_START_TIMEOUT + 30,
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        # pg_ctl status: 0 = running, 3 = not running, 4 = no accessible data dir
        return (
            self.run_tool("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0
        )

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with the psql binary over TCP; return its (unaligned, tuples-only) output."""
        result = self.run_tool(
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self._port),
            "-U",
            PG_SUPERUSER,
            "-d",
            dbname,
            "-c",
            sql,
        )
        return result.stdout

    def create_database(self, name: str) -> None:
        self.psql(f"CREATE DATABASE {_quote_ident(name)}")

    def drop_database(self, name: str, force: bool = True) -> None:
        suffix = " WITH (FORCE)" if force else ""
        self.psql(f"DROP DATABASE IF EXISTS {_quote_ident(name)}{suffix}")

    def make_replica(self, base_dir: Path) -> PostgresServer:
        """Build a streaming replica of this (running) server; returned not yet started."""
        replica = PostgresServer(base_dir)
        try:
            replica.run_tool(
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                str(self._port),
                "-U",
                PG_SUPERUSER,
                "-D",
                str(replica.data_dir),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            )
            # postgresql.auto.conf is read last, so these override the copied values.
            replica._append(replica.data_dir / "postgresql.auto.conf", replica._instance_settings())
        except BaseException:
            replica.cleanup()
            raise
        return replica

    def cleanup(self) -> None:
        """Stop (immediate) if running and remove all files."""
        try:
            if self.is_running():
                self.stop(mode="immediate")
        finally:
            shutil.rmtree(self._root, ignore_errors=True)


def redis_command(port: int, *args: str, timeout: float = 5.0) -> bytes:
    """Send one command (RESP array) to 127.0.0.1:port and return the raw first reply line."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


class RedisServer:
    """A private redis-server child process; port and directory fixed for the object's life."""

    def __init__(self, base_dir: Path, appendonly: bool = True) -> None:
        self._appendonly = appendonly
        self._port = free_port()
        base = Path(base_dir)
        base.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="tapioca-redis-", dir=base))
        self._proc: subprocess.Popen[bytes] | None = None
        self._binary = shutil.which("redis-server") or "/usr/bin/redis-server"

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def dir(self) -> Path:
        return self._dir

    @property
    def log_path(self) -> Path:
        return self._dir / "redis.log"

    @property
    def pid(self) -> int:
        """PID of the current (or most recently started) redis-server process."""
        if self._proc is None:
            raise ServerError("redis-server has not been started")
        return self._proc.pid

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running():
            raise ServerError(f"redis-server already running (pid {self.pid})")
        cmd = [
            self._binary,
            "--port",
            str(self._port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self._dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self._appendonly else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--logfile",
            str(self.log_path),
        ]
        with (self._dir / "redis.stderr").open("ab") as err:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self._dir,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        last_error = "no reply"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self._port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    reply = sock.recv(64)
                if reply.startswith(b"+PONG"):
                    return
                last_error = repr(reply)  # e.g. -LOADING while the AOF is replayed
            except OSError as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        status = self._proc.poll()
        raise ServerError(
            f"redis-server on port {self._port} not ready (exit status {status}, "
            f"last error {last_error})\nstderr:\n{tail(self._dir / 'redis.stderr')}\n"
            f"log tail ({self.log_path}):\n{tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), waiting for the process to exit."""
        signal_and_wait(self._proc, signal.SIGTERM, timeout=20)

    def kill(self) -> None:
        """Hard crash (SIGKILL), waiting for the process to exit."""
        signal_and_wait(self._proc, signal.SIGKILL, timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def flushall(self) -> None:
        reply = redis_command(self._port, "FLUSHALL")
        if not reply.startswith(b"+OK"):
            raise ServerError(f"FLUSHALL failed: {reply!r}")

    def cleanup(self) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
