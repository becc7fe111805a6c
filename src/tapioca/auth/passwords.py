"""Passwords, hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second
recommendation); a hash made with older parameters is replaced on the next sign-in."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tapioca.errors import ErrorDetail, validation_error

MIN_LENGTH = 10
MAX_LENGTH = 1024  # Argon2 takes any length; a megabyte password is a way to burn CPU

_HASHER = PasswordHasher()

# Checked against when an account does not exist, so that a wrong email costs the same
# time as a wrong password (the answer does not tell which accounts exist).
_DUMMY = _HASHER.hash("not a password of anyone's")


def check_new_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise validation_error([ErrorDetail(field, f"at least {MIN_LENGTH} characters")])
    if len(password) > MAX_LENGTH:
        raise validation_error([ErrorDetail(field, f"at most {MAX_LENGTH} characters")])


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such account, still hashed)."""
    try:
        return _HASHER.verify(stored or _DUMMY, password[:MAX_LENGTH]) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


# Argon2 takes ~0.1 s of CPU and 64 MiB per hash: off the event loop, which keeps
# answering other requests, on threads of their own, at most one per core, so that a
# burst of sign-ins waits its turn instead of taking the memory and every core.
_HASHING = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")


async def hash_off_loop(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_off_loop(stored: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_HASHING, verify_password, stored, password)
