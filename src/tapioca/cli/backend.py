"""Where the commands on sites, accounts, keys and events run: on the store itself, or
through the running server.

PostgreSQL is always worked on directly, as is the embedded DuckDB file when no process
holds it. While `tapioca serve` holds the file (DuckDB lets one process open it), the
commands go to that server's HTTP API with the local admin credential it left in the data
directory (auth/bootstrap.py), which it takes from loopback clients only. Either way the
command acts as an owner of the instance: it has the machine and the store's credentials.

Both backends answer with the same JSON objects, and the server's error answers come back
as the TapiocaError they were made from."""

from __future__ import annotations

import asyncio
import http.client
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import orjson

from tapioca.auth import accounts, keys
from tapioca.auth.bootstrap import LOCAL_FILE, read_local_credential
from tapioca.auth.roles import Role, Scope
from tapioca.auth.secret import instance_secret
from tapioca.cli.common import error_line, fail
from tapioca.cli.importer import check_file, event_batches, import_file
from tapioca.config import Mode, Settings
from tapioca.errors import ErrorDetail, StoreUnavailable, TapiocaError
from tapioca.orders.source import Sealer, connect_source
from tapioca.scheduler.jobs import Context, sync_site
from tapioca.sites.catalog import load_sites
from tapioca.sites.service import SiteChanges, create_site, get_site, update_site
from tapioca.storage import open_store
from tapioca.storage.base import Store

T = TypeVar("T")
JSON = dict[str, Any]


class Backend(Protocol):
    """The operations of the CLI, each answering what the HTTP route answers."""

    async def sites(self) -> list[JSON]: ...
    async def create_site(self, site_id: str, changes: SiteChanges) -> JSON: ...
    async def update_site(self, site_id: str, changes: SiteChanges) -> JSON: ...
    async def create_user(self, email: str, password: str, instance_owner: bool) -> JSON: ...
    async def users(self) -> list[JSON]: ...
    async def delete_user(self, email: str) -> JSON: ...
    async def grant(self, site_id: str, email: str, role: Role) -> JSON: ...
    async def revoke(self, site_id: str, email: str) -> JSON: ...
    async def create_key(self, site_id: str, scope: Scope, name: str | None) -> JSON: ...
    async def keys(self, site_id: str) -> list[JSON]: ...
    async def revoke_key(self, site_id: str, key_id: str) -> JSON: ...
    async def import_events(self, path: Path, site_id: str | None, batch_size: int) -> str:
        """Import a CSV or NDJSON file (all of it checked first); the line that says so."""
        ...

    async def connect_orders(self, site_id: str, body: JSON) -> JSON:
        """Set the site's order source (the body of PUT .../order-source)."""
        ...

    async def sync_orders(self, site_id: str, span: tuple[date, date] | None) -> JSON:
        """Run the site's order batch now, and its forecasts after."""
        ...

    async def order_sites(self) -> list[str]:
        """The sites with an order source."""
        ...


