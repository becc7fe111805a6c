"""A real headless Chromium (Debian's, installed by scripts/ensure-system-deps.sh, driven
through its chromedriver by Selenium) and the static pages it opens, served on 127.0.0.1.

Host names given to ``chromium(hosts=...)`` resolve to 127.0.0.1 inside the browser only,
and no other name resolves at all: pages served here get origins of their own
(``http://shop.test:PORT``) with no name server asked and no traffic leaving the machine.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

# Headless Chromium names itself "HeadlessChrome", which the bot filter keeps out of the
# reports: the pages here present themselves as the desktop browser they run in.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


def _executable(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/ensure-system-deps.sh (make test does)")
    return found


@contextmanager
def chromium(hosts: tuple[str, ...], workdir: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with its own profile in ``workdir``, which resolves ``hosts``
    to 127.0.0.1 and keeps a log of its network events (``network_events``)."""
    options = Options()
    options.binary_location = _executable("chromium")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--user-agent={USER_AGENT}",
        "--disable-background-networking",  # no calls home: the pages are all it loads
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-sync",
        f"--user-data-dir={workdir / 'profile'}",
        "--host-resolver-rules="
        + ", ".join([*(f"MAP {host} 127.0.0.1" for host in hosts), "MAP * ~NOTFOUND"])
        + ", EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(
        executable_path=_executable("chromedriver"), log_output=str(workdir / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def network_events(driver: webdriver.Chrome, method: str) -> list[dict[str, Any]]:
    """The parameters of the DevTools network events named ``method`` (e.g.
    "Network.responseReceived") logged since the last call."""
    found = []
    entries: list[dict[str, Any]] = driver.get_log("performance")  # type: ignore[no-untyped-call]
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message["method"] == method:
            found.append(message["params"])
    return found


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_pages(folder: Path) -> Iterator[int]:
    """``folder`` served over HTTP on 127.0.0.1 from a free port (yielded)."""
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-pages", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
