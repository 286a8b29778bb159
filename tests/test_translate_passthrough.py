"""``translate/passthrough``: the Responses stream handler passes bytes through and follows the stream.

Batches are made the way the upstream reader makes them (``SSEDecoder.decode_raw``), so the raw
bytes checked are the ones a client would receive.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from codexgw.errors import UpstreamConnectionError
from codexgw.translate.events import Batch
from codexgw.translate.passthrough import ResponsesPassthrough, failed_event
from codexgw.translate.sse import SSEDecoder, encode_event
from codexgw.translate.stream_state import Outcome, StreamState
from tests.golden import events as ev

NOW = 1_700_000_000.75


def batch(*events: dict[str, Any], named: bool = True) -> Batch:
    raw = b"".join(encode_event(json.dumps(e), e["type"] if named else None) for e in events)
    return SSEDecoder().decode_raw(raw)


def raw(b: Batch) -> bytes:
    return b"".join(r for _e, r in b)


def parse(data: bytes) -> dict[str, Any]:
    """The one event in ``data`` (``event:`` name and JSON data)."""
    [(event, _raw)] = SSEDecoder().decode_raw(data)
    return {"event": event.event, **json.loads(event.data)}


def make(keep_items: bool = True) -> ResponsesPassthrough:
    return ResponsesPassthrough(keep_items=keep_items, failure_id="resp_failed_1")


def test_batches_pass_through_unchanged_and_the_response_is_kept_with_its_terminal_batch() -> None:
    handler = make()
    first = batch(ev.created(), ev.message_added(0), ev.text_delta("Hel"))
    assert handler.feed_batch(first) == raw(first)
    assert handler.state is StreamState.STREAMING and handler.take_kept() is None
    last = batch(ev.text_delta("lo"), ev.message_done("Hello"), ev.completed())
    assert handler.feed_batch(last) == raw(last)
    assert handler.state is StreamState.DONE and handler.state.outcome is Outcome.COMPLETED
    assert handler.take_kept() == ("resp_1", [ev.message_item("Hello")])
    assert handler.take_kept() is None, "once"
    assert handler.end(NOW) == b"", "a stream that ended properly gets nothing more"
    assert handler.reported_usage() == ev.USAGE


def test_events_without_an_event_name_are_read_from_their_data() -> None:
    handler = make()
    handler.feed_batch(batch(ev.created(), ev.message_done("Hi"), ev.completed(), named=False))
    assert handler.state is StreamState.DONE
    assert handler.take_kept() == ("resp_1", [ev.message_item("Hi")])


def test_without_streamed_items_the_final_response_output_is_kept() -> None:
    handler = make()
    handler.feed_batch(batch(ev.completed(output=[ev.message_item("Only")])))
    assert handler.state is StreamState.DONE, "a terminal event in the very first batch"
    assert handler.take_kept() == ("resp_1", [ev.message_item("Only")])


def test_not_keeping_items_parses_only_the_final_response() -> None:
    handler = make(keep_items=False)
    handler.feed_batch(batch(ev.message_done("Hi"), ev.completed()))
    assert handler.items == [] and handler.take_kept() is None
    assert handler.reported_usage() == ev.USAGE


@pytest.mark.parametrize("terminal", [ev.failed(), ev.incomplete("max_output_tokens"), {"type": "error", "message": "x"}])
def test_other_terminal_events_end_the_stream_failed(terminal: dict[str, Any]) -> None:
    """The access log says ``failed`` for them, as it always has (also ``incomplete``)."""
    handler = make()
    handler.feed_batch(batch(ev.text_delta("a"), terminal))
    assert handler.state is StreamState.FAILED and handler.end(NOW) == b""


def test_the_stream_reads_on_after_its_terminal_event_and_relays_what_comes() -> None:
    handler = make()
    assert handler.drains is True
    handler.feed_batch(batch(ev.completed()))
    handler.take_kept()
    late = batch(ev.completed(), {"type": "codex.rate_limits"})
    assert handler.feed_batch(late) == raw(late)
    assert handler.state is StreamState.DONE and handler.take_kept() is None, "the first terminal event counts"


def test_a_stream_cut_before_its_terminal_event_ends_with_response_failed() -> None:
    handler = make()
    handler.feed_batch(batch(ev.created(), ev.text_delta("par")))
    event = parse(handler.end(NOW))
    assert event["event"] == event["type"] == "response.failed"
    assert event["response"] == {
        "id": "resp_failed_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "failed",
        "error": {"code": "server_error", "message": "the Codex backend closed the stream before response.completed"},
        "output": [],
        "usage": None,
    }
    assert handler.state.outcome is Outcome.FAILED


def test_a_broken_upstream_ends_with_its_message_even_after_the_terminal_event() -> None:
    """Reading on after ``response.completed`` (``drains``), a broken connection still says failed."""
    for before in ([ev.text_delta("a")], [ev.completed()]):
        handler = make()
        handler.feed_batch(batch(*before))
        event = parse(handler.fail(UpstreamConnectionError("connection reset"), NOW))
        assert event["response"]["error"]["message"] == "connection reset"
        assert handler.state is StreamState.FAILED


@pytest.mark.parametrize(
    ("events", "outcome"),
    [([], Outcome.CLIENT_CLOSED), ([ev.text_delta("a")], Outcome.CLIENT_CLOSED), ([ev.completed()], Outcome.COMPLETED)],
)
def test_client_closed_keeps_a_decided_outcome(events: list[dict[str, Any]], outcome: Outcome) -> None:
    handler = make()
    if events:
        handler.feed_batch(batch(*events))
    handler.client_closed()
    assert handler.state.outcome is outcome


def test_failed_event_shape() -> None:
    event = parse(failed_event("boom", response_id="resp_x", created_at=5))
    assert (event["event"], event["response"]["id"], event["response"]["created_at"]) == ("response.failed", "resp_x", 5)
