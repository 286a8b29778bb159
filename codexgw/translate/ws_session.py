"""The turns of one Responses WebSocket, kept to expand ``previous_response_id`` (sans-IO).

Over the WebSocket the Codex CLI names the previous response and sends only the new input items
(codex-protocol.md §9), with ``store: false``. The backend's WebSocket keeps the conversation of its
socket; codexgw bridges each turn to the backend's HTTP endpoint, which keeps nothing, so the socket
keeps every turn itself (the warm-up and ``store: false`` turns included) and expands a follow-up
into the whole conversation before it goes upstream, as :mod:`codexgw.translate.history` does with
the responses codexgw stores.

One turn holds only its own new items (a long session costs O(turns)); expanding walks the chain
back. The socket lives at most 60 minutes; past :data:`MAX_TURNS` the oldest turns are forgotten,
and a chain reaching one of them is not found (Codex then resends everything on a new socket).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_TURNS", "SessionHistory", "SocketSession", "Turn"]

MAX_TURNS = 4096
"""Most turns one socket keeps (the oldest go first)."""


@dataclass(frozen=True)
class Turn:
    """One finished response of the socket.

    Attributes:
        id: the response id the client saw (``resp_…``).
        previous_id: the ``previous_response_id`` it followed, or ``None``.
        account_id: the account that served it (``None``: a warm-up, answered by codexgw).
        input: its new input items, as sent upstream (after fix-ups), without the expanded history.
        output: its output items.
    """

    id: str
    previous_id: str | None
    account_id: int | None
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]


@dataclass
class SessionHistory:
    """A conversation expanded from a turn (a :class:`codexgw.translate.history.Conversation`).

    Attributes:
        items: every input and output item of the chain, oldest first.
        owners: per item, the account that produced it (output items) or ``None`` (input items).
        account_id: the account that served the latest turn of the chain that had one.
    """

    items: list[dict[str, Any]] = field(default_factory=list)
    owners: list[int | None] = field(default_factory=list)
    account_id: int | None = None


class SocketSession:
    """The turns of one socket, by response id (bounded by ``max_turns``)."""

    def __init__(self, *, max_turns: int = MAX_TURNS) -> None:
        self._turns: OrderedDict[str, Turn] = OrderedDict()
        self._max = max_turns

    def __len__(self) -> int:
        return len(self._turns)

    def put(self, turn: Turn) -> None:
        """Keep ``turn`` (replacing one with the same id); forget the oldest beyond ``max_turns``."""
        self._turns.pop(turn.id, None)
        self._turns[turn.id] = turn
        while len(self._turns) > self._max:
            self._turns.popitem(last=False)

    def expand(self, response_id: str) -> SessionHistory | None:
        """The conversation up to and including ``response_id``, or ``None`` when the socket does not
        know it (or a turn of its chain was forgotten)."""
        chain: list[Turn] = []
        seen: set[str] = set()
        current: str | None = response_id
        while current is not None:
            turn = self._turns.get(current)
            if turn is None or current in seen:
                return None
            seen.add(current)
            chain.append(turn)
            current = turn.previous_id
        history = SessionHistory(
            account_id=next((t.account_id for t in chain if t.account_id is not None), None)
        )
        for turn in reversed(chain):
            history.items += turn.input + turn.output
            history.owners += [None] * len(turn.input) + [turn.account_id] * len(turn.output)
        return history
