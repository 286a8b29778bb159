"""WebSocket ``/v1/responses`` (api/responses_ws.py) end to end, with a client that speaks as the Codex
CLI 0.171 does (warm-up, ``previous_response_id`` and only the new items, no pings, no Close frame)
against a real codexgw server and the fake upstream (which codexgw reaches over HTTP SSE)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio

from codexgw.api.server import FrameWriter, text_frame
from tests.conftest import Env
from tests.fakes import DropMidStream, Hold, Text, ToolCall, UsageLimit
from tests.wsclient import Rejected, WSClient, connect

pytestmark = pytest.mark.trio

BASE = "You are Codex (base instructions, as the first developer message)."
TOOLS = [
    {"type": "function", "name": "exec_command", "description": "run", "parameters": {"type": "object"}},
    {
        "type": "custom",
        "name": "apply_patch",
        "format": {"type": "grammar", "syntax": "lark", "definition": "x"},
    },
]
SESSION = "019ae1f7-0000-7000-8000-000000000001"
HANDSHAKE = {
    "authorization": "Bearer unused",
    "originator": "codex_exec",
    "openai-beta": "responses_websockets=2026-02-06",
    "session-id": SESSION,
    "x-codex-turn-metadata": '{"request_kind":"prewarm"}',
}


def message(role: str, text: str, item_id: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "id": item_id, "role": role, "content": [{"type": kind, "text": text}]}


def create(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A ``response.create`` as Codex 0.171 sends it (keys in its order)."""
    return {
        "type": "response.create",
        "model": "gpt-5.5",
        "stream": True,
        "input": items,
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": SESSION,
        "text": {"verbosity": "low"},
        "client_metadata": {
            "x-codex-ws-stream-request-start-ms": "1796184866344",
            "x-codex-turn-metadata": '{"request_kind":"turn","turn_id":"t1"}',
        },
        **extra,
    }


async def warm_up(ws: WSClient) -> str:
    """The warm-up: ``generate: false`` with the base instructions; returns its response id."""
    await ws.send_json(create([message("developer", BASE, "msg_dev")], generate=False))
    created, completed = await ws.recv_until("response.completed")
    assert created["type"] == "response.created"
    assert completed["response"]["id"] == created["response"]["id"] and completed["response"]["output"] == []
    return completed["response"]["id"]


async def test_codex_warm_up_turn_and_tool_follow_up_on_one_socket(env: Env) -> None:
    """The warm-up is answered without an upstream call; the turn (only the new items after the
    warm-up's id) goes upstream as the whole conversation; the tool follow-up (only the
    ``function_call_output``) as the whole conversation with the call; all on one account."""
    env.add_account("alice")
    env.add_account("bob")
    env.fake.script(None, ToolCall("exec_command", '{"cmd":"echo hi"}', call_id="call_1"), Text("Done: hi."))
    await env.start()
    ws = await connect(env.url, headers=HANDSHAKE)
    warm_id = await warm_up(ws)
    assert env.fake.responses_requests() == []

    await ws.send_json(create([message("user", "say hi", "msg_u1")], previous_response_id=warm_id))
    events = await ws.recv_until("response.completed")
    assert events[0]["type"] == "response.created"
    (call,) = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert call["type"] == "function_call" and call["call_id"] == "call_1"
    first_id = events[-1]["response"]["id"]

    output = {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "hi\n"}
    await ws.send_json(create([output], previous_response_id=first_id))
    events = await ws.recv_until("response.completed")
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Done: hi."
    await ws.drop()

    first, second = env.fake.responses_requests()
    for sent in (first.json, second.json):
        assert not {"type", "generate", "previous_response_id"} & set(sent)
        assert "x-codex-ws-stream-request-start-ms" not in sent["client_metadata"]
        assert sent["tools"] == TOOLS and sent["store"] is False
    assert [i.get("role") or i["type"] for i in first.json["input"]] == ["developer", "user"]
    assert [i.get("role") or i["type"] for i in second.json["input"]] == [
        "developer",
        "user",
        "function_call",
        "function_call_output",
    ]
    assert all("id" not in item for item in second.json["input"])
    assert first.headers["chatgpt-account-id"] == second.headers["chatgpt-account-id"]
    assert first.headers["session_id"] == SESSION
    assert first.headers["x-codex-turn-metadata"] == '{"request_kind":"turn","turn_id":"t1"}'
    assert "openai-beta" not in first.headers


