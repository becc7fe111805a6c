"""Accounts, roles and API keys from the CLI, on every way it runs: on the embedded store
with no server, through `tapioca serve` while it holds the DuckDB file (its local admin
credential), and on PostgreSQL while `tapioca api` runs. What the CLI does is then seen
over HTTP: signing in, reading reports, keys on reports and on ingest, revocation."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support.procs import BROWSER_UA, Launcher, Server, clean_env, tapioca_bin

pytestmark = pytest.mark.e2e

ROOT, ROOT_PASSWORD = "root@example.com", "root-password-1"
ANN, ANN_PASSWORD = "ann@example.com", "ann-password-12"
BOB, BOB_PASSWORD = "bob@example.com", "bob-password-123"
SECRET = "s" * 48
KEY_NOTE = "The key is shown only now: keep it somewhere safe.\n"
ACCOUNT_FIELDS = {"id", "email", "instance_owner", "created_at"}
SITE: dict[str, Any] = {
    "name": None,
    "timezone": "UTC",
    "domains": [],
    "currency": "USD",
    "page_type_rules": [],
    "public": False,
    "any_origin": False,
}


@dataclass
class Stack:
    """A store, the CLI's environment for it, and a server to check over HTTP.

    ``direct``: the embedded store with no server while the CLI runs (the server is
    stopped before each command and started again to look over HTTP); else the server
    keeps running and the CLI works next to it."""

    launcher: Launcher
    env: dict[str, str]
    start: Callable[[], Server]
    direct: bool
    over_http: bool = False  # the CLI goes through the running server
    data_dir: Path | None = None
    server: Server | None = None
    clients: list[httpx.Client] = field(default_factory=list)
    local_tokens: list[str] = field(default_factory=list)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        if self.direct and self.server is not None:
            self.server.http.stop()
            assert self.data_dir is not None
            assert not (self.data_dir / "local_admin.json").exists()  # removed at stop
            self.server = None
        if stdin is None:
            return self.launcher.run(list(args), self.env)
        self.launcher.base.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [str(tapioca_bin()), *args],
            cwd=self.launcher.base,
            env=clean_env(self.env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def client(self) -> httpx.Client:
        if self.server is None:
            self.server = self.start()
            self._saw_local_credential()
        client = httpx.Client(
            base_url=self.server.base_url, timeout=30.0, headers={"User-Agent": BROWSER_UA}
        )
        self.clients.append(client)
        return client

    def _saw_local_credential(self) -> None:
        """The embedded server leaves a new credential each start, for its owner only."""
        if self.data_dir is None:
            return
        path = self.data_dir / "local_admin.json"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        found = orjson.loads(path.read_bytes())
        assert self.server is not None and found["url"] == self.server.base_url
        assert found["token"].startswith("tpl_")
        assert found["token"] not in self.local_tokens
        self.local_tokens.append(found["token"])


def owner_env() -> dict[str, str]:
    return {"TAPIOCA_OWNER_EMAIL": ROOT, "TAPIOCA_OWNER_PASSWORD": ROOT_PASSWORD}


@pytest.fixture(params=["embedded-direct", "embedded-serve", "production"])
def stack(request: pytest.FixtureRequest, launcher: Launcher, tmp_path: Path) -> Iterator[Stack]:
    quiet = {"TAPIOCA_LOG_LEVEL": "warning"}  # the CLI's stderr: only what it says
    made: Stack
    if request.param == "embedded-direct":
        data = tmp_path / "data"
        made = Stack(
            launcher,
            {"TAPIOCA_DATA_DIR": str(data), **quiet},
            lambda: launcher.serve(data_dir=data),
            direct=True,
            data_dir=data,
        )
        root = made.cli("users", "create", ROOT, "--owner", "--password-stdin", stdin=ROOT_PASSWORD)
        assert root.returncode == 0, root.stderr
    elif request.param == "embedded-serve":
        server = launcher.serve(env=owner_env())
        data = Path(server.env["TAPIOCA_DATA_DIR"])
        made = Stack(
            launcher,
            {"TAPIOCA_DATA_DIR": str(data), **quiet},
            lambda: server,
            direct=False,
            over_http=True,
            data_dir=data,
        )
    else:
        pg_dsn: str = request.getfixturevalue("pg_dsn")
        redis_url: str = request.getfixturevalue("redis_url")
        server_env = {"TAPIOCA_SECRET_KEY": SECRET, **owner_env()}
        server = launcher.production(pg_dsn, redis_url, env=server_env)
        made = Stack(
            launcher,
            {"TAPIOCA_DATABASE_URL": pg_dsn, **quiet},
            lambda: server,
            direct=False,
        )
    try:
        yield made
    finally:
        for client in made.clients:
            client.close()


def shown(done: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON object a command printed (it succeeded and said nothing else)."""
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return orjson.loads(lines[0])