class StoreBackend:
    """On the store, with the checks of the HTTP routes an instance owner passes."""

    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        self._store = store
        self._settings = settings or Settings()

    def _jobs(self) -> Context:
        sealer = Sealer(instance_secret(self._settings))
        return Context(self._store, self._store, sealer, self._settings.forecast_deadline_s)

    async def sites(self) -> list[JSON]:
        return [site.as_dict() for site in (await load_sites(self._store)).values()]

    async def create_site(self, site_id: str, changes: SiteChanges) -> JSON:
        return (await create_site(self._store, site_id, changes)).as_dict()

    async def update_site(self, site_id: str, changes: SiteChanges) -> JSON:
        return (await update_site(self._store, site_id, changes)).as_dict()

    async def create_user(self, email: str, password: str, instance_owner: bool) -> JSON:
        account = await accounts.create_account(
            self._store, email, password, instance_owner=instance_owner
        )
        return account.as_dict()

    async def users(self) -> list[JSON]:
        return [account.as_dict() for account in await accounts.list_accounts(self._store)]

    async def delete_user(self, email: str) -> JSON:
        account = await accounts.delete_account(self._store, email)
        return {**account.as_dict(), "deleted": True}

    async def grant(self, site_id: str, email: str, role: Role) -> JSON:
        await get_site(self._store, site_id)
        account = await accounts.account_by_email(self._store, email)
        await accounts.set_role(self._store, site_id, account, role)
        return {"site_id": site_id, "email": account.email, "role": role.value}

    async def revoke(self, site_id: str, email: str) -> JSON:
        await get_site(self._store, site_id)
        account = await accounts.account_by_email(self._store, email)
        current = await accounts.role_on(self._store, site_id, account)
        if current is None or account.instance_owner:
            raise TapiocaError(
                404, "member_not_found", f"'{account.email}' has no role to take away."
            )
        await accounts.remove_role(self._store, site_id, account)
        return {"site_id": site_id, "email": account.email, "role": None}

    async def create_key(self, site_id: str, scope: Scope, name: str | None) -> JSON:
        await get_site(self._store, site_id)
        return await keys.create_key(self._store, site_id, scope, name, None)

    async def keys(self, site_id: str) -> list[JSON]:
        await get_site(self._store, site_id)
        return await keys.list_keys(self._store, site_id)

    async def revoke_key(self, site_id: str, key_id: str) -> JSON:
        await get_site(self._store, site_id)
        await keys.revoke_key(self._store, site_id, key_id)
        return {"key_id": key_id, "revoked": True}

    async def import_events(self, path: Path, site_id: str | None, batch_size: int) -> str:
        received, inserted = await import_file(
            path, self._store, site_id=site_id, batch_size=batch_size
        )
        return f"imported {inserted} new events ({received - inserted} already stored)"

    async def connect_orders(self, site_id: str, body: JSON) -> JSON:
        source = await connect_source(
            self._store, self._jobs().sealer, site_id, body["url"], body.get("timezone"),
            body.get("counted_statuses"), body.get("mapping"), body.get("lookback_days"),
        )  # fmt: skip
        return source.public()

    async def sync_orders(self, site_id: str, span: tuple[date, date] | None) -> JSON:
        await get_site(self._store, site_id)
        return await sync_site(self._jobs(), site_id, "cli", span)

    async def order_sites(self) -> list[str]:
        rows = await self._store.fetch("SELECT site_id FROM order_source ORDER BY site_id")
        return [row[0] for row in rows]


class Unreachable(Exception):
    """The running server did not answer."""

    def __init__(self, url: str, exc: BaseException) -> None:
        super().__init__(
            f"cannot reach the running server at {url} ({type(exc).__name__}): "
            "is `tapioca serve` still running?"
        )


def _segment(value: str) -> str:
    return quote(value, safe="")


def _site_body(changes: SiteChanges) -> JSON:
    rules = changes.page_type_rules
    body = {
        "name": changes.name,
        "timezone": changes.timezone,
        "domains": changes.domains,
        "currency": changes.currency,
        "page_type_rules": None
        if rules is None
        else [{"pattern": pattern, "page_type": kind} for pattern, kind in rules],
        "public": changes.public,
        "any_origin": changes.any_origin,
        "key_required": changes.key_required,
    }
    return {name: value for name, value in body.items() if value is not None}


def _without_role(site: JSON) -> JSON:
    """A site as the store answers it (the HTTP routes add the caller's role)."""
    return {name: value for name, value in site.items() if name != "role"}


def _bodies(events: list[Any], limit: int) -> Iterator[bytes]:
    """JSON arrays of ``events`` of at most ``limit`` bytes each (one event may be more)."""
    parts: list[bytes] = []
    size = 2  # the brackets
    for event in events:
        part = orjson.dumps(event)
        if parts and size + 1 + len(part) > limit:
            yield b"[" + b",".join(parts) + b"]"
            parts, size = [], 2
        size += len(part) + (1 if parts else 0)  # a comma before all but the first
        parts.append(part)
    if parts:
        yield b"[" + b",".join(parts) + b"]"


