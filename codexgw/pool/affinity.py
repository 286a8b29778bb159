"""Session affinity: keep one conversation on one account while it is healthy (sans-IO).

Prompt caching upstream is per account, so the turns of a conversation should keep landing on the
account that served its first turn (design.md §3 "Pool"). :func:`session_key` names the conversation
a request belongs to; :class:`AffinityTable` remembers which account serves each conversation, for a
TTL after its latest request, within a bounded size. :meth:`codexgw.pool.scheduler.Pool.pick` combines
the two with the account state: it uses the bound account while that is usable and moves the session
(and its binding) when not.

Nothing here reads the clock or does I/O; every time is epoch seconds passed in as ``now``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["DERIVED_PREFIX", "AffinityTable", "session_key"]

_SESSION_HEADERS = ("session-id", "session_id")
_LEADING_ROLES = frozenset({"system", "developer"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


DERIVED_PREFIX = "conv-"
"""The prefix of a key :func:`session_key` guessed from the conversation's opening."""


class _Bindings:
    """One bounded, TTL'd map ``session key -> (account id, bound at, shared at)`` (epoch s),
    least recently bound first."""

    __slots__ = ("entries", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self.entries: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        self.max_entries = max_entries

    def put(self, key: str, entry: tuple[int, float, float]) -> None:
        entries = self.entries
        entries[key] = entry
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def remove_where(self, doomed: Callable[[tuple[int, float, float]], bool]) -> int:
        """Remove every binding whose entry ``doomed`` is true for. Returns how many."""
        entries = self.entries
        keys = [key for key, entry in entries.items() if doomed(entry)]
        for key in keys:
            del entries[key]
        return len(keys)

    def expire(self, now: float, ttl_s: float) -> None:
        """Drop the expired bindings at the old end (stops at the first live one)."""
        entries = self.entries
        while entries:
            oldest_key, (_, bound_at, _) = next(iter(entries.items()))
            if now < bound_at + ttl_s:
                break
            del entries[oldest_key]


class AffinityTable:
    """Bindings ``session key -> account id``, each valid for ``ttl_s`` after it was last bound.

    A binding made at ``t`` is valid while ``now < t + ttl_s``. Binding again (every request of the
    session does, through ``Pool.pick``) restarts its TTL, so an active session never expires. At most
    ``max_entries`` bindings of sessions the client named (``sid-``/``pck-`` keys) and at most
    ``derived_max_entries`` of sessions guessed from a conversation's opening (``conv-`` keys:
    every one-off request without a session makes a new one, so they get their own, smaller
    budget and cannot push out the named ones) are kept; binding a new session beyond its budget
    evicts that budget's least recently bound. About 400 bytes of memory per binding (measured in
    the soak: README "How this is tested", the soak's paragraph), so the defaults hold at most
    ~44 MiB.

    Args:
        ttl_s: seconds a binding lives after its latest ``bind`` (> 0).
        max_entries: the bound on named sessions (>= 1).
        derived_max_entries: the bound on guessed sessions (>= 1).

    Raises:
        ValueError: ``ttl_s <= 0`` or a bound < 1.
    """

    def __init__(self, ttl_s: float = 3600.0, max_entries: int = 100_000, derived_max_entries: int = 10_000) -> None:
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, not {ttl_s!r}")
        if max_entries < 1 or derived_max_entries < 1:
            raise ValueError(f"the bounds must be at least 1, not {max_entries!r} and {derived_max_entries!r}")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.derived_max_entries = derived_max_entries
        self._named = _Bindings(max_entries)
        self._derived = _Bindings(derived_max_entries)
        self.journal: dict[str, tuple[int, float]] | None = None
        """When a dict (``serve --workers``, ``pool/sync.py``): the bindings to tell the other
        processes, ``session → (account id, bound at)``: new or moved bindings, and a binding's
        refresh once per ``ttl_s / 4``. ``None``: nothing is journaled."""

    def _of(self, session_key: str) -> _Bindings:
        return self._derived if session_key.startswith(DERIVED_PREFIX) else self._named

    def __len__(self) -> int:
        """Number of stored bindings (both budgets), expired ones not yet purged included."""
        return len(self._named.entries) + len(self._derived.entries)

    def get(self, session_key: str, now: float) -> int | None:
        """The account bound to ``session_key`` at ``now`` (epoch s); ``None`` when unbound or expired.

        Does not restart the TTL (``bind`` does). An expired binding found here is removed.
        """
        entries = self._of(session_key).entries
        entry = entries.get(session_key)
        if entry is None:
            return None
        account_id, bound_at = entry[0], entry[1]
        if now >= bound_at + self.ttl_s:
            del entries[session_key]
            return None
        return account_id

    def bind(self, session_key: str, account_id: int, now: float) -> None:
        """Bind ``session_key`` to ``account_id`` as of ``now`` (epoch s), replacing any binding.

        Also drops expired bindings at the old end of its budget and, beyond the budget, the least
        recently bound ones.
        """
        bindings = self._of(session_key)
        shared_at = now
        previous = bindings.entries.get(session_key)
        if self.journal is None:
            pass
        elif previous is None or previous[0] != account_id or now >= previous[2] + self.ttl_s / 4:
            self.journal[session_key] = (account_id, now)
        else:
            shared_at = previous[2]
        bindings.put(session_key, (account_id, now, shared_at))
        bindings.expire(now, self.ttl_s)

    def learn(self, session_key: str, account_id: int, bound_at: float) -> None:
        """Take in another process's binding (``pool/sync.py``), not journaled: it replaces ours
        when it is at least as recent (``bound_at``, epoch s); an older one only moves nothing."""
        bindings = self._of(session_key)
        current = bindings.entries.get(session_key)
        if current is not None and current[1] > bound_at:
            return
        bindings.put(session_key, (account_id, bound_at, bound_at))

    def unbind(self, session_key: str) -> None:
        """Forget ``session_key``'s binding (no-op if none)."""
        self._of(session_key).entries.pop(session_key, None)

    def drop_account(self, account_id: int) -> int:
        """Forget every binding to ``account_id`` (e.g. the account was removed). Returns how many."""
        return sum(b.remove_where(lambda entry: entry[0] == account_id) for b in (self._named, self._derived))

    def purge(self, now: float) -> int:
        """Drop every binding expired at ``now`` (epoch s). Returns how many."""
        ttl_s = self.ttl_s
        return sum(b.remove_where(lambda entry: now >= entry[1] + ttl_s) for b in (self._named, self._derived))

def session_key(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """Name the conversation a request belongs to, for affinity (design.md §3 "Pool").

    Sources, first match wins:

    1. the client's ``session-id`` or ``session_id`` header (any case; Codex CLI sends it,
       codex-protocol.md §6.2) → ``"sid-<hex>"``;
    2. the body's ``prompt_cache_key`` (a non-empty string) → ``"pck-<hex>"``;
    3. the conversation's opening → ``"conv-<hex>"``: for a Responses body (``input``), the
       ``instructions`` and the input items up to and including the first that is not a
       ``system``/``developer`` message (usually just the first item; a string ``input`` counts as
       one user message); for a Chat Completions body (``messages``), the messages up to and including
       the first that is not ``system``/``developer`` (usually the first 2: system and first user).
       Later turns resend the same opening, so they get the same key. Only ``type`` (default
       ``"message"``), ``role`` and ``content`` of an item count (ids and statuses a client adds later
       do not), and text-only content part lists count as their joined text.

    Each ``<hex>`` is 24 hex digits of SHA-256 of the source, so keys are short, stable across
    processes and carry no client text. Two conversations with the same opening share a key.

    Args:
        headers: the client's request headers (a ``dict`` or any ``Mapping``; names in any case).
        body: the parsed JSON request body.

    Returns:
        The key, or ``None`` when none of the sources is present. Never raises.
    """
    for name, value in headers.items():
        if str(name).lower() in _SESSION_HEADERS and isinstance(value, str) and value.strip():
            return "sid-" + _digest(value.strip())
    if not isinstance(body, Mapping):
        return None
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return "pck-" + _digest(cache_key)
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        return DERIVED_PREFIX + _digest(_canonical(["chat", _opening(messages)]))
    items = body.get("input")
    if isinstance(items, str) and items:
        items = [{"role": "user", "content": items}]
    if isinstance(items, list) and items:
        instructions = body.get("instructions")
        return DERIVED_PREFIX + _digest(_canonical(["responses", instructions, _opening(items)]))
    return None


def _opening(items: list[Any]) -> list[Any]:
    """Leading system/developer items and the first other item, each reduced to its stable fields."""
    out = []
    for item in items:
        if isinstance(item, Mapping):
            out.append(_stable(item))
            if item.get("role") in _LEADING_ROLES:
                continue
        else:
            out.append(item)
        break
    return out


def _stable(item: Mapping[str, Any]) -> dict[str, Any]:
    """``type`` (default ``"message"``), ``role`` and ``content``; text-only part lists become a string.

    So ``"hi"``, ``{"role": "user", "content": "hi"}`` and ``{"type": "message", "role": "user",
    "content": [{"type": "input_text", "text": "hi"}]}`` all read the same.
    """
    content = item.get("content")
    if isinstance(content, list) and content and all(_is_text_part(p) for p in content):
        content = "".join(p["text"] for p in content)
    return {"type": item.get("type", "message"), "role": item.get("role"), "content": content}


def _is_text_part(part: object) -> bool:
    return isinstance(part, Mapping) and part.get("type") in _TEXT_PARTS and isinstance(part.get("text"), str)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]