def listed(done: subprocess.CompletedProcess[str]) -> list[Any]:
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def refused(done: subprocess.CompletedProcess[str], line: str) -> None:
    assert (done.returncode, done.stdout, done.stderr) == (1, "", line + "\n")


def sign_in(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def stats(client: httpx.Client, site: str, headers: dict[str, str]) -> httpx.Response:
    return client.get("/stats", params={"site_id": site}, headers=headers)


def error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def page_view(site: str, path: str) -> bytes:
    return orjson.dumps({"site_id": site, "event_type": "page_view", "path": path, "user_id": "u"})


def test_accounts_roles_and_keys_from_the_cli(stack: Stack, tmp_path: Path) -> None:
    # -- accounts, sites, roles and keys from the CLI
    ann = shown(stack.cli("users", "create", ANN, "--password-stdin", stdin=ANN_PASSWORD + "\n"))
    assert set(ann) == ACCOUNT_FIELDS
    assert (ann["email"], ann["instance_owner"]) == (ANN, False)
    made = stack.cli("users", "create", "Bob@Example.com", "--owner", "--password-stdin",
                     stdin=BOB_PASSWORD)  # fmt: skip
    assert ANN_PASSWORD not in made.stdout + made.stderr
    bob = shown(made)
    assert (bob["email"], bob["instance_owner"]) == (BOB, True)
    refused(
        stack.cli("users", "create", ANN, "--password-stdin", stdin=ANN_PASSWORD),
        f"An account '{ANN}' exists already.",
    )
    refused(
        stack.cli("users", "create", "cy@example.com", "--password-stdin", stdin="short\n"),
        "The request is not valid. password: at least 10 characters",
    )
    users = listed(stack.cli("users", "list"))
    assert [user["email"] for user in users] == [ANN, BOB, ROOT]
    assert all(set(user) == ACCOUNT_FIELDS for user in users)  # never a password hash
    assert users[:2] == [ann, bob]

    assert shown(stack.cli("sites", "create", "shop", "--key-required")) == {
        "id": "shop", **SITE, "key_required": True,
    }  # fmt: skip
    assert shown(stack.cli("sites", "create", "other")) == {
        "id": "other", **SITE, "key_required": False,
    }  # fmt: skip
    assert shown(stack.cli("sites", "grant", "shop", ANN, "viewer")) == {
        "site_id": "shop", "email": ANN, "role": "viewer",
    }  # fmt: skip
    refused(
        stack.cli("sites", "grant", "shop", "nobody@example.com", "viewer"),
        "No account 'nobody@example.com'. email: No account 'nobody@example.com'.",
    )
    made = stack.cli("keys", "create", "shop", "--scope", "read", "--name", "dashboard")
    assert (made.returncode, made.stderr) == (0, KEY_NOTE)
    read_key = orjson.loads(made.stdout)
    assert set(read_key) == {"key_id", "key", "scope", "name", "site_id", "created_at"}
    assert (read_key["scope"], read_key["name"], read_key["site_id"]) == (
        "read", "dashboard", "shop",
    )  # fmt: skip
    made = stack.cli("keys", "create", "shop", "--scope", "write")
    assert (made.returncode, made.stderr) == (0, KEY_NOTE)
    write_key = orjson.loads(made.stdout)
    assert (write_key["scope"], write_key["name"]) == ("write", None)
    refused(
        stack.cli("keys", "create", "nosite", "--scope", "read"),
        "Site 'nosite' does not exist. site_id: Site 'nosite' does not exist.",
    )

    # -- what they can do, over HTTP
    client = stack.client()
    as_ann = sign_in(client, ANN, ANN_PASSWORD)
    as_bob = sign_in(client, BOB, BOB_PASSWORD)
    assert stats(client, "shop", as_ann).status_code == 200
    assert error_code(stats(client, "other", as_ann)) == (404, "site_not_found")
    assert stats(client, "other", as_bob).status_code == 200  # an owner of the instance
    reader = {"X-Api-Key": read_key["key"]}
    writer = {"X-Api-Key": write_key["key"]}
    assert stats(client, "shop", reader).status_code == 200
    assert error_code(stats(client, "other", reader)) == (404, "site_not_found")
    assert error_code(client.post("/event", content=page_view("shop", "/key"))) == (
        401, "unauthorized",
    )  # fmt: skip
    assert error_code(client.post("/event", content=page_view("shop", "/key"), headers=reader)) == (
        403,
        "forbidden",
    )
    sent = client.post("/event", content=page_view("shop", "/key"), headers=writer)
    assert sent.status_code == 202, sent.text

    # -- keys as used, a role moved, an account gone, a key revoked
    deadline = time.monotonic() + 10
    while True:  # the time of use is written off the request's path
        keys = listed(stack.cli("keys", "list", "shop"))
        if all(key["last_used_at"] for key in keys) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [(k["key_id"], k["scope"], k["name"], k["starts_with"], k["revoked_at"])
            for k in keys] == [
        (read_key["key_id"], "read", "dashboard", read_key["key"][:12], None),
        (write_key["key_id"], "write", None, write_key["key"][:12], None),
    ]  # fmt: skip
    assert all(key["last_used_at"] for key in keys), keys
    assert all(set(key) == {"key_id", "scope", "name", "starts_with", "created_at",
                            "last_used_at", "revoked_at"} for key in keys)  # fmt: skip
    assert [key["created_at"] for key in keys] == [read_key["created_at"], write_key["created_at"]]

    assert shown(stack.cli("sites", "revoke", "shop", ANN)) == {
        "site_id": "shop", "email": ANN, "role": None,
    }  # fmt: skip
    refused(stack.cli("sites", "revoke", "shop", ANN), f"'{ANN}' has no role to take away.")
    assert shown(stack.cli("sites", "grant", "other", ANN, "viewer"))["role"] == "viewer"
    assert shown(stack.cli("users", "delete", BOB)) == {**bob, "deleted": True}
    refused(stack.cli("users", "delete", BOB), f"No account '{BOB}'. email: No account '{BOB}'.")
    assert shown(stack.cli("keys", "revoke", "shop", read_key["key_id"])) == {
        "key_id": read_key["key_id"], "revoked": True,
    }  # fmt: skip

    client = stack.client()
    began = time.monotonic()
    while (answer := stats(client, "shop", reader)).status_code != 401:
        assert time.monotonic() - began < 3, answer.text
        time.sleep(0.1)
    assert answer.json()["error"]["code"] == "invalid_key"
    sent = client.post("/event", content=page_view("shop", "/key"), headers=writer)
    assert sent.status_code == 202, sent.text
    assert error_code(client.get("/api/v1/auth/me", headers=as_bob)) == (
        401, "invalid_token",
    )  # fmt: skip
    assert error_code(
        client.post("/api/v1/auth/token", json={"email": BOB, "password": BOB_PASSWORD})
    ) == (401, "invalid_credentials")
    assert error_code(stats(client, "shop", as_ann)) == (404, "site_not_found")
    assert stats(client, "other", as_ann).status_code == 200
    revoked = [key for key in listed(stack.cli("keys", "list", "shop")) if key["revoked_at"]]
    assert [key["key_id"] for key in revoked] == [read_key["key_id"]]

    # -- events imported next to (or through) the server, each stored once
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"\n".join(page_view("shop", f"/imported/{n}") for n in range(3)))
    for again in (False, True):
        done = stack.cli("import", str(events), "--batch-size", "2")
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        if stack.over_http:
            assert done.stdout == (
                "imported 3 events through the running server "
                "(an event stored before is stored once)\n"
            )
        else:
            assert done.stdout == (
                "imported 0 new events (3 already stored)\n"
                if again
                else "imported 3 new events (0 already stored)\n"
            )
    assert [user["email"] for user in listed(stack.cli("users", "list"))] == [ANN, ROOT]

    client = stack.client()
    as_root = sign_in(client, ROOT, ROOT_PASSWORD)
    expected = {"/key": 2, "/imported/0": 1, "/imported/1": 1, "/imported/2": 1}
    deadline = time.monotonic() + 20
    while True:  # production: the worker writes the events sent with the key a moment later
        answer = stats(client, "shop", as_root)
        assert answer.status_code == 200, answer.text
        found = {row["path"]: row["views"] for row in answer.json()["top_paths"]}
        if found == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found == expected
    assert answer.json()["total_views"] == 5


