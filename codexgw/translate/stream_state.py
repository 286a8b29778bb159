"""The state of one relayed answer stream, and how it ended: one transition table (sans-IO).

Theory of operation
-------------------
Both streamed answers, the Chat Completions translation and the Responses passthrough, move through
the same states; everything that changes a stream's state is a row of :data:`TRANSITIONS` (the model
is h11's ``_state.py``), so no caller re-derives "is it over?" from flags of its own::

    BEFORE_OUTPUT --COMMIT--> COMMITTED        no output yet after the keep-alive wait: the 200
                                                headers and SSE comments go out; failover is
                                                still invisible, but an error now ends the
                                                stream in-band (no HTTP status can carry it)
    BEFORE_OUTPUT, COMMITTED --OUTPUT--> STREAMING   the first bytes for the client were produced
    BEFORE_OUTPUT, STREAMING --STOP--> STOPPING   a stop sequence matched (chat): the answer is over,
                                                the upstream's end may still be read for its usage
    BEFORE_OUTPUT, COMMITTED, STREAMING --END--> DONE    response.completed (chat: also
                                                response.incomplete)
    BEFORE_OUTPUT, COMMITTED, STREAMING --FAIL--> FAILED   response.failed / error, a stream cut
                                                before its terminal event, a broken upstream
                                                connection; from COMMITTED also every account
                                                failing (the in-band end of the keep-alive)
    STOPPING --END or FAIL--> STOPPED          the upstream ended after the stop: not an error
    DONE, FAILED --FAIL--> FAILED              the passthrough reads on after the terminal event; a
                                                connection that breaks then is still reported failed
    BEFORE_OUTPUT, COMMITTED, STREAMING --CLIENT_CLOSE--> CLIENT_CLOSED   the client went away first
    any finished state --CLIENT_CLOSE--> itself   the client leaving after the end changes nothing

Any other (state, event) pair is a bug in the caller and raises :class:`StreamStateError` naming
both. A state is *finished* (:attr:`StreamState.finished`) once the client's answer is decided: the
relay stops reading (chat) and the access-log :class:`Outcome` is known (:attr:`StreamState.outcome`).
A state *awaits output* (:attr:`StreamState.awaiting_output`: ``BEFORE_OUTPUT`` and ``COMMITTED``)
while no byte of the answer itself has gone out: the first output opens the answer (chat's role
chunk).

Failover is allowed only while the client has no output, in ``BEFORE_OUTPUT`` or ``COMMITTED``
(keep-alive comments are no output); the failover shell decides that from the events it peeks
(:data:`codexgw.translate.events.PRE_OUTPUT_EVENTS`) before a stream reaches a route, so the
upstream's failures before output never show here; ``COMMITTED`` only changes how the route's
final error goes out (in-band, not as an HTTP status).
"""

from __future__ import annotations

import enum

__all__ = ["TRANSITIONS", "Outcome", "StreamEvent", "StreamState", "StreamStateError"]


