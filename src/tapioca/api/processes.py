"""The HTTP servers of `tapioca serve` and `tapioca api` (run_server), and `tapioca api`
with several processes, each listening on its own SO_REUSEPORT socket.

With one shared listening socket, the process that wakes first accepts every waiting
connection, so a few keep-alive clients (a server-side SDK, a load balancer) can all
end up on one process while the others idle. With a socket per process the kernel
spreads new connections over the processes. The supervisor restarts a process that
dies and, on SIGTERM or SIGINT, passes the signal on and waits for every process to
drain (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from tapioca.api.connection import http_options
from tapioca.config import Settings
from tapioca.logging import configure_logging, get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI

log = get_logger(__name__)

GRACE_S = 10  # uvicorn's graceful shutdown, then the supervisor's own margin
_CHECK_S = 0.5
STARTUP_FAILURE = 3  # as uvicorn exits when the application cannot start
APP_FACTORY = "tapioca.api.app:create_app"


class _Server(uvicorn.Server):
    """uvicorn's server, logging the URL it serves once it listens (event `serving`)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            if ":" in host:  # IPv6
                host = f"[{host}]"
            log.info("serving", url=f"http://{host}:{port}")


def run_server(app: FastAPI | str, settings: Settings, sock: socket.socket | None = None) -> None:
    """Serve HTTP until SIGTERM or SIGINT (then drain): ``app`` itself or, given as a
    string, the factory it names; on ``sock``, else on the settings' host and port. The
    server's own logs go through tapioca.logging, its access log with TAPIOCA_ACCESS_LOG."""
    config = uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=GRACE_S,
        log_config=None,
        **http_options(settings),
        access_log=settings.access_log,
    )
    server = _Server(config)
    server.run(sockets=None if sock is None else [sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that shares its port with the other API processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def serve_process(host: str, port: int) -> None:
    """One API process (the target of a spawned child: it sets up its own logging)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        run_server(APP_FACTORY, settings, listening_socket(host, port))
    except Exception as exc:
        log.critical("crashed", error=type(exc).__name__, exc_info=exc)
        raise SystemExit(1) from exc


def run_processes(host: str, port: int, count: int) -> int:
    """Run ``count`` API processes until SIGTERM or SIGINT; returns the exit status."""
    probe = listening_socket(host, port)  # fails now if the port is taken
    probe.close()
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []

    def start() -> BaseProcess:
        child = context.Process(target=serve_process, args=(host, port), name="tapioca-api")
        child.start()
        return child

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    children = [start() for _ in range(count)]
    log.info("api_processes_started", processes=count, pids=[c.pid for c in children])
    try:
        while not stopping:
            time.sleep(_CHECK_S)
            for index, child in enumerate(children):
                if child.is_alive() or stopping:
                    continue
                if child.exitcode == STARTUP_FAILURE:  # restarting would fail the same way
                    log.error("api_process_failed_to_start", pid=child.pid)
                    return STARTUP_FAILURE
                log.warning("api_process_died", pid=child.pid, exitcode=child.exitcode)
                children[index] = start()
    finally:
        _stop(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _stop(children: list[BaseProcess]) -> None:
    """SIGTERM every process, wait for them to drain, kill what is left."""
    for child in children:
        if child.is_alive():
            child.terminate()
    deadline = time.monotonic() + GRACE_S + 5
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            log.warning("api_process_killed", pid=child.pid)
            child.kill()
            child.join()