def test_a_held_store_without_a_local_credential_is_one_line(launcher: Launcher) -> None:
    server = launcher.serve(env=owner_env())
    data = Path(server.env["TAPIOCA_DATA_DIR"])
    env = {"TAPIOCA_DATA_DIR": str(data), "TAPIOCA_LOG_LEVEL": "warning"}
    held = f"the embedded store {data / 'tapioca.duckdb'} is in use by another process " \
        f"(PID {server.http.pid})"  # fmt: skip
    done = launcher.run(["migrate"], env)
    refused(done, f"{held}: stop `tapioca serve` first (one process at a time opens the file)")
    (data / "local_admin.json").unlink()  # as a server of an older version leaves none
    for command in (["users", "list"], ["sites", "create", "shop"]):
        refused(
            launcher.run(command, env),
            f"{held} and there is no {data / 'local_admin.json'} to reach it with: "
            "stop it and run this command again",
        )


def test_the_password_is_never_an_argument(launcher: Launcher, tmp_path: Path) -> None:
    env = {"TAPIOCA_DATA_DIR": str(tmp_path / "data"), "TAPIOCA_LOG_LEVEL": "warning"}
    done = launcher.run(["users", "create", ANN], env)  # stdin is not a terminal
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "no terminal to ask for the password on: give it on stdin with --password-stdin\n"
    )
    done = launcher.run(["users", "create", ANN, ANN_PASSWORD], env)
    assert (done.returncode, done.stdout) == (2, "")
    assert "Got unexpected extra argument" in done.stderr
    assert listed(launcher.run(["users", "list"], env)) == []
