"""Roles on a site: viewer (reads reports) < admin (settings, members below admin, keys,
order source) < owner (everything, owners and deleting the site included). An instance
owner is owner of every site."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_named(text: str | None) -> Role | None:
    try:
        return Role(text) if text else None
    except ValueError:
        return None


class Scope(StrEnum):
    """What an API key may do on its site."""

    READ = "read"
    WRITE = "write"
