"""No secret reaches a log line or an error answer: passwords (right and wrong), access
and refresh tokens, API keys (revoked ones too), invitation tokens, the local admin
credential and the instance's own secret, through real `tapioca serve` and `tapioca api` +
`tapioca worker` processes with the access log on. The setup link's token is printed on
purpose, in the one "setup_link" event, and nowhere else.

The calls are those of real clients, mistakes included: a wrong password, a spent refresh
token, a key sent in the query string or in place of a key's id, tokens forged or mangled."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support.accounts import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    PASSWORD,
    basic,
    bearer,
    expired_token,
    new_secret_key,
    tampered_token,
    unique_email,
    unsigned_token,
    wrongly_signed_token,
)
from support.procs import Launcher, Proc, Server

pytestmark = pytest.mark.e2e

ON_PURPOSE = "setup_link"  # the one event that prints a secret: the setup link's token


@dataclass
class Watch:
    """The secrets a test handled, and the error answers it received."""

    secrets: dict[str, str] = field(default_factory=dict)  # label → value
    errors: list[tuple[str, str]] = field(default_factory=list)  # (method, body)

    def secret(self, label: str, value: str) -> str:
        assert len(value) >= 8, f"{label} is too short to look for"
        self.secrets[label] = value
        return value

    def answer(self, response: httpx.Response, status: int) -> dict[str, Any]:
        """``response`` had ``status``; an error answer is kept to be looked through."""
        assert response.status_code == status, f"{response.request.url}: {response.text[:300]}"
        if status >= 400:
            self.errors.append((response.request.method, response.text))
        if not response.content or "json" not in response.headers.get("content-type", ""):
            return {}
        body: dict[str, Any] = response.json()
        return body

    def found_in(self, text: str) -> list[str]:
        return [label for label, value in self.secrets.items() if value in text]


def lines_of(procs: list[Proc]) -> list[tuple[str, str, dict[str, Any]]]:
    """(process, line, record) of every line of every process's stdout and stderr."""
    found = []
    for proc in procs:
        for path in (proc.stdout_path, proc.stderr_path):
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = {}
                found.append((proc.name, line, record if isinstance(record, dict) else {}))
    return found


def leaks(watch: Watch, procs: list[Proc]) -> list[str]:
    """Where a secret shows: in a log line (except the setup link's) or an error answer."""
    problems = []
    for name, line, record in lines_of(procs):
        if record.get("event") == ON_PURPOSE:
            continue
        for label in watch.found_in(line):
            problems.append(f"{label} in a log line of {name}: {line[:400]}")
    for method, body in watch.errors:
        for label in watch.found_in(body):
            problems.append(f"{label} in an error answer to a {method}: {body[:400]}")
    return problems


def stop(server: Server) -> list[Proc]:
    """Stop the server's processes (their logs complete); return them."""
    for worker in server.workers:
        assert worker.stop() == 0, worker.output()
    stopped = server.http.stop()  # uvicorn exits by the signal it drained on
    assert stopped in (0, -signal.SIGTERM), server.http.output()
    return [server.http, *server.workers]


