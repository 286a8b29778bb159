"""Who is calling the admin API and what they may see and change (teams contract §4).

A :class:`Principal` is the caller of ``/api``: a user through a session cookie, an admin API key,
or the ``serve --api-key`` secret. Admins see and change everything; members see and change only
their own accounts and keys, never users, settings or the pool's strategy, and read only their own
audit entries and events. The functions here answer yes or no; the routes turn a no into 403 (a
change) or 404 (reading something the caller may not see: its existence is not revealed).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROLES", "Principal", "may_see"]

ROLES = ("admin", "member")


@dataclass(frozen=True)
class Principal:
    """The caller of an admin request.

    Attributes:
        name: the user name (for a key: its owner, or the key's name when it has none).
        role: ``admin`` or ``member``.
        via: ``session``, ``key`` (a stored admin key) or ``master`` (``serve --api-key``).
        key: the key's name when ``via`` is ``key``.
    """

    name: str
    role: str
    via: str = "session"
    key: str | None = None

    @property
    def is_admin(self) -> bool:
        """True for the ``admin`` role."""
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """How the audit log names the caller: the user name, ``key:<name>``, or ``--api-key``."""
        if self.via == "master":
            return "--api-key"
        if self.via == "key":
            return f"key:{self.key}"
        return self.name

    @property
    def user(self) -> str | None:
        """The user this caller acts as (``None`` for an unowned admin key or ``--api-key``)."""
        if self.via == "session":
            return self.name
        return None


def may_see(principal: Principal, owner: str | None) -> bool:
    """True when ``principal`` may see (and change) a thing owned by ``owner`` (an account or a key):
    an admin always; a member only their own."""
    return principal.is_admin or (principal.user is not None and owner == principal.user)