def _error_of(status: int, payload: bytes) -> TapiocaError:
    """The TapiocaError of an error answer (api.md, Errors)."""
    try:
        error = orjson.loads(payload)["error"]
        details = [ErrorDetail(str(d["field"]), str(d["message"])) for d in error["details"]]
        return TapiocaError(status, str(error["code"]), str(error["message"]), details)
    except (ValueError, KeyError, TypeError):
        return TapiocaError(status, "http_error", f"The server answered HTTP {status}.")


SYNC_TIMEOUT_S = 3600.0  # a backfill of a large order database


class HttpBackend:
    """Through the HTTP API of the server at ``url``, with its local admin credential."""

    def __init__(self, url: str, token: str, settings: Settings, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self.url = url
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._token = token
        self._timeout = timeout
        self._max_events = settings.max_events_per_request
        self._max_bytes = settings.max_body_bytes

    def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(self.url, exc) from exc
        finally:
            connection.close()

    async def _call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> Any:
        data = raw if raw is not None else None if body is None else orjson.dumps(body)
        status, payload = await asyncio.to_thread(self._exchange, method, path, data)
        if not 200 <= status < 300:
            raise _error_of(status, payload)
        return orjson.loads(payload) if payload else None

    async def sites(self) -> list[JSON]:
        answer = await self._call("GET", "/api/v1/sites")
        return [_without_role(site) for site in answer["sites"]]

    async def create_site(self, site_id: str, changes: SiteChanges) -> JSON:
        body = {"site_id": site_id, **_site_body(changes)}
        return _without_role(await self._call("POST", "/api/v1/sites", body))

    async def update_site(self, site_id: str, changes: SiteChanges) -> JSON:
        path = f"/api/v1/sites/{_segment(site_id)}"
        answer: JSON = await self._call("PATCH", path, _site_body(changes))
        return answer

    async def create_user(self, email: str, password: str, instance_owner: bool) -> JSON:
        body = {"email": email, "password": password, "instance_owner": instance_owner}
        answer: JSON = await self._call("POST", "/api/v1/users", body)
        return answer

    async def users(self) -> list[JSON]:
        answer = await self._call("GET", "/api/v1/users")
        return list(answer["users"])

    async def delete_user(self, email: str) -> JSON:
        answer: JSON = await self._call("DELETE", f"/api/v1/users/{_segment(email)}")
        return answer

    def _member(self, site_id: str, email: str) -> str:
        return f"/api/v1/sites/{_segment(site_id)}/members/{_segment(email)}"

    async def grant(self, site_id: str, email: str, role: Role) -> JSON:
        answer: JSON = await self._call("PUT", self._member(site_id, email), {"role": role.value})
        return answer

    async def revoke(self, site_id: str, email: str) -> JSON:
        answer: JSON = await self._call("DELETE", self._member(site_id, email))
        return answer

    async def create_key(self, site_id: str, scope: Scope, name: str | None) -> JSON:
        path = f"/api/v1/sites/{_segment(site_id)}/keys"
        answer: JSON = await self._call("POST", path, {"scope": scope.value, "name": name})
        return answer

    async def keys(self, site_id: str) -> list[JSON]:
        answer = await self._call("GET", f"/api/v1/sites/{_segment(site_id)}/keys")
        return list(answer["keys"])

    async def revoke_key(self, site_id: str, key_id: str) -> JSON:
        path = f"/api/v1/sites/{_segment(site_id)}/keys/{_segment(key_id)}"
        answer: JSON = await self._call("DELETE", path)
        return answer

    async def import_events(self, path: Path, site_id: str | None, batch_size: int) -> str:
        """The file checked as a whole, then sent to POST /events in batches."""
        check_file(path, site_id=site_id, batch_size=batch_size)
        sent = 0
        size = min(batch_size, self._max_events)
        for events in event_batches(path, site_id=site_id, batch_size=size):
            for body in _bodies(events, self._max_bytes):
                try:
                    answer = await self._call("POST", "/events", raw=body)
                except TapiocaError as exc:
                    if sent:
                        exc.message += (
                            f" The server took the file's first {sent} events; importing "
                            "the file again stores each event once."
                        )
                    raise
                sent += int(answer["accepted"])
        return (
            f"imported {sent} events through the running server "
            "(an event stored before is stored once)"
        )

    async def connect_orders(self, site_id: str, body: JSON) -> JSON:
        answer: JSON = await self._call(
            "PUT", f"/api/v1/sites/{_segment(site_id)}/order-source", body
        )
        return answer

    async def sync_orders(self, site_id: str, span: tuple[date, date] | None) -> JSON:
        query = f"?start_date={span[0]}&end_date={span[1]}" if span else ""
        path = f"/api/v1/sites/{_segment(site_id)}/order-source/sync{query}"
        self._timeout = max(self._timeout, SYNC_TIMEOUT_S)
        answer: JSON = await self._call("POST", path)
        return answer

    async def order_sites(self) -> list[str]:
        found = []
        for site in await self.sites():
            try:
                await self._call("GET", f"/api/v1/sites/{_segment(site['id'])}/order-source")
            except TapiocaError as exc:
                if exc.status == 404:
                    continue
                raise
            found.append(site["id"])
        return found


# -- choosing -----------------------------------------------------------------------


class StoreLocked(Exception):
    """Another process (`tapioca serve`) holds the embedded store's DuckDB file."""

    def __init__(self, path: Path, holder: str | None) -> None:
        by = f"another process (PID {holder})" if holder else "another process"
        super().__init__(f"the embedded store {path} is in use by {by}")


_LOCKED = "Could not set lock on file"
_HOLDER = re.compile(r"\(PID (\d+)\)")


def _open(settings: Settings) -> Store:
    if settings.mode is Mode.PRODUCTION:
        return open_store(settings)
    import duckdb

    try:
        return open_store(settings)
    except duckdb.IOException as exc:
        if _LOCKED not in str(exc):
            raise
        holder = _HOLDER.search(str(exc))
        raise StoreLocked(settings.duckdb_path, holder[1] if holder else None) from exc


async def _on_store(
    settings: Settings, job: Callable[[Store], Awaitable[T]], migrate_first: bool
) -> T:
    store = _open(settings)
    try:
        if migrate_first:
            await store.migrate()
        return await job(store)
    finally:
        await store.close()


def _unavailable(settings: Settings, exc: StoreUnavailable) -> NoReturn:
    if settings.database_url:
        from tapioca.storage.read_router import display_name

        fail(
            f"cannot reach the database at {display_name(settings.database_url)} ({exc}): "
            "is PostgreSQL running there, and is TAPIOCA_DATABASE_URL right?"
        )
    fail(f"cannot open the embedded store {settings.duckdb_path} ({exc})")


def on_store(
    settings: Settings, job: Callable[[Store], Awaitable[T]], *, migrate_first: bool = True
) -> T:
    """``job`` on the configured store (migrated first), closed after. A store that cannot
    be reached, or an embedded one that `tapioca serve` holds, ends the command with one
    line, and exit status 1."""
    try:
        return asyncio.run(_on_store(settings, job, migrate_first))
    except StoreLocked as exc:
        fail(f"{exc}: stop `tapioca serve` first (one process at a time opens the file)")
    except StoreUnavailable as exc:
        _unavailable(settings, exc)


async def _through(backend: Backend, job: Callable[[Backend], Awaitable[T]]) -> T:
    return await job(backend)


def with_backend(settings: Settings, job: Callable[[Backend], Awaitable[T]]) -> T:
    """``job`` on the store, or through the running server when it holds the embedded
    store. An error answer ends the command with one line (its message and details),
    and exit status 1."""
    try:
        try:
            return asyncio.run(
                _on_store(settings, lambda store: job(StoreBackend(store, settings)), True)
            )
        except StoreLocked as locked:
            server = read_local_credential(settings.data_dir)
            if server is None:
                fail(
                    f"{locked} and there is no {settings.data_dir / LOCAL_FILE} to reach it "
                    "with: stop it and run this command again"
                )
            return asyncio.run(_through(HttpBackend(*server, settings), job))
    except StoreUnavailable as exc:
        _unavailable(settings, exc)
    except Unreachable as exc:
        fail(str(exc))
    except TapiocaError as exc:
        fail(error_line(exc))