def exercise(server: Server, watch: Watch, instance_secret: str) -> str:
    """A session of an owner, a member and their keys, with the mistakes clients make;
    returns the read key of the site it made."""
    client = server.anonymous  # each request sends the credential it names, or none
    token = "/api/v1/auth/token"
    right = {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    # signing in, right and wrong, JSON and form
    pair = watch.answer(client.post(token, json=right), 200)
    watch.secret("access token", pair["access_token"])
    watch.secret("refresh token", pair["refresh_token"])
    form = watch.answer(
        client.post(token, data={"username": OWNER_EMAIL, "password": OWNER_PASSWORD}), 200
    )
    watch.secret("access token (form)", form["access_token"])
    watch.secret("refresh token (form)", form["refresh_token"])
    wrong = watch.secret("a wrong password", "Wrong-password-4711")
    watch.answer(client.post(token, json={"email": OWNER_EMAIL, "password": wrong}), 401)
    watch.answer(client.post(token, data={"username": OWNER_EMAIL, "password": wrong}), 401)
    watch.answer(client.post(token, json={"email": "nobody@example.com", "password": wrong}), 401)
    watch.answer(client.post(token, json={"email": OWNER_EMAIL}), 422)
    watch.answer(client.post(token, content=b'{"email": "x", "password": "' + wrong.encode()), 422)
    root = bearer(pair["access_token"])
    watch.answer(client.get("/api/v1/auth/me", headers=root), 200)
    # refresh tokens: rotated, reused (which revokes the family), logged out
    refreshed = watch.answer(
        client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 200
    )
    watch.secret("refreshed access token", refreshed["access_token"])
    watch.secret("refreshed refresh token", refreshed["refresh_token"])
    watch.answer(
        client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401
    )
    watch.answer(
        client.post("/api/v1/auth/logout", json={"refresh_token": form["refresh_token"]}), 200
    )
    watch.answer(
        client.post("/api/v1/auth/refresh", json={"refresh_token": form["refresh_token"]}), 401
    )
    # accounts: one made, one refused for its short password
    member = unique_email("member")
    watch.secret("a member's password", PASSWORD)
    watch.answer(
        client.post("/api/v1/users", json={"email": member, "password": PASSWORD}, headers=root),
        201,
    )
    short = watch.secret("a password too short", "Short-pw1")
    watch.answer(
        client.post(
            "/api/v1/users", json={"email": unique_email("x"), "password": short}, headers=root
        ),
        422,
    )
    long = watch.secret("a password too long", "Long-pw-" + "x" * 1100)
    watch.answer(
        client.post(
            "/api/v1/users", json={"email": unique_email("x"), "password": long}, headers=root
        ),
        422,
    )
    watch.answer(
        client.post("/api/v1/users", json={"email": member, "password": 12345678901}, headers=root),
        422,
    )
    signed_in = watch.answer(client.post(token, json={"email": member, "password": PASSWORD}), 200)
    watch.secret("a member's access token", signed_in["access_token"])
    watch.secret("a member's refresh token", signed_in["refresh_token"])
    # a site that takes events only with a key, its keys
    watch.answer(
        client.post("/api/v1/sites", json={"site_id": "shop", "key_required": True}, headers=root),
        201,
    )
    keys = {}
    for scope in ("read", "write", "revoked"):
        body = {"scope": "read" if scope == "read" else "write", "name": scope}
        made = watch.answer(client.post("/api/v1/sites/shop/keys", json=body, headers=root), 201)
        keys[scope] = watch.secret(f"the {scope} key", made["key"])
        if scope == "revoked":
            watch.answer(
                client.delete(f"/api/v1/sites/shop/keys/{made['key_id']}", headers=root), 200
            )
    # an invitation, used once
    guest = unique_email("guest")
    invited = watch.answer(
        client.post("/api/v1/invitations", json={"email": guest, "site_id": "shop"}, headers=root),
        201,
    )
    invitation = watch.secret("an invitation", invited["invitation"])
    register = {"email": guest, "password": PASSWORD, "invitation": invitation}
    watch.answer(client.post("/api/v1/auth/register", json=register), 201)
    watch.answer(client.post("/api/v1/auth/register", json=register), 403)
    watch.answer(
        client.post("/api/v1/auth/register", json={**register, "email": unique_email("y")}), 403
    )
    # keys in use, on ingest and on reports, in every header they are taken from
    event = {"site_id": "shop", "event_type": "page_view", "path": "/"}
    for headers in ({"X-Api-Key": keys["write"]}, basic(keys["write"]), bearer(keys["write"])):
        watch.answer(client.post("/event", json=event, headers=headers), 202)
    for headers in ({"X-Api-Key": keys["read"]}, basic(keys["read"]), bearer(keys["read"])):
        watch.answer(
            client.get("/api/v1/stats/overview", params={"site_id": "shop"}, headers=headers), 200
        )
    # credentials that are not valid
    watch.answer(client.post("/event", json=event, headers={"X-Api-Key": keys["revoked"]}), 401)
    watch.answer(client.post("/event", json=event, headers={"X-Api-Key": keys["read"]}), 403)
    watch.answer(client.post("/event", json=event), 401)
    overview = {"site_id": "shop"}
    watch.answer(
        client.get("/api/v1/stats/overview", params=overview, headers=bearer(keys["revoked"])), 401
    )
    watch.answer(
        client.get("/api/v1/stats/overview", params=overview, headers=bearer(keys["write"])), 403
    )
    me = watch.answer(client.get("/api/v1/auth/me", headers=root), 200)
    account = me["account"]["id"]
    forged = {
        "an expired token": expired_token(instance_secret, account),
        "a tampered token": tampered_token(pair["access_token"], sub="acc_0000000000000000"),
        "an unsigned token": unsigned_token(account),
        "a token of another secret": wrongly_signed_token(account),
        "a mangled token": pair["access_token"][:-6] + "AAAAAA",
    }
    for label, value in forged.items():
        watch.answer(client.get("/api/v1/auth/me", headers=bearer(watch.secret(label, value))), 401)
    mangled = watch.secret("a key with a typo", keys["read"][:-3] + "zzz")
    watch.answer(
        client.get("/api/v1/stats/overview", params=overview, headers=bearer(mangled)), 401
    )
    watch.answer(client.get("/api/v1/auth/me", headers={"Authorization": "Basic !!!"}), 401)
    # mistakes: a key or a token in the query string, a key in place of its id
    mistaken = {**overview, "api_key": keys["read"], "access_token": pair["access_token"]}
    watch.answer(client.get("/api/v1/stats/overview", params=mistaken), 422)
    watch.answer(client.delete(f"/api/v1/sites/shop/keys/{keys['write']}", headers=root), 404)
    watch.answer(client.get(f"/api/v1/sites/{keys['read']}", headers=root), 404)
    return keys["read"]


def test_serve_logs_no_secret(launcher: Launcher) -> None:
    watch = Watch()
    watch.secret("the owner's password", OWNER_PASSWORD)
    env = {
        "TAPIOCA_ACCESS_LOG": "true",
        "TAPIOCA_OWNER_EMAIL": OWNER_EMAIL,
        "TAPIOCA_OWNER_PASSWORD": OWNER_PASSWORD,
    }
    server = launcher.serve(env=env)
    data = Path(server.env["TAPIOCA_DATA_DIR"])
    secret = watch.secret("the instance secret", (data / "secret_key").read_text().strip())
    local = json.loads((data / "local_admin.json").read_text())["token"]
    watch.secret("the local admin credential", local)
    assert server.client.get("/api/v1/auth/me", headers=bearer(local)).json()["local"] is True
    exercise(server, watch, secret)
    procs = stop(server)
    assert_logged_requests(procs)
    problems = leaks(watch, procs)
    assert not problems, "\n".join(problems)


def test_api_and_worker_log_no_secret(launcher: Launcher, pg_dsn: str, redis_url: str) -> None:
    watch = Watch()
    watch.secret("the owner's password", OWNER_PASSWORD)
    secret = watch.secret("the instance secret", new_secret_key())
    env = {
        "TAPIOCA_ACCESS_LOG": "true",
        "TAPIOCA_OWNER_EMAIL": OWNER_EMAIL,
        "TAPIOCA_OWNER_PASSWORD": OWNER_PASSWORD,
        "TAPIOCA_SECRET_KEY": secret,
    }
    server = launcher.production(pg_dsn, redis_url, env=env)
    read = bearer(exercise(server, watch, secret))
    deadline = time.monotonic() + 30  # the worker has written the events sent with a key
    while time.monotonic() < deadline:
        answer = server.client.get(
            "/api/v1/stats/overview", params={"site_id": "shop"}, headers=read
        )
        if answer.status_code == 200 and answer.json()["pageviews"] >= 3:
            break
        time.sleep(0.2)
    assert answer.json()["pageviews"] == 3, answer.text
    procs = stop(server)
    assert_logged_requests(procs)
    problems = leaks(watch, procs)
    assert not problems, "\n".join(problems)


def test_the_setup_links_token_is_printed_in_its_event_only(launcher: Launcher) -> None:
    no_owner = {"TAPIOCA_OWNER_EMAIL": "", "TAPIOCA_OWNER_PASSWORD": ""}  # a fresh instance
    server = launcher.serve(env={"TAPIOCA_ACCESS_LOG": "true", **no_owner})
    records = [record for _, _, record in lines_of([server.http])]
    [link] = [record for record in records if record.get("event") == ON_PURPOSE]
    token = parse_qs(urlsplit(link["url"]).query)["token"][0]
    watch = Watch()
    watch.secret("the setup token", token)
    watch.secret("the owner's password", OWNER_PASSWORD)
    # the owner opens the link, and the page sends the token with the new account
    page = server.client.get(f"/setup?token={token}")
    assert page.status_code == 200
    body = {"token": token, "email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    made = watch.answer(server.client.post("/api/v1/auth/setup", json=body), 201)
    watch.secret("the owner's access token", made["access_token"])
    watch.answer(server.client.post("/api/v1/auth/setup", json=body), 409)
    procs = stop(server)
    assert_logged_requests(procs, "/setup")
    found = [line for _, line, _ in lines_of(procs) if token in line]
    assert len(found) == 1, found  # the setup link itself: the search does find a secret
    problems = leaks(watch, procs)
    assert not problems, "\n".join(problems)


def assert_logged_requests(procs: list[Proc], path: str = "/api/v1/auth/token") -> None:
    """The access log is on: the search went through the lines of requests."""
    answered = [
        record for _, _, record in lines_of(procs) if record.get("event") == "request_answered"
    ]
    assert any(str(record.get("path", "")).startswith(path) for record in answered), answered[:5]
