"""`tapioca api` with several processes, each listening on its own SO_REUSEPORT socket.

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

import uvicorn

from tapioca.api.connection import http_options
from tapioca.config import Settings
from tapioca.logging import get_logger

log = get_logger(__name__)

GRACE_S = 10  # uvicorn's graceful shutdown, then the supervisor's own margin
_CHECK_S = 0.5
STARTUP_FAILURE = 3  # as uvicorn exits when the application cannot start


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
    """One API process (the target of a spawned child)."""
    config = uvicorn.Config(
        "tapioca.api.app:create_app",
        factory=True,
        timeout_graceful_shutdown=GRACE_S,
        **http_options(Settings()),
    )
    server = uvicorn.Server(config)
    server.run(sockets=[listening_socket(host, port)])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


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
