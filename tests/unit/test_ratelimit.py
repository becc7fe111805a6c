"""Rate limits on the in-process storage: each limit answers 429 ``rate_limited`` with the
exact Retry-After and a detail naming what was limited once over, counts nothing of a
refused request, and lets requests through again when its window has passed; "none"
switches a limit off without a storage call; a setting that is not a rate limit is a
settings error. The clock of the limits and of the storage is a manual one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import limits.aio.storage.memory
import pytest
from limits.aio.storage import MemoryStorage
from prometheus_client import REGISTRY
from pydantic import ValidationError

import tapioca.auth.ratelimit
from support.rate_limits import LIMITS_OFF, refusal
from tapioca.auth.ratelimit import RateLimits
from tapioca.config import Settings


class ManualClock:
    """``time.time`` and ``time.monotonic`` of the limits and of their storage."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingStorage(MemoryStorage):
    """The in-process storage, counting the calls made to it (not its calls to itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self._in_incr = False

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        self.calls.append("incr")
        self._in_incr = True
        try:
            return await super().incr(key, expiry, amount)
        finally:
            self._in_incr = False

    async def get(self, key: str) -> int:
        if not self._in_incr:
            self.calls.append("get")
        return await super().get(key)

    async def get_expiry(self, key: str) -> float:
        self.calls.append("get_expiry")
        return await super().get_expiry(key)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    manual = ManualClock()
    monkeypatch.setattr(limits.aio.storage.memory, "time", manual)
    monkeypatch.setattr(tapioca.auth.ratelimit, "time", manual)
    return manual


@pytest.fixture
def storage(clock: ManualClock) -> CountingStorage:
    return CountingStorage()


class Made:
    """Rate limits of some settings (every other limit off), closed after the test."""

    def __init__(self, storage: MemoryStorage) -> None:
        self.storage = storage
        self.made: list[RateLimits] = []

    def __call__(self, **settings: str) -> RateLimits:
        made = RateLimits(self.storage, Settings(**{**LIMITS_OFF, **settings}))  # type: ignore[arg-type]
        self.made.append(made)
        return made


@pytest.fixture
async def limits_of(storage: CountingStorage) -> AsyncIterator[Made]:
    made = Made(storage)
    yield made
    for each in made.made:
        await each.close()


IP_REFUSAL = (
    "Too many events from this client address: at most 5 events per minute.",
    [("ip", "at most 5 events per minute from this client address")],
)


def refused(limit: str) -> float:
    """Requests refused so far by ``limit`` (metric ``tapioca_rate_limited_total``)."""
    return REGISTRY.get_sample_value("tapioca_rate_limited_total", {"limit": limit}) or 0.0


async def test_events_per_client_address(limits_of: Made, clock: ManualClock) -> None:
    limits = limits_of(rate_limit_ingest_ip="5/minute")
    before = refused("ingest-ip")
    await limits.ingest("10.0.0.1", {"shop": 3})
    await limits.ingest("10.0.0.1", {"shop": 1, "blog": 1})
    assert await refusal(limits.ingest("10.0.0.1", {"shop": 1})) == (*IP_REFUSAL, "60")
    clock.advance(20.4)
    assert await refusal(limits.ingest("10.0.0.1", {"blog": 1})) == (*IP_REFUSAL, "40")
    assert refused("ingest-ip") - before == 2
    await limits.ingest("10.0.0.2", {"shop": 5})  # another address has its own count
    clock.advance(39.6)  # the window of the first request has passed
    await limits.ingest("10.0.0.1", {"shop": 5})
    assert await refusal(limits.ingest("10.0.0.1", {"shop": 1})) == (*IP_REFUSAL, "60")


async def test_a_refused_request_counts_nothing(limits_of: Made, clock: ManualClock) -> None:
    """Counts taken before the one over its limit are given back."""
    limits = limits_of(rate_limit_ingest_ip="5/minute", rate_limit_ingest_site="4/minute")
    await limits.ingest("10.0.0.1", {"shop": 4})
    clock.advance(1.0)
    assert await refusal(limits.ingest("10.0.0.1", {"shop": 2})) == (*IP_REFUSAL, "59")
    await limits.ingest("10.0.0.1", {"other": 1})  # the address's fifth event
    assert await refusal(limits.ingest("10.0.0.2", {"other": 3, "shop": 1})) == (
        "Too many events for site 'shop': at most 4 events per minute.",
        [("site_id", "at most 4 events per minute for site 'shop'")],
        "59",
    )
    await limits.ingest("10.0.0.2", {"other": 3})  # "other" is at 1 again, and 10.0.0.2 at 0
    await limits.ingest("10.0.0.2", {"blog": 2})
    await refusal(limits.ingest("10.0.0.3", {"other": 1}))


async def test_events_per_site(limits_of: Made, clock: ManualClock) -> None:
    limits = limits_of(rate_limit_ingest_site="3/second")
    await limits.ingest("10.0.0.1", {"shop": 2, "blog": 3})
    await limits.ingest("10.0.0.2", {"shop": 1})
    clock.advance(0.5)
    assert await refusal(limits.ingest("10.0.0.3", {"blog": 1})) == (
        "Too many events for site 'blog': at most 3 events per second.",
        [("site_id", "at most 3 events per second for site 'blog'")],
        "1",
    )
    await refusal(limits.ingest("10.0.0.3", {"shop": 1}))
    clock.advance(0.5)
    await limits.ingest("10.0.0.3", {"shop": 3, "blog": 3})


async def test_events_per_write_api_key(limits_of: Made, clock: ManualClock) -> None:
    limits = limits_of(rate_limit_ingest_key="4/2 seconds")
    await limits.ingest("10.0.0.1", {"shop": 4}, key_id="k1")
    await limits.ingest("10.0.0.1", {"shop": 100})  # no key: not counted against one
    await limits.ingest("10.0.0.1", {"shop": 4}, key_id="k2")
    clock.advance(0.9)
    assert await refusal(limits.ingest("10.0.0.2", {"blog": 1}, key_id="k1")) == (
        "Too many events with this API key: at most 4 events per 2 seconds.",
        [("key", "at most 4 events per 2 seconds with this API key")],
        "2",
    )
    clock.advance(1.1)
    await limits.ingest("10.0.0.2", {"blog": 4}, key_id="k1")


async def test_report_requests_per_reader(limits_of: Made, clock: ManualClock) -> None:
    limits = limits_of(rate_limit_reports="2/second;3/minute")
    for _ in range(2):
        await limits.reports("account:7")
    assert await refusal(limits.reports("account:7")) == (
        "Too many report requests of this account: at most 2 report requests per second.",
        [("account", "at most 2 report requests per second of this account")],
        "1",
    )
    clock.advance(1.0)
    await limits.reports("account:7")  # a new second: the minute's third
    clock.advance(1.0)
    assert await refusal(limits.reports("account:7")) == (
        "Too many report requests of this account: at most 3 report requests per minute.",
        [("account", "at most 3 report requests per minute of this account")],
        "58",
    )
    for reader, field, whose in [
        ("key:k1", "key", "with this API key"),
        ("ip:10.0.0.1", "ip", "from this client address"),
    ]:
        await limits.reports(reader)
        await limits.reports(reader)
        assert await refusal(limits.reports(reader)) == (
            f"Too many report requests {whose}: at most 2 report requests per second.",
            [(field, f"at most 2 report requests per second {whose}")],
            "1",
        )
    with pytest.raises(ValueError, match="a reader is one of account, key, ip"):
        await limits.reports("visitor:1")


async def test_failed_sign_ins_per_account(limits_of: Made, clock: ManualClock) -> None:
    limits = limits_of(rate_limit_sign_in_account="3/minute", rate_limit_sign_in_ip="5/minute")
    for _ in range(10):  # asking does not count
        await limits.sign_in_allowed("Ann@Example.com", "10.0.0.1")
    await limits.sign_in_failed("Ann@Example.com", "10.0.0.1")
    await limits.sign_in_failed("ann@example.com", "10.0.0.2")
    clock.advance(30.0)
    await limits.sign_in_allowed("ANN@example.com", "10.0.0.3")
    await limits.sign_in_failed("ANN@example.com", "10.0.0.3")
    assert await refusal(limits.sign_in_allowed("ann@EXAMPLE.com", "10.0.0.4")) == (
        "Too many failed sign-ins for this account: at most 3 failed sign-ins per minute.",
        [("email", "at most 3 failed sign-ins per minute for this account")],
        "30",
    )
    await limits.sign_in_allowed("bob@example.com", "10.0.0.4")  # another account
    clock.advance(30.0)
    await limits.sign_in_allowed("ann@example.com", "10.0.0.4")


async def test_failed_sign_ins_per_client_address(limits_of: Made, clock: ManualClock) -> None:
    limits = limits_of(rate_limit_sign_in_account="3/minute", rate_limit_sign_in_ip="5/minute")
    for n in range(5):
        await limits.sign_in_allowed(f"user{n}@example.com", "10.0.0.1")
        await limits.sign_in_failed(f"user{n}@example.com", "10.0.0.1")
    clock.advance(12.5)
    assert await refusal(limits.sign_in_allowed("new@example.com", "10.0.0.1")) == (
        "Too many failed sign-ins from this client address: at most 5 failed sign-ins per minute.",
        [("ip", "at most 5 failed sign-ins per minute from this client address")],
        "48",
    )
    await limits.sign_in_allowed("new@example.com", "10.0.0.2")


async def test_none_switches_a_limit_off_without_a_storage_call(
    limits_of: Made, storage: CountingStorage
) -> None:
    limits = limits_of(rate_limit_ingest_ip="NONE")
    assert not limits.counts_ingest
    for _ in range(100):
        await limits.ingest("10.0.0.1", {"shop": 10_000}, key_id="k1")
        await limits.reports("ip:10.0.0.1")
        await limits.sign_in_failed("ann@example.com", "10.0.0.1")
        await limits.sign_in_allowed("ann@example.com", "10.0.0.1")
    assert storage.calls == []
    assert not storage.storage


async def test_a_request_naming_one_site_makes_one_call_per_limit(
    limits_of: Made, storage: CountingStorage
) -> None:
    limits = limits_of(
        rate_limit_ingest_ip="20000/second",
        rate_limit_ingest_site="20000/second",
        rate_limit_ingest_key="20000/second",
    )
    assert limits.counts_ingest
    await limits.ingest("10.0.0.1", {"shop": 10_000})
    assert storage.calls == ["incr", "incr"]
    storage.calls.clear()
    await limits.ingest("10.0.0.1", {"shop": 10_000}, key_id="k1")
    assert storage.calls == ["incr", "incr", "incr"]
    storage.calls.clear()
    await limits.ingest("10.0.0.1", {}, key_id="k1")  # no events: nothing to count
    assert storage.calls == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rate_limit_ingest_ip", "lots"),
        ("rate_limit_ingest_site", ""),
        ("rate_limit_ingest_key", "10 a second"),
        ("rate_limit_reports", "40/second;1200/fortnight"),
        ("rate_limit_sign_in_account", "0/minute"),
        ("rate_limit_sign_in_ip", "-3/minute"),
    ],
)
def test_a_setting_that_is_not_a_rate_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"TAPIOCA_{name.upper()}", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    [error] = caught.value.errors()
    assert error["loc"] == (name,)
    nothing = "allows nothing; 'none' switches the limit off"
    wrong = "is not a rate limit such as '2000/second;60000/minute', nor 'none'"
    assert error["msg"] == f"Value error, {value!r} {nothing if value == '0/minute' else wrong}"


def test_the_defaults_and_none_are_rate_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (
        settings.rate_limit_ingest_ip,
        settings.rate_limit_ingest_site,
        settings.rate_limit_ingest_key,
        settings.rate_limit_reports,
        settings.rate_limit_sign_in_account,
        settings.rate_limit_sign_in_ip,
    ) == ("20000/second", "20000/second", "20000/second", "40/second;1200/minute", "10/minute",
          "30/minute")  # fmt: skip
    monkeypatch.setenv("TAPIOCA_RATE_LIMIT_REPORTS", "None")
    assert Settings().rate_limit_reports == "None"
