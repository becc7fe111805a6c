"""The README's first steps, run as written: `make run`'s variables make the owner, and
its curl lines send an event, sign in, make a read key and read /stats with it. A fresh
instance without them logs a setup link that makes the owner."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support.procs import Launcher

pytestmark = pytest.mark.e2e

README = Path(__file__).parents[2] / "README.md"
WRITTEN_URL = "http://127.0.0.1:8000"


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)


def documents(text: str) -> list[Any]:
    """The JSON documents printed one after the other."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def test_the_readme_curl_lines_work_as_written(launcher: Launcher) -> None:
    run_line, curl_block, *_ = bash_blocks()
    assert run_line.strip().endswith("make run")
    env = dict(re.findall(r"(TAPIOCA_\w+)=('[^']*'|\S+)", run_line))
    env = {name: value.strip("'") for name, value in env.items()}
    assert set(env) == {"TAPIOCA_OWNER_EMAIL", "TAPIOCA_OWNER_PASSWORD"}
    server = launcher.serve(env=env)
    script = curl_block.replace(WRITTEN_URL, server.base_url)
    assert script != curl_block
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    accepted, stats = documents(done.stdout)  # curl ends no answer with a newline
    assert accepted["status"] == "accepted"
    assert stats == {
        "site_id": "test-site",
        "date": None,
        "start_date": None,
        "end_date": None,
        "total_views": 1,
        "unique_users": 1,
        "top_paths": [{"path": "/home", "views": 1}],
    }
    anonymous = httpx.get(f"{server.base_url}/stats", params={"site_id": "test-site"})
    assert anonymous.status_code == 401


def test_a_fresh_instance_logs_a_setup_link_that_makes_the_owner(launcher: Launcher) -> None:
    server = launcher.serve(env={"TAPIOCA_OWNER_EMAIL": "", "TAPIOCA_OWNER_PASSWORD": ""})
    links = [
        orjson.loads(line)
        for line in server.output().splitlines()
        if line.startswith("{") and '"setup_link"' in line
    ]
    assert len(links) == 1, server.output()
    url = links[0]["url"]
    assert url.startswith(f"{server.base_url}/setup?token=tps_")
    assert httpx.get(url).status_code == 200
    token = url.split("token=", 1)[1]
    body = {"token": token, "email": "first@example.com", "password": "a long password"}
    made = httpx.post(f"{server.base_url}/api/v1/auth/setup", json=body)
    assert made.status_code == 201, made.text
    again = httpx.post(f"{server.base_url}/api/v1/auth/setup", json=body)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_set_up")
    me = httpx.get(
        f"{server.base_url}/api/v1/auth/me",
        headers={"Authorization": f"Bearer {made.json()['access_token']}"},
    )
    assert me.json()["account"]["email"] == "first@example.com"
    assert me.json()["instance_owner"] is True