async def test_usage_limit_is_an_error_event_with_status_and_reset(env: Env) -> None:
    env.add_account("alice")
    env.fake.script(None, UsageLimit(resets_in_s=3600))
    await env.start()
    ws = await connect(env.url)
    warm_id = await warm_up(ws)
    await ws.send_json(create([message("user", "hi", "m1")], previous_response_id=warm_id))
    event = await ws.recv()
    assert event["type"] == "error" and event["status"] == 429
    assert event["error"]["type"] == "usage_limit_reached"
    assert abs(event["error"]["resets_at"] - (env.clock.now + 3600)) <= 1
    assert event["headers"]["retry-after"]


async def test_unknown_previous_response_is_an_error_and_the_socket_stays_usable(env: Env) -> None:
    env.add_account("alice")
    env.fake.script(None, Text("fresh"))
    await env.start()
    ws = await connect(env.url)
    await ws.send_json(create([message("user", "hi", "m1")], previous_response_id="resp_elsewhere"))
    event = await ws.recv()
    assert (event["type"], event["status"], event["error"]["code"]) == (
        "error",
        400,
        "previous_response_not_found",
    )
    await ws.send_json(create([message("developer", BASE, "d"), message("user", "hi", "m1")]))
    events = await ws.recv_until("response.completed")
    assert "".join(e.get("delta", "") for e in events) == "fresh"


@pytest.mark.parametrize(
    ("send", "code"),
    [
        (lambda ws: ws.send_text("{not json"), "invalid_json"),
        (lambda ws: ws.send_text("[1, 2]"), "invalid_json"),
        (lambda ws: ws.send_json({"type": "response.cancel"}), "unknown_message_type"),
        (lambda ws: ws.send_bytes(b"\x00\x01"), "binary_not_supported"),
        (lambda ws: ws.send_json({"type": "response.create", "model": "gpt-5.5"}), None),
    ],
)
async def test_bad_input_gets_an_error_event_and_the_socket_stays_usable(
    env: Env, send: Any, code: str | None
) -> None:
    env.add_account("alice")
    env.fake.script(None, Text("still here"))
    await env.start()
    ws = await connect(env.url)
    await send(ws)
    event = await ws.recv()
    assert event["type"] == "error" and event["status"] == 400
    assert event["error"]["type"] == "invalid_request_error"
    if code is not None:
        assert event["error"]["code"] == code
    else:
        assert event["error"]["param"] == "input"
    await ws.send_json(create([message("user", "hi", "m1")]))
    events = await ws.recv_until("response.completed")
    assert "".join(e.get("delta", "") for e in events) == "still here"


async def test_a_second_create_while_one_runs_is_refused_and_the_first_completes(env: Env) -> None:
    env.add_account("alice")
    hold = Hold(after_headers=True, after_events=3, then=Text("first answer"))
    env.fake.script(None, hold, Text("second answer"))
    await env.start()
    ws = await connect(env.url)
    await ws.send_json(create([message("user", "one", "m1")]))
    await hold.reached.wait()
    assert (await ws.recv())["type"] == "response.created"
    await ws.send_json(create([message("user", "two", "m2")]))
    event = await ws.recv_until("error", skip=("response.in_progress", "response.output_item.added"))
    assert event[-1]["status"] == 400 and event[-1]["error"]["code"] == "response_already_in_progress"
    hold.release.set()
    events = await ws.recv_until("response.completed")
    assert "".join(e.get("delta", "") for e in events) == "first answer"
    await ws.send_json(create([message("user", "two", "m2")]))
    events = await ws.recv_until("response.completed")
    assert "".join(e.get("delta", "") for e in events) == "second answer"
    assert len(env.fake.responses_requests()) == 2


async def test_an_oversized_frame_closes_with_1009(env: Env) -> None:
    env.add_account("alice")
    await env.start(max_body_bytes=64 * 1024)
    ws = await connect(env.url, deflate=False)
    await ws.send_json(create([message("user", "x" * 100_000, "m1")]))
    closed = await ws.wait_closed()
    assert closed is not None and closed.code == 1009
    assert env.fake.responses_requests() == []


