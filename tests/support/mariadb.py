"""A throw-away MariaDB server started from the local binaries.

The order-source tests read a shop's own order database; this is one such database,
like the PostgreSQL and Redis servers of tests/support/servers.py (whose style it
follows). The server listens on 127.0.0.1 only, on a port picked once when the object
is created (restarts keep the same port), and keeps all its files (data directory,
socket, pid file, error log) in a private temp directory that ``cleanup()`` removes.
Only the ``mariadbd`` process started by the object is ever stopped, by its PID.

The grant tables are real (no ``--skip-grant-tables``): ``mariadb-install-db`` creates
``root`` with the ``normal`` authentication method and no password (``root@localhost``
over the socket, ``root@127.0.0.1`` over TCP), so tests can create users with
passwords and grants of their own. Names are never resolved (``--skip-name-resolve``):
a user ``'name'@'%'`` is matched from 127.0.0.1. When the tests run as root, the server
runs as root too (``--user=root``); durability is traded for speed (no binary log, no
doublewrite buffer, the InnoDB log flushed about once a second).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from support.servers import ServerError, free_port, signal_and_wait, tail

__all__ = ["MARIADB_CLIENT", "MARIADB_INSTALL_DB", "MARIADB_SERVER", "MariaDBServer"]

MARIADB_SERVER = "/usr/sbin/mariadbd"
MARIADB_INSTALL_DB = "/usr/bin/mariadb-install-db"
MARIADB_CLIENT = "/usr/bin/mariadb"
MARIADB_START_TIMEOUT = 60.0
MARIADB_STOP_TIMEOUT = 60.0
MARIADB_ROOT = "root"


def _binary(path: str) -> str:
    if Path(path).is_file():
        return path
    found = shutil.which(Path(path).name)
    if found is None:
        raise ServerError(
            f"MariaDB binary {Path(path).name} not found (scripts/ensure-system-deps.sh "
            "installs mariadb-server and mariadb-client)"
        )
    return found


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MariaDBServer:
    """A private MariaDB server: ``init()`` then ``start()``; ``cleanup()`` at the end."""

    def __init__(self, base_dir: Path, buffer_pool: str = "128M") -> None:
        self._as_root = os.geteuid() == 0
        self._buffer_pool = buffer_pool
        self._port = free_port()
        base = Path(base_dir)
        base.mkdir(parents=True, exist_ok=True)
        self._root = Path(tempfile.mkdtemp(prefix="tapioca-mariadb-", dir=base))
        if len(str(self.socket_path)) > 100:  # a unix socket path holds at most 107 bytes
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = Path(tempfile.mkdtemp(prefix="tapioca-mariadb-", dir="/tmp"))
        (self._root / "tmp").mkdir()
        self._proc: subprocess.Popen[bytes] | None = None

    # -- properties -------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def root_dir(self) -> Path:
        """The private temp directory holding data dir, socket, pid file and logs."""
        return self._root

    @property
    def data_dir(self) -> Path:
        return self._root / "data"

    @property
    def socket_path(self) -> Path:
        return self._root / "mariadb.sock"

    @property
    def log_path(self) -> Path:
        return self._root / "mariadb.err"

    @property
    def pid(self) -> int:
        """PID of the current (or most recently started) mariadbd process."""
        if self._proc is None:
            raise ServerError("mariadbd has not been started")
        return self._proc.pid

    def url(self, user: str = MARIADB_ROOT, password: str = "", db: str = "") -> str:
        """``mysql://user:password@127.0.0.1:PORT/db`` (``user@`` alone without a password)."""
        auth = quote(user, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        return f"mysql://{auth}@127.0.0.1:{self._port}/{quote(db, safe='')}"

    # -- helpers ----------------------------------------------------------------

    def _run(
        self, cmd: list[str], timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            cmd,
            cwd=self._root,
            env={**os.environ, "LC_ALL": "C"},
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

    def _user_args(self) -> list[str]:
        return ["--user=root"] if self._as_root else []

    def sql(self, statement: str, db: str | None = None, timeout: float = 120) -> str:
        """Run SQL (one or more ``;``-separated statements) as root with the mariadb client
        over the socket; return its batch output (tab-separated, no column names)."""
        cmd = [
            _binary(MARIADB_CLIENT),
            "--no-defaults",
            "--protocol=socket",
            f"--socket={self.socket_path}",
            f"--user={MARIADB_ROOT}",
            "--batch",
            "--skip-column-names",
            "--local-infile=1",
            "--default-character-set=utf8mb4",
        ]
        if db is not None:
            cmd.append(f"--database={db}")
        cmd += ["--execute", statement]
        return self._run(cmd, timeout=timeout).stdout

    def create_database(self, name: str) -> None:
        self.sql(f"CREATE DATABASE {_quote_ident(name)} CHARACTER SET utf8mb4")

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {_quote_ident(name)}")

    # -- lifecycle --------------------------------------------------------------

    def init(self) -> None:
        """Create the data directory and the grant tables with mariadb-install-db."""
        self._run(
            [
                _binary(MARIADB_INSTALL_DB),
                "--no-defaults",
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *self._user_args(),
                f"--innodb-buffer-pool-size={self._buffer_pool}",
            ]
        )

    def _command(self) -> list[str]:
        return [
            _binary(MARIADB_SERVER),
            "--no-defaults",  # must come first
            f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}",
            f"--port={self._port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self._root / 'mariadb.pid'}",
            f"--log-error={self.log_path}",
            f"--tmpdir={self._root / 'tmp'}",
            *self._user_args(),
            "--skip-name-resolve",
            "--skip-log-bin",
            "--local-infile=1",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--max-connections=200",
            f"--innodb-buffer-pool-size={self._buffer_pool}",
            "--innodb-log-file-size=128M",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--performance-schema=0",
        ]

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running():
            raise ServerError(f"mariadbd already running (pid {self.pid})")
        with (self._root / "mariadb.stderr").open("ab") as err:
            self._proc = subprocess.Popen(
                self._command(),
                cwd=self._root,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def _handshake(self) -> bytes:
        """The first packet the server sends on a new TCP connection."""
        with socket.create_connection(("127.0.0.1", self._port), timeout=2) as sock:
            return sock.recv(128)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + MARIADB_START_TIMEOUT
        last_error = "no reply"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                packet = self._handshake()
                # 3-byte length, sequence id, then protocol version 10 (an error packet: 0xff)
                if len(packet) > 4 and packet[4] == 10:
                    return
                last_error = repr(packet[:80])
            except OSError as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        status = self._proc.poll()
        raise ServerError(
            f"mariadbd on port {self._port} not ready (exit status {status}, last error "
            f"{last_error})\nstderr:\n{tail(self._root / 'mariadb.stderr')}\n"
            f"log tail ({self.log_path}):\n{tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), waiting for the process to exit."""
        signal_and_wait(self._proc, signal.SIGTERM, timeout=MARIADB_STOP_TIMEOUT)

    def kill(self) -> None:
        """Hard crash (SIGKILL), waiting for the process to exit."""
        signal_and_wait(self._proc, signal.SIGKILL, timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Kill the server if it is running and remove all its files."""
        try:
            self.kill()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
