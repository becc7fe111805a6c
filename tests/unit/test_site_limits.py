"""The new-site allowance (a bucket that refills evenly) and the 429 it gives."""

from __future__ import annotations

import pytest

from tapioca.sites.limits import LocalAllowance, NewSiteLimits, next_full_at, too_many_new_sites

# (seconds after the start, sites asked for, seconds to wait: 0.0 = taken), with 6 a minute
# (one site every 10 s): the bucket holds 6, refills one per 10 s, refuses whole requests.
STEPS_6_A_MINUTE = [
    (0.0, 4, 0.0),
    (0.0, 3, 10.0),  # 7 > 6: nothing taken
    (0.0, 2, 0.0),  # the bucket is empty now
    (5.0, 1, 5.0),
    (10.0, 1, 0.0),
    (10.0, 1, 10.0),
    (100.0, 6, 0.0),  # long since full again
    (100.0, 1, 10.0),
]


async def test_the_bucket_refills_evenly_and_refuses_whole_requests() -> None:
    allowance = LocalAllowance(6)
    start = 1_800_000_000.0
    got = [await allowance.take(count, start + at) for at, count, _ in STEPS_6_A_MINUTE]
    assert got == pytest.approx([wait for _, _, wait in STEPS_6_A_MINUTE])


def test_a_bucket_of_the_past_is_full() -> None:
    assert next_full_at(0.0, 1000.0, 6, 6) == (1060.0, 0.0)
    full_at, wait = next_full_at(1060.0, 1000.0, 1, 6)
    assert full_at == 1060.0
    assert wait == pytest.approx(10.0)


def test_a_request_may_not_name_more_new_sites_than_a_minute_makes() -> None:
    assert NewSiteLimits(per_request=100, per_minute=1000).request_cap == 100
    assert NewSiteLimits(per_request=100, per_minute=40).request_cap == 40


def test_the_error_names_a_few_new_sites_and_counts_the_rest() -> None:
    error = too_many_new_sites([f"s{i}" for i in range(10)], "Too many.", 7.2)
    assert (error.status, error.code, error.message) == (429, "too_many_new_sites", "Too many.")
    assert error.headers == {"Retry-After": "8"}
    assert [(d.field, d.message) for d in error.details] == [
        ("site_id", "new sites 's0', 's1', 's2' and 7 more")
    ]
    few = too_many_new_sites(["a", "b"], "Too many.")
    assert few.headers == {}
    assert [d.message for d in few.details] == ["new sites 'a', 'b'"]