async def test_the_60_minute_limit(env: Env) -> None:
    """A ``response.create`` on a socket older than 60 minutes gets the backend's
    ``websocket_connection_limit_reached`` error; the socket is closed; a new one works."""
    env.add_account("alice")
    env.fake.script(None, Text("ok"))
    await env.start()
    ws = await connect(env.url)
    await warm_up(ws)
    env.clock.advance(3600)
    await ws.send_json(create([message("user", "hi", "m1")]))
    event = await ws.recv()
    assert (event["type"], event["status"], event["error"]["code"]) == (
        "error",
        400,
        "websocket_connection_limit_reached",
    )
    closed = await ws.wait_closed()
    assert closed is not None and closed.code == 1000
    fresh = await connect(env.url)
    await fresh.send_json(create([message("user", "hi", "m1")]))
    assert (await fresh.recv_until("response.completed"))[-1]["type"] == "response.completed"


async def test_the_gateway_key_is_checked_at_the_upgrade(env: Env) -> None:
    env.add_account("alice")
    env.fake.script(None, Text("ok"))
    await env.start(api_key="sk-gateway")
    with pytest.raises(Rejected) as info:
        await connect(env.url, headers={"authorization": "Bearer wrong"})
    assert info.value.status == 401 and b"invalid_api_key" in info.value.body
    ws = await connect(env.url, headers={"authorization": "Bearer sk-gateway"})
    await ws.send_json(create([message("user", "hi", "m1")]))
    assert (await ws.recv_until("response.completed"))[-1]["type"] == "response.completed"


async def test_a_client_leaving_mid_answer_closes_the_upstream(env: Env) -> None:
    env.add_account("alice")
    hold = Hold(after_headers=True, after_events=4, then=Text("never finished"))
    env.fake.script(None, hold)
    await env.start()
    ws = await connect(env.url)
    await ws.send_json(create([message("user", "hi", "m1")]))
    await ws.recv_until("response.output_item.added")
    await ws.drop()
    with trio.fail_after(10):
        await env.fake.wait_for(lambda: env.fake.client_disconnects == 1)


async def test_keepalive_frames_while_the_upstream_is_silent(env: Env) -> None:
    """Silent before its first output: ``{"type": "keepalive"}`` text frames (Codex's idle timer
    counts text frames only), then the answer. Time scaled as in test_e2e_keepalive (1/40)."""
    env.add_account("alice")
    hold = Hold(after_headers=True, then=Text("thought"))
    env.fake.script(None, hold)
    await env.start(keepalive_after_s=0.25, heartbeat_s=0.375)
    ws = await connect(env.url)
    await ws.send_json(create([message("user", "think", "m1")]))
    for _ in range(3):
        assert await ws.recv() == {"type": "keepalive"}
    hold.release.set()
    events = await ws.recv_until("response.completed", skip=("keepalive",))
    assert (
        events[0]["type"] == "response.created" and "".join(e.get("delta", "") for e in events) == "thought"
    )


async def test_a_stream_cut_mid_answer_ends_with_response_failed(env: Env) -> None:
    env.add_account("alice")
    env.fake.script(None, DropMidStream(after_events=5))
    await env.start()
    ws = await connect(env.url)
    await ws.send_json(create([message("user", "hi", "m1")]))
    events = await ws.recv_until("response.failed")
    assert events[-1]["response"]["status"] == "failed"


async def test_each_turn_has_an_access_log_line(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.add_account("alice")
    env.fake.script(None, Text("ok"))
    await env.start()
    ws = await connect(env.url)
    with caplog.at_level(logging.INFO, logger="codexgw.access"):
        warm_id = await warm_up(ws)
        await ws.send_json(create([message("user", "hi", "m1")], previous_response_id=warm_id))
        await ws.recv_until("response.completed")
        with trio.fail_after(5):
            while len([r for r in caplog.records if r.name == "codexgw.access"]) < 2:
                await trio.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "codexgw.access"]
    assert lines[0].startswith("WS /v1/responses 200 model=gpt-5.5") and "outcome=completed" in lines[0]
    assert (
        lines[1].startswith("WS /v1/responses 200 account=alice model=gpt-5.5")
        and "outcome=completed" in lines[1]
    )


