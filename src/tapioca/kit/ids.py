"""Identifiers: event ids, request ids and cookieless visitor ids."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import time

# Ids must be unique, not secret: a per-process generator seeded from the OS is enough
# and costs a fraction of os.urandom per call.
_random = random.Random(os.urandom(16))
_request_prefix = f"{_random.getrandbits(48):012x}"
_request_counter = itertools.count()


def new_event_id() -> str:
    """A time-ordered, random 128-bit id (UUIDv7 layout) as 32 hex characters."""
    ms = time.time_ns() // 1_000_000
    rand = _random.getrandbits(74)
    value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | (0x2 << 62) | (rand >> 62 << 64)
    value |= rand & ((1 << 62) - 1)
    return f"{value:032x}"


def new_request_id() -> str:
    return f"{_request_prefix}{next(_request_counter):08x}"


def reseed_after_fork() -> None:
    global _random, _request_prefix
    _random = random.Random(os.urandom(16))
    _request_prefix = f"{_random.getrandbits(48):012x}"


os.register_at_fork(after_in_child=reseed_after_fork)


def visitor_id(salt: bytes, site_id: str, ip: str, user_agent: str) -> str:
    """Cookieless visitor id: hash(site, IP, User-Agent) keyed with the day's salt."""
    digest = hashlib.blake2b(
        f"{site_id}\x00{ip}\x00{user_agent}".encode(), key=salt[:64], digest_size=12
    )
    return "v-" + digest.hexdigest()
