"""Live events for ``GET /api/events`` (teams contract §4): a hub with zero cost while nobody listens.

Publishers (the request's exchange, the admin service, the login tasks) call :meth:`EventHub.publish`
with an event kind, its data and the user it concerns; the hub hands it to every subscriber allowed
to see it (admins all, a member only events whose ``owners`` include them), each through a bounded
memory channel (a subscriber that does not keep up loses events rather than slowing the gateway).
:meth:`EventHub.publish` returns at once when there is no subscriber, and :attr:`EventHub.listening`
lets a publisher skip building the data at all.

Account changes (state, cooldown start and end, quota, counters) are found by a watcher task that
runs only while someone is subscribed: once a second it renders the pool's rows and publishes the
rows that changed (at most one ``account`` event per account per second).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from codexgw.policy.access import Principal

__all__ = ["Event", "EventHub", "Subscription"]

log = logging.getLogger("codexgw.upstream.events")

BUFFER = 256
"""Events a subscriber may fall behind by before new ones are dropped for it."""
WATCH_S = 1.0


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without what changes by the clock alone (a cooldown's seconds left, ``in_s``)."""
    cooldown = row.get("cooldown")
    if isinstance(cooldown, dict):
        return {**row, "cooldown": {k: v for k, v in cooldown.items() if k != "in_s"}}
    return row


@dataclass(frozen=True)
class Event:
    """One event: ``kind`` (``account``, ``pool``, ``login``, ``request``, ``key``) and its JSON data."""

    kind: str
    data: dict[str, Any]
    owners: frozenset[str] = frozenset()
    """Users (besides admins) who may see it."""


@dataclass(eq=False)
class Subscription:
    """One subscriber: who, and the channel its events arrive on."""

    principal: Principal
    send: trio.MemorySendChannel[Event]
    receive: trio.MemoryReceiveChannel[Event]
    dropped: int = 0

    def may_see(self, event: Event) -> bool:
        """Admins see everything; members only events naming them among the owners."""
        return self.principal.is_admin or (
            self.principal.user is not None and self.principal.user in event.owners
        )


@dataclass
class EventHub:
    """The subscribers and the account watcher (see the module docstring).

    Args:
        nursery: runs the account watcher while subscribers exist.
        account_rows: returns ``(owner, account shape)`` per account, for the watcher.
    """

    nursery: trio.Nursery
    account_rows: Callable[[], Iterable[tuple[str | None, dict[str, Any]]]] = lambda: ()
    _subs: set[Subscription] = field(default_factory=set)
    _watching: bool = False

    @property
    def listening(self) -> bool:
        """True while at least one client is subscribed."""
        return bool(self._subs)

    def publish(self, kind: str, data: dict[str, Any], *, owners: Iterable[str | None] = ()) -> None:
        """Hand an event to every subscriber allowed to see it (no-op without subscribers)."""
        if not self._subs:
            return
        event = Event(kind, data, frozenset(o for o in owners if o))
        for sub in list(self._subs):
            if sub.may_see(event):
                try:
                    sub.send.send_nowait(event)
                except trio.WouldBlock:
                    sub.dropped += 1
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._subs.discard(sub)

    def subscribe(self, principal: Principal) -> Subscription:
        """A new subscription; call :meth:`unsubscribe` when the client leaves."""
        send, receive = trio.open_memory_channel[Event](BUFFER)
        sub = Subscription(principal, send, receive)
        self._subs.add(sub)
        if not self._watching:
            self._watching = True
            self.nursery.start_soon(self._watch)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """End ``sub`` (its channels close)."""
        self._subs.discard(sub)
        sub.send.close()

    async def _watch(self) -> None:
        """Publish changed account rows once a second while anyone listens."""
        last: dict[Any, dict[str, Any]] = {}
        try:
            while self._subs:
                try:
                    for owner, row in self.account_rows():
                        key, seen = row.get("name"), _comparable(row)
                        if last.get(key) != seen:
                            if key in last:
                                self.publish("account", row, owners=(owner,))
                            last[key] = seen
                except Exception as exc:  # a bug here must not end the serve nursery
                    log.warning("account events: %s", exc)
                await trio.sleep(WATCH_S)
        finally:
            self._watching = False
