"""Access tokens (JWT, HS256 with the instance secret) and the random secrets of refresh
tokens, invitations and API keys, stored by their SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "tapioca"
_REQUIRED = ["exp", "iat", "sub", "iss", "typ"]


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int  # seconds


class InvalidToken(Exception):
    """Expired, tampered with, signed with another key or algorithm, or not ours."""


_VERIFIED_MAX = 10_000  # tokens kept as verified (each a few hundred bytes)


class TokenSigner:
    def __init__(self, secret: bytes, ttl: timedelta) -> None:
        self._secret = secret
        self._ttl = ttl
        # token -> (account id, expiry as a Unix time): a token checked once is the same
        # token until it expires, and every report request carries one (decoding it
        # again costs more than the report's own site lookup)
        self._verified: dict[str, tuple[str, float]] = {}

    def issue(self, account_id: str, now: datetime | None = None) -> AccessToken:
        now = now or datetime.now(UTC)
        claims = {
            "sub": account_id,
            "iss": ISSUER,
            "typ": "access",
            "iat": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return AccessToken(token, int(self._ttl.total_seconds()))

    def verify(self, token: str) -> str:
        """The account id of a valid access token; InvalidToken otherwise. Only HS256 is
        accepted (never "none", never a key the token names)."""
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[1]:
                return known[0]
            del self._verified[token]
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": _REQUIRED},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
            raise InvalidToken("not an access token")
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (str(claims["sub"]), float(claims["exp"]))
        return str(claims["sub"])


def looks_like_jwt(text: str) -> bool:
    return text.count(".") == 2 and text.startswith("eyJ")


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    """A random secret (``nbytes`` of entropy, URL-safe), with a recognisable prefix."""
    return prefix + secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256. The secrets are random with 256 bits of
    entropy, so a fast hash is as good as a slow one, and a stolen table holds nothing
    that can be used."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"
