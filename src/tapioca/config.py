"""All configuration, read once from the environment (prefix ``TAPIOCA_``)."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path

from croniter import croniter
from limits import RateLimitItem, parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RATE_LIMIT_OFF = "none"


def rate_limit_items(text: str) -> list[RateLimitItem]:
    """The limits a rate-limit setting states (the ``limits`` notation, several separated
    by ';', as "2000/second;60000/minute"), none for "none"; ValueError when ``text``
    states none, or one that allows nothing."""
    if text.strip().lower() == RATE_LIMIT_OFF:
        return []
    try:
        items = parse_many(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a rate limit such as '2000/second;60000/minute', nor 'none'"
        ) from None
    if any(item.amount < 1 for item in items):
        raise ValueError(f"{text!r} allows nothing; 'none' switches the limit off")
    return items


class Mode(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Settings of every Tapioca process. Nothing here connects to anything."""

    model_config = SettingsConfigDict(env_prefix="TAPIOCA_", extra="ignore")

    # where the data lives
    database_url: str | None = Field(
        default=None, description="postgresql://… selects production mode; unset = embedded"
    )
    redis_url: str | None = Field(default=None, description="redis://… (production mode)")
    replica_urls: str = Field(
        default="", description="comma-separated postgresql:// URLs of streaming read replicas"
    )
    replica_check_seconds: float = Field(default=15.0, gt=0)
    replica_max_lag_seconds: float = Field(default=30.0, ge=0)
    data_dir: Path = Field(default=Path("data"), description="directory of the embedded store")

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64, description="uvicorn processes for `api`")
    # HTTP connections (api/connection.py); each process of `api` applies them on its own
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, description="a request's line and headers must arrive within this"
    )
    http_body_timeout_s: float = Field(
        default=30.0, gt=0, description="a request's body must arrive within this (else 408)"
    )
    http_keep_alive_timeout_s: float = Field(
        default=75.0,
        gt=0,
        description="an idle connection between requests is closed after this; above a "
        "proxy's own idle timeout for upstream connections (60 s for nginx and AWS ALB)",
    )
    http_max_connections: int = Field(
        default=1000,
        ge=1,
        description="open connections served at once; a request on one opened beyond gets 503",
    )
    access_log: bool = Field(
        default=False, description="log every HTTP request answered (event request_answered)"
    )

    auto_create_sites: bool | None = Field(
        default=None,
        description="store events of unknown sites (creating them); default on when embedded",
    )
    cors_any_origin: bool = Field(
        default=True,
        description="browsers on any origin may send the events of a site that does not say "
        "(sites made from their first events): else only pages on its domains",
    )
    max_new_sites_per_request: int = Field(
        default=100, ge=1, description="sites one request may create; more → 429, nothing accepted"
    )
    max_new_sites_per_minute: int = Field(
        default=1_000,
        ge=1,
        description="sites events may create in any 60 s (the whole instance in production); "
        "more → 429 with Retry-After",
    )

    # rate limits, in the notation of the `limits` library ("2000/second;60000/minute"),
    # or "none" (off); counted in Redis in production (every API process shares them),
    # in the process embedded. See docs/operations.md, Rate limits.
    rate_limit_ingest_ip: str = Field(
        default="20000/second",
        description="events per client address (a request costs its events): two full "
        "batches of 10,000 a second, so a server-side integration, or many visitors behind "
        "one NAT or proxy, is never slowed; stops one address from taking a whole instance "
        "(about 100,000 events/s)",
    )
    rate_limit_ingest_site: str = Field(
        default="20000/second",
        description="events per site named in a request (each site costs its own events): "
        "far above what a busy site sends (a million views a day is ~12 a second at the "
        "mean, a few hundred at a peak); one site's flood cannot crowd out the others",
    )
    rate_limit_ingest_key: str = Field(
        default="20000/second",
        description="events per write API key (a request costs its events): as much as one "
        "address may send, so a key's integration is never slowed before its address is",
    )
    rate_limit_reports: str = Field(
        default="40/second;1200/minute",
        description="report requests per account, per API key, or per client address for "
        "anonymous readers of public sites: a dashboard asks ~20 reports at once, so two "
        "loads a second, and 20 a second over a minute, a dashboard refreshed every few "
        "seconds; a script reading every report in a loop is slowed",
    )
    rate_limit_sign_in_account: str = Field(
        default="10/minute",
        description="failed sign-ins per account (its email, case-folded): room for a "
        "person's typos, 14,400 guesses a day at most for a password guesser",
    )
    rate_limit_sign_in_ip: str = Field(
        default="30/minute",
        description="failed sign-ins per client address: an office behind one NAT signs "
        "in at once; one address guessing over many accounts is slowed",
    )

    # ingest limits
    max_events_per_request: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_event_bytes: int = Field(default=64 * 1024, ge=256)
    max_future_seconds: int = Field(default=300, ge=0)

    # queue and worker
    stream: str = "tapioca:events"
    consumer_group: str = "tapioca-workers"
    dead_letter_stream: str = "tapioca:events:dead"
    batch_max_events: int = Field(default=10_000, ge=1)
    batch_max_wait_ms: int = Field(default=200, ge=1)
    max_deliveries: int = Field(default=5, ge=1)
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU priority the worker gives up (nice): ingest answers first on a shared "
        "machine; Redis holds what the worker has not written yet",
    )
    batches_in_hand: int = Field(
        default=2, ge=1, le=8, description="batches a worker holds at once (decoding, writing)"
    )
    claim_idle_ms: int = Field(default=30_000, ge=100)
    redis_require_aof: bool = Field(
        default=True, description="refuse to accept events when Redis does not persist (AOF)"
    )
    retry_after_seconds: int = Field(default=2, ge=1)
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    derive_interval_s: float = Field(
        default=1.0, gt=0, description="how often sessions and rollups are brought up to date"
    )

    # the scheduler (scheduler/): cron per job, in each site's zone
    orders_cron: str = Field(
        default="5 0 * * *", description="when the order batch runs (cron, the site's zone)"
    )
    forecast_cron: str = Field(
        default="15 0 * * *", description="when forecasts are made again (cron, the site's zone)"
    )
    scheduler_in_serve: bool = Field(
        default=True, description="`serve` runs the scheduler too (embedded mode)"
    )
    scheduler_tick_s: float = Field(default=15.0, gt=0, description="how often it looks")
    catch_up_days: int = Field(
        default=7, ge=0, le=366, description="missed runs this far back are caught up at start"
    )
    forecast_deadline_s: float = Field(default=20.0, gt=0, description="per series")

    # PostgreSQL pools
    pg_pool_min: int = Field(default=1, ge=0)
    pg_pool_max: int = Field(default=10, ge=1)
    pg_statement_timeout_ms: int = Field(default=30_000, ge=0)
    pg_acquire_timeout_s: float = Field(default=5.0, gt=0)

    # embedded store
    duckdb_readers: int = Field(default=4, ge=1, le=64)
    duckdb_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="embedded: threads of one report statement; derive runs use every core",
    )
    duckdb_memory_limit: str = "2GB"
    answer_cache_slots: int = Field(
        default=256,
        ge=0,
        description="embedded: /stats answers kept until the next write (0 = none)",
    )

    # accounts and keys (docs/security.md)
    secret_key: SecretStr | None = Field(
        default=None,
        description="signs access tokens; at least 32 characters, the same in every API "
        "process; required in production (embedded: generated into the data directory)",
    )
    owner_email: str | None = Field(
        default=None,
        description="with owner_password: the first owner, made when no account exists",
    )
    owner_password: SecretStr | None = Field(default=None, description="see owner_email")
    access_token_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="lifetime of an access token (JWT)"
    )
    refresh_token_days: int = Field(
        default=30, ge=1, le=365, description="lifetime of a refresh token (each use spends it)"
    )
    signup: bool = Field(
        default=False, description="anyone may register an account (else by invitation only)"
    )
    public_url: str | None = Field(
        default=None,
        description="the address people reach this instance at, for the setup link "
        "(default http://HOST:PORT)",
    )

    # identity: cookieless visitor ids are hashed with a salt that rotates daily
    visitor_salt: str | None = Field(
        default=None, description="fixed salt for visitor ids; unset = random daily salt"
    )

    log_level: str = "info"
    log_json: bool = True

    @field_validator(
        "rate_limit_ingest_ip",
        "rate_limit_ingest_site",
        "rate_limit_ingest_key",
        "rate_limit_reports",
        "rate_limit_sign_in_account",
        "rate_limit_sign_in_ip",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        rate_limit_items(value)
        return value

    @field_validator("orders_cron", "forecast_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression such as '5 0 * * *'")
        return value

    @property
    def mode(self) -> Mode:
        return Mode.PRODUCTION if self.database_url else Mode.EMBEDDED

    @property
    def creates_sites(self) -> bool:
        if self.auto_create_sites is not None:
            return self.auto_create_sites
        return self.mode is Mode.EMBEDDED

    @property
    def replica_dsns(self) -> list[str]:
        return [url.strip() for url in self.replica_urls.split(",") if url.strip()]

    @cached_property
    def duckdb_path(self) -> Path:
        return self.data_dir / "tapioca.duckdb"
