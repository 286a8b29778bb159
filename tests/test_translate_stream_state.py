"""``translate/stream_state``: the one transition table of a relayed answer stream, row by row."""

from __future__ import annotations

import pytest

from codexgw.translate.stream_state import TRANSITIONS, Outcome, StreamEvent, StreamState, StreamStateError

S, E = StreamState, StreamEvent

LEGAL = [
    (S.BEFORE_OUTPUT, E.COMMIT, S.COMMITTED),
    (S.BEFORE_OUTPUT, E.OUTPUT, S.STREAMING),
    (S.BEFORE_OUTPUT, E.END, S.DONE),
    (S.BEFORE_OUTPUT, E.FAIL, S.FAILED),
    (S.BEFORE_OUTPUT, E.CLIENT_CLOSE, S.CLIENT_CLOSED),
    (S.COMMITTED, E.OUTPUT, S.STREAMING),
    (S.COMMITTED, E.END, S.DONE),
    (S.COMMITTED, E.FAIL, S.FAILED),
    (S.COMMITTED, E.CLIENT_CLOSE, S.CLIENT_CLOSED),
    (S.STREAMING, E.OUTPUT, S.STREAMING),
    (S.STREAMING, E.STOP, S.STOPPING),
    (S.STREAMING, E.END, S.DONE),
    (S.STREAMING, E.FAIL, S.FAILED),
    (S.STREAMING, E.CLIENT_CLOSE, S.CLIENT_CLOSED),
    (S.STOPPING, E.END, S.STOPPED),
    (S.STOPPING, E.FAIL, S.STOPPED),
    (S.STOPPING, E.CLIENT_CLOSE, S.STOPPING),
    (S.STOPPED, E.CLIENT_CLOSE, S.STOPPED),
    (S.DONE, E.FAIL, S.FAILED),
    (S.DONE, E.CLIENT_CLOSE, S.DONE),
    (S.FAILED, E.FAIL, S.FAILED),
    (S.FAILED, E.CLIENT_CLOSE, S.FAILED),
    (S.CLIENT_CLOSED, E.CLIENT_CLOSE, S.CLIENT_CLOSED),
]
"""Every legal transition, written out independently of the module's table."""


@pytest.mark.parametrize(("state", "event", "after"), LEGAL)
def test_every_legal_transition(state: StreamState, event: StreamEvent, after: StreamState) -> None:
    assert state.after(event) is after


def test_the_table_holds_exactly_the_legal_transitions() -> None:
    table = {(s, e, t) for s, row in TRANSITIONS.items() for e, t in row.items()}
    assert table == set(LEGAL)
    assert set(TRANSITIONS) == set(StreamState), "every state has a row"


ILLEGAL = sorted(
    ((s, e) for s in StreamState for e in StreamEvent if (s, e) not in {(a, b) for a, b, _ in LEGAL}),
    key=lambda pair: (pair[0].value, pair[1].value),
)


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_every_other_event_is_refused_naming_state_and_event(state: StreamState, event: StreamEvent) -> None:
    with pytest.raises(StreamStateError) as info:
        state.after(event)
    assert f"'{state.value}'" in str(info.value) and f"'{event.value}'" in str(info.value)
    assert (info.value.state, info.value.event) == (state, event)
    assert isinstance(info.value, RuntimeError)


def test_output_after_the_end_is_refused() -> None:
    """A core that finished stays finished: e.g. a chunk after ``response.completed`` is a bug."""
    with pytest.raises(StreamStateError, match="'output' is not allowed in state 'done'"):
        S.DONE.after(E.OUTPUT)


@pytest.mark.parametrize(
    ("state", "finished", "outcome"),
    [
        (S.BEFORE_OUTPUT, False, None),
        (S.COMMITTED, False, None),
        (S.STREAMING, False, None),
        (S.STOPPING, True, Outcome.STOPPED),
        (S.STOPPED, True, Outcome.STOPPED),
        (S.DONE, True, Outcome.COMPLETED),
        (S.FAILED, True, Outcome.FAILED),
        (S.CLIENT_CLOSED, True, Outcome.CLIENT_CLOSED),
    ],
)
def test_finished_states_carry_their_access_log_outcome(
    state: StreamState, finished: bool, outcome: Outcome | None
) -> None:
    assert state.finished is finished and state.outcome is outcome


def test_outcomes_are_the_access_log_strings() -> None:
    assert [o.value for o in Outcome] == ["completed", "stopped", "failed", "client_closed"]


def test_a_client_leaving_never_changes_a_decided_outcome() -> None:
    for state in StreamState:
        if state.finished:
            assert state.after(E.CLIENT_CLOSE).outcome is state.outcome
        else:
            assert state.after(E.CLIENT_CLOSE).outcome is Outcome.CLIENT_CLOSED


def test_only_the_states_before_any_output_await_it() -> None:
    """``awaiting_output``: nothing of the answer went out yet (the keep-alive's comments are none),
    so the first output opens it; committing twice is a bug."""
    assert {s for s in StreamState if s.awaiting_output} == {S.BEFORE_OUTPUT, S.COMMITTED}
    with pytest.raises(StreamStateError):
        S.COMMITTED.after(E.COMMIT)