class Outcome(enum.Enum):
    """How a streamed answer ended: the access log's ``outcome`` field (design §3 logging)."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    CLIENT_CLOSED = "client_closed"


class StreamEvent(enum.Enum):
    """What happens to a stream (the table's columns)."""

    COMMIT = "commit"
    """The keep-alive wait passed with no output: the 200 headers and comments go out."""
    OUTPUT = "output"
    """Bytes for the client were produced (a chat chunk, a passed-through batch)."""
    STOP = "stop"
    """A stop sequence matched (chat); the final chunk is out."""
    END = "end"
    """The upstream's answer ended normally (its terminal event, or its end after a stop)."""
    FAIL = "fail"
    """The upstream failed: ``response.failed``/``error``, cut before its terminal event, broken."""
    CLIENT_CLOSE = "client_close"
    """The client went away (or the relay is being torn down)."""

    __hash__ = object.__hash__  # members are singletons: identity hashing, in C (Enum's is Python)


class StreamState(enum.Enum):
    """The states of one stream; :meth:`after` is the only way from one to the next.

    Attributes:
        finished: the client's answer is decided (nothing more is read for it, except the usage
            after a stop).
        outcome: the :class:`Outcome` of a finished state, ``None`` before.
        awaiting_output: no output has gone out yet (``BEFORE_OUTPUT``, ``COMMITTED``).
    """

    BEFORE_OUTPUT = "before_output"
    COMMITTED = "committed"
    STREAMING = "streaming"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DONE = "done"
    FAILED = "failed"
    CLIENT_CLOSED = "client_closed"

    finished: bool
    outcome: Outcome | None
    awaiting_output: bool

    __hash__ = object.__hash__  # members are singletons: identity hashing, in C (Enum's is Python)

    def after(self, event: StreamEvent) -> StreamState:
        """The state after ``event`` (:data:`TRANSITIONS`).

        Raises:
            StreamStateError: ``event`` is not legal in this state.
        """
        try:
            return TRANSITIONS[self][event]
        except KeyError:
            raise StreamStateError(self, event) from None


class StreamStateError(RuntimeError):
    """An event that is illegal in the stream's state (a bug in the caller, never the client's fault)."""

    def __init__(self, state: StreamState, event: StreamEvent) -> None:
        super().__init__(f"stream event {event.value!r} is not allowed in state {state.value!r}")
        self.state = state
        self.event = event


_S, _E = StreamState, StreamEvent

TRANSITIONS: dict[StreamState, dict[StreamEvent, StreamState]] = {
    _S.BEFORE_OUTPUT: {
        _E.COMMIT: _S.COMMITTED,
        _E.OUTPUT: _S.STREAMING,
        _E.END: _S.DONE,
        _E.FAIL: _S.FAILED,
        _E.CLIENT_CLOSE: _S.CLIENT_CLOSED,
    },
    _S.COMMITTED: {
        _E.OUTPUT: _S.STREAMING,
        _E.END: _S.DONE,
        _E.FAIL: _S.FAILED,
        _E.CLIENT_CLOSE: _S.CLIENT_CLOSED,
    },
    _S.STREAMING: {
        _E.OUTPUT: _S.STREAMING,
        _E.STOP: _S.STOPPING,
        _E.END: _S.DONE,
        _E.FAIL: _S.FAILED,
        _E.CLIENT_CLOSE: _S.CLIENT_CLOSED,
    },
    _S.STOPPING: {_E.END: _S.STOPPED, _E.FAIL: _S.STOPPED, _E.CLIENT_CLOSE: _S.STOPPING},
    _S.STOPPED: {_E.CLIENT_CLOSE: _S.STOPPED},
    _S.DONE: {_E.FAIL: _S.FAILED, _E.CLIENT_CLOSE: _S.DONE},
    _S.FAILED: {_E.FAIL: _S.FAILED, _E.CLIENT_CLOSE: _S.FAILED},
    _S.CLIENT_CLOSED: {_E.CLIENT_CLOSE: _S.CLIENT_CLOSED},
}
"""``{state: {event: next state}}``: every legal transition, and nothing else (see the module docstring)."""

_OUTCOMES: dict[StreamState, Outcome | None] = {
    _S.BEFORE_OUTPUT: None,
    _S.COMMITTED: None,
    _S.STREAMING: None,
    _S.STOPPING: Outcome.STOPPED,
    _S.STOPPED: Outcome.STOPPED,
    _S.DONE: Outcome.COMPLETED,
    _S.FAILED: Outcome.FAILED,
    _S.CLIENT_CLOSED: Outcome.CLIENT_CLOSED,
}

for _state, _outcome in _OUTCOMES.items():
    # plain attributes, not properties: the relay asks ``state.finished`` on its hot path
    _state.finished = _outcome is not None
    _state.outcome = _outcome
    _state.awaiting_output = _state in (_S.BEFORE_OUTPUT, _S.COMMITTED)
del _state, _outcome
