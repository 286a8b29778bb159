"""The Responses WebSocket's sans-IO parts: client messages, server frames (translate/ws_protocol.py)
and the socket's turns (translate/ws_session.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codexgw.errors import UpstreamConnectionError, UsageLimitError
from codexgw.translate.sse import SSEEvent
from codexgw.translate.stream_state import StreamState
from codexgw.translate.ws_protocol import (
    CONNECTION_LIMIT,
    KEEPALIVE,
    BadMessage,
    Create,
    ResponsesFrames,
    error_frame,
    parse_message,
    upstream_body,
    warmup_events,
)
from codexgw.translate.ws_session import SocketSession, Turn

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "binary_not_supported"),
        ("{", "invalid_json"),
        ('"x"', "invalid_json"),
        ("{}", "unknown_message_type"),
        ('{"type": "response.cancel"}', "unknown_message_type"),
        ('{"type": "session.update"}', "unknown_message_type"),
    ],
)
def test_messages_codexgw_cannot_take(text: str | None, code: str) -> None:
    parsed = parse_message(text)
    assert isinstance(parsed, BadMessage)
    assert parsed.error["code"] == code and parsed.error["type"] == "invalid_request_error"


def test_a_response_create_loses_type_and_generate() -> None:
    parsed = parse_message(
        json.dumps({"type": "response.create", "model": "m", "input": [], "generate": False})
    )
    assert parsed == Create({"model": "m", "input": []}, warmup=True)
    parsed = parse_message(json.dumps({"type": "response.create", "model": "m", "generate": True}))
    assert parsed == Create({"model": "m"}, warmup=False)


def test_the_upstream_body_drops_websocket_only_metadata() -> None:
    body = {"model": "m", "client_metadata": {"x-codex-ws-stream-request-start-ms": "1", "session_id": "s"}}
    assert upstream_body(body) == {"model": "m", "client_metadata": {"session_id": "s"}}
    plain = {"model": "m", "client_metadata": {"session_id": "s"}}
    assert upstream_body(plain) is plain


def test_error_frames_carry_the_http_status_codex_needs() -> None:
    frame = json.loads(error_frame(UsageLimitError("limit", resets_at=NOW + 60, plan_type="plus", now=NOW)))
    assert frame == {
        "type": "error",
        "status": 429,
        "error": {
            "message": "limit",
            "type": "usage_limit_reached",
            "param": None,
            "code": "usage_limit_reached",
            "resets_at": int(NOW + 60),
            "plan_type": "plus",
        },
        "headers": {"retry-after": "60"},
    }
    limit = json.loads(CONNECTION_LIMIT)
    assert limit["status"] == 400 and limit["error"]["code"] == "websocket_connection_limit_reached"
    assert json.loads(KEEPALIVE) == {"type": "keepalive"}


def test_the_warmup_answer() -> None:
    created, completed = (json.loads(f) for f in warmup_events("resp_w", "gpt-5.5", 5))
    assert (created["type"], completed["type"]) == ("response.created", "response.completed")
    assert created["response"]["id"] == completed["response"]["id"] == "resp_w"
    assert completed["response"]["output"] == [] and completed["response"]["usage"]["total_tokens"] == 0


def sse(payload: dict[str, Any]) -> tuple[SSEEvent, bytes]:
    data = json.dumps(payload)
    return SSEEvent(payload["type"], data), f"event: {payload['type']}\ndata: {data}\n\n".encode()


def test_frames_are_the_events_data_and_the_turn_is_kept_before_its_end() -> None:
    frames = ResponsesFrames(keep_items=True, failure_id="resp_f")
    item = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
    batch = [
        sse({"type": "response.created", "response": {"id": "resp_1"}}),
        sse({"type": "response.output_item.done", "item": item}),
        sse({"type": "response.completed", "response": {"id": "resp_1", "usage": {"input_tokens": 1}}}),
    ]
    out = frames.feed_batch(batch)
    assert out == [event.data for event, _raw in batch]
    assert frames.state is StreamState.DONE and frames.take_kept() == ("resp_1", [item])
    assert frames.end(NOW) == [] and frames.drains is False and frames.heartbeat == [KEEPALIVE]


def test_a_broken_turn_ends_with_a_response_failed_frame() -> None:
    frames = ResponsesFrames(keep_items=True, failure_id="resp_f")
    frames.feed_batch([sse({"type": "response.output_text.delta", "delta": "a"})])
    (frame,) = frames.fail(UpstreamConnectionError("reset"), NOW)
    failed = json.loads(frame)
    assert failed["type"] == "response.failed" and failed["response"]["error"]["message"] == "reset"
    cut = ResponsesFrames(keep_items=True, failure_id="resp_g")
    cut.feed_batch([sse({"type": "response.output_text.delta", "delta": "a"})])
    assert json.loads(cut.end(NOW)[0])["response"]["id"] == "resp_g"


def turn(rid: str, prev: str | None, account: int | None, n_in: int, n_out: int) -> Turn:
    return Turn(
        rid,
        prev,
        account,
        [{"type": "message", "n": f"{rid}-in{i}"} for i in range(n_in)],
        [{"type": "reasoning", "n": f"{rid}-out{i}"} for i in range(n_out)],
    )


def test_a_chain_expands_to_the_whole_conversation_with_its_owners() -> None:
    """Warm-up (no account), turn, tool follow-up: every item in order, outputs owned by the
    account that produced them; the follow-up prefers the latest account."""
    session = SocketSession()
    session.put(turn("w", None, None, 1, 0))
    session.put(turn("t1", "w", 7, 1, 1))
    session.put(turn("t2", "t1", 8, 1, 2))
    history = session.expand("t2")
    assert history is not None
    assert [i["n"] for i in history.items] == ["w-in0", "t1-in0", "t1-out0", "t2-in0", "t2-out0", "t2-out1"]
    assert history.owners == [None, None, 7, None, 8, 8]
    assert history.account_id == 8
    assert session.expand("w").account_id is None  # type: ignore[union-attr]
    assert session.expand("nope") is None


def test_the_session_is_bounded_and_a_forgotten_ancestor_breaks_the_chain() -> None:
    session = SocketSession(max_turns=2)
    session.put(turn("a", None, 1, 1, 0))
    session.put(turn("b", "a", 1, 1, 0))
    session.put(turn("c", "b", 1, 1, 0))
    assert len(session) == 2
    assert session.expand("c") is None  # "a" was forgotten: Codex then resends everything
    session.put(turn("d", None, 1, 1, 0))
    assert session.expand("d") is not None


def test_a_cycle_is_not_followed() -> None:
    session = SocketSession()
    session.put(turn("x", "y", 1, 1, 0))
    session.put(turn("y", "x", 1, 1, 0))
    assert session.expand("x") is None