async def test_keepalive_frames_during_a_silence_after_output(env: Env) -> None:
    """Silence after the first output: the relay's heartbeat is a ``keepalive`` text frame here."""
    env.add_account("alice")
    hold = Hold(after_headers=True, after_events=5, then=Text("one two", chunks=["one ", "two"]))
    env.fake.script(None, hold)
    await env.start(heartbeat_s=0.05)
    ws = await connect(env.url)
    await ws.send_json(create([message("user", "hi", "m1")]))
    before = await ws.recv_until("keepalive")
    assert "".join(e.get("delta", "") for e in before) == "one "
    hold.release.set()
    events = await ws.recv_until("response.completed", skip=("keepalive",))
    assert "".join(e.get("delta", "") for e in events) == "two"


async def test_turns_return_their_upstream_connection(env: Env, direct_readers: list[Any]) -> None:
    """A turn's relay stops at the terminal event (the next create may follow at once) but reads
    the upstream body's end before closing it, so both turns' upstream requests share one connection."""
    readers = direct_readers
    env.add_account("alice")
    env.fake.script(None, Text("one"), Text("two"))
    await env.start()
    ws = await connect(env.url, headers=HANDSHAKE)
    previous = await warm_up(ws)
    for n in (1, 2):
        await ws.send_json(create([message("user", "again", f"msg_u{n}")], previous_response_id=previous))
        events = await ws.recv_until("response.completed")
        previous = events[-1]["response"]["id"]
    await ws.drop()
    with trio.fail_after(5):
        while len(readers) < 2 or not all(reader.done for reader in readers):
            await trio.sleep(0.01)  # the second turn's upstream close runs after its last frame went out
    assert len({id(reader._trio_socket) for reader in readers}) == 1


async def test_a_turns_frames_are_written_from_the_read_loop_uncompressed(
    env: Env, pumps: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's relay writes its frames itself (``UpstreamStream.pump`` -> the connection's
    ``FrameWriter``), each uncompressed (RSV1 unset) on a socket that negotiated
    permessage-deflate, which RFC 7692 §6 allows per message: the client (wsproto, as Codex's
    tungstenite) reads them as the same events, around the warm-up's frames, which hypercorn sends
    compressed, and a long event (the 16-bit and 64-bit lengths) comes through whole."""
    written: list[str] = []
    send = FrameWriter.send

    async def spy(self: FrameWriter, messages: list[str]) -> None:
        written.extend(messages)
        await send(self, messages)

    monkeypatch.setattr(FrameWriter, "send", spy)
    env.add_account("alice")
    long_text = "word " * 20_000  # a 100 KB delta and a response.completed holding it again
    env.fake.script(None, Text("one two three", chunks=["one ", "two ", "three"]), Text(long_text, chunks=[long_text]))
    await env.start()
    ws = await connect(env.url, headers=HANDSHAKE)
    assert ws.extensions == ["permessage-deflate"]
    previous = await warm_up(ws)
    assert written == []  # the warm-up is answered by codexgw, through hypercorn
    for text in ("one two three", long_text):
        await ws.send_json(create([message("user", "hi", "m1")], previous_response_id=previous))
        events = await ws.recv_until("response.completed")
        assert "".join(e.get("delta", "") for e in events if e["type"] == "response.output_text.delta") == text
        previous = events[-1]["response"]["id"]
    await ws.drop()
    assert len(pumps) == 2
    assert [json.loads(m)["type"] for m in written].count("response.completed") == 2
    assert max(len(m) for m in written) > 65536


async def test_text_frames_carry_the_length_in_the_form_rfc_6455_gives() -> None:
    """7-bit up to 125 bytes, then 126 and 16 bits up to 65535, then 127 and 64 bits; FIN and the
    text opcode, no mask, RSV bits unset; a client's parser reads each back."""
    from wsproto.frame_protocol import FrameProtocol, Opcode

    for size in (0, 125, 126, 65535, 65536):
        frame = text_frame("é" * (size // 2) + "x" * (size % 2))
        assert frame[0] == 0x81
        reader = FrameProtocol(client=True, extensions=[])
        reader.receive_bytes(frame)
        (got,) = list(reader.received_frames())
        assert got.opcode is Opcode.TEXT and got.frame_finished and got.message_finished
        assert got.payload == "é" * (size // 2) + "x" * (size % 2)
