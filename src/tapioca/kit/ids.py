"""Identifiers: event ids and cookieless visitor ids."""

from __future__ import annotations

import hashlib
import os
import time


def new_event_id() -> str:
    """A time-ordered, random 128-bit id (UUIDv7 layout) as 32 hex characters."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | (rand & ((1 << 76) - 1))
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return f"{value:032x}"


def visitor_id(salt: bytes, site_id: str, ip: str, user_agent: str) -> str:
    """Cookieless visitor id: hash(site, IP, User-Agent) keyed with the day's salt."""
    digest = hashlib.blake2b(
        f"{site_id}\x00{ip}\x00{user_agent}".encode(), key=salt[:64], digest_size=12
    )
    return "v-" + digest.hexdigest()
