"""End to end: ``/v1/responses`` for Codex-shaped bodies, the ``openai`` SDK, ``previous_response_id``
chains, ``/v1/responses/compact``, the WebSocket upgrade and compressed request bodies."""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import Any

import httpx
import openai
import pytest
import trio

from tests.conftest import Env, in_thread
from tests.fakes import CustomToolCall, ServerError, Text, ToolCall, UsageLimit

pytestmark = pytest.mark.trio

SESSION = "01a201d7-9a78-7802-9edb-5a0d07a761dc"


def codex_body(*, user: str = "say hi") -> dict[str, Any]:
    """A Codex CLI 0.169 request as recorded in codex-protocol.md §12.1 (shortened texts, plus ids)."""
    return {
        "model": "gpt-5.5",
        "input": [
            {
                "type": "message",
                "id": "msg_dev_1",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex, a coding agent based on GPT-5."}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "<environment_context>\n  <cwd>/tmp</cwd>"}],
            },
            {
                "type": "message",
                "id": "msg_u_2",
                "role": "user",
                "content": [{"type": "input_text", "text": user}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "exec_command",
                "description": "Runs a command in a PTY.",
                "strict": False,
                "parameters": {
                    "type": "object",
                    "properties": {"cmd": {"type": "string"}},
                    "required": ["cmd"],
                },
            },
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Use the `apply_patch` tool to edit files.",
                "format": {
                    "type": "grammar",
                    "syntax": "lark",
                    "definition": "start: begin_patch hunk+ end_patch",
                },
            },
            {
                "type": "tool_search",
                "execution": "client",
                "description": "# Tool discovery",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
            {"type": "web_search", "external_web_access": False, "search_content_types": ["text", "image"]},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": SESSION,
        "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-installation-id": "0e044cb5-bdad-4b5d-a198-92ff84030662"},
    }


CODEX_HEADERS = {
    "accept": "text/event-stream",
    "originator": "codex_exec",
    "user-agent": "codex_exec/0.169.0 (Linux 6.1; x86_64) xterm",
    "session-id": SESSION,
    "thread-id": SESSION,
    "x-client-request-id": SESSION,
    "x-codex-window-id": f"{SESSION}:0",
    "x-codex-turn-state": "ts_from_client",
}


def sse_events(text: str) -> list[dict[str, Any]]:
    """The JSON ``data:`` payloads of an SSE body."""
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def account_id(env: Env, name: str) -> int:
    return next(a.id for a in env.gateway.accounts.values() if a.name == name)


def served_by(env: Env) -> list[str]:
    return [r.headers.get("chatgpt-account-id", "") for r in env.fake.responses_requests()]


# -- client shapes --------------------------------------------------------------------------------


async def test_codex_shaped_request_is_relayed_with_fixups_and_affinity_headers(env: Env) -> None:
    """A Codex CLI body streams through: ids stripped, tools and metadata kept, turn headers both ways."""
    env.add_account("alice")
    env.fake.script(None, Text("hi there"))
    await env.start()
    async with httpx.AsyncClient(base_url=env.url) as client:
        response = await client.post("/v1/responses", json=codex_body(), headers=CODEX_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-codex-turn-state"] == "ts_from_client"
    events = sse_events(response.text)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["content"][0]["text"] == "hi there"

    upstream = env.fake.responses_requests()[-1]
    sent = upstream.json
    assert all("id" not in item for item in sent["input"])
    assert [i["role"] for i in sent["input"]] == ["developer", "user", "user"]
    assert [t["type"] for t in sent["tools"]] == ["function", "custom", "tool_search", "web_search"]
    assert sent["tools"][1]["format"]["type"] == "grammar"
    assert sent["client_metadata"] == codex_body()["client_metadata"]
    assert sent["prompt_cache_key"] == SESSION
    assert "previous_response_id" not in sent
    assert upstream.headers["session_id"] == SESSION
    assert upstream.headers["thread-id"] == SESSION
    assert upstream.headers["x-codex-turn-state"] == "ts_from_client"
    assert upstream.headers["originator"] == "codex_exec"


async def test_turn_state_from_upstream_reaches_the_client_and_session_id_is_derived(env: Env) -> None:
    """No session header and no prompt_cache_key: two turns of one conversation share a derived id."""
    env.add_account("alice")
    await env.start()
    first = {"model": "gpt-5.5", "input": "tell me about tea", "stream": True}
    second = {
        "model": "gpt-5.5",
        "stream": True,
        "input": [
            {"role": "user", "content": "tell me about tea"},
            {"role": "assistant", "content": "Tea is a drink."},
            {"role": "user", "content": "more"},
        ],
    }
    async with httpx.AsyncClient(base_url=env.url) as client:
        r1 = await client.post("/v1/responses", json=first)
        r2 = await client.post("/v1/responses", json=second)
    assert r1.headers["x-codex-turn-state"].startswith("ts_")
    ids = [r.headers["session_id"] for r in env.fake.responses_requests()]
    assert ids[0] == ids[1] and len(ids[0]) == 36
    assert r2.status_code == 200


async def test_sdk_create_not_streamed_with_string_input(env: Env) -> None:
    """``responses.create`` without stream: one Response object, output_text from the fake."""
    env.add_account("alice")
    env.fake.script(None, Text("Plain answer."))
    await env.start()
    client = env.openai()
    response = await in_thread(
        client.responses.create, model="gpt-5.5", input="Hello", instructions="Be brief.", temperature=0.3
    )
    assert response.output_text == "Plain answer."
    assert response.status == "completed"
    assert response.usage is not None and response.usage.total_tokens > 0
    sent = env.fake.responses_requests()[-1].json
    assert sent["instructions"] == "Be brief."
    assert sent["input"][0]["role"] == "user"
    assert "temperature" not in sent


async def test_sdk_create_streamed_and_stream_helper(env: Env) -> None:
    """``responses.create(stream=True)`` yields the events; ``responses.stream()`` gets the final text."""
    env.add_account("alice")
    env.fake.script(None, Text("one two three", chunks=["one ", "two ", "three"]), Text("helper text"))
    await env.start()
    client = env.openai()

    def run_create() -> list[Any]:
        return list(client.responses.create(model="gpt-5.5", input="count", stream=True))

    events = await in_thread(run_create)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three"
    assert events[-1].type == "response.completed"

    def run_helper() -> tuple[str, str]:
        with client.responses.stream(model="gpt-5.5", input="hello") as stream:
            text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
            return text, stream.get_final_response().output_text

    text, final = await in_thread(run_helper)
    assert text == final == "helper text"


# -- previous_response_id ---------------------------------------------------------------------------


async def test_previous_response_id_chain_expands_the_whole_conversation(env: Env) -> None:
    """Three SDK turns chained by previous_response_id; upstream always gets the full input.

    The 2nd turn carries a different prompt_cache_key (so session affinity does not decide): the
    preferred account, the one that produced the previous response, serves anyway.
    """
    env.add_account("alice")
    env.add_account("bob")
    env.fake.script(
        None,
        Text("First answer.", reasoning_summary="thinking about tea"),
        ToolCall("lookup", '{"q": "tea"}', call_id="call_1"),
        Text("Third answer."),
    )
    await env.start()
    client = env.openai()
    r1 = await in_thread(client.responses.create, model="gpt-5.5", input="Tell me about tea")
    r2 = await in_thread(
        client.responses.create,
        model="gpt-5.5",
        input="And green tea?",
        previous_response_id=r1.id,
        prompt_cache_key="other-key",
    )
    assert r2.output[0].type == "function_call"
    r3 = await in_thread(
        client.responses.create,
        model="gpt-5.5",
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "green tea is unoxidised"}],
        previous_response_id=r2.id,
    )
    assert r3.output_text == "Third answer."
    assert r3.previous_response_id == r2.id

    bodies = [r.json for r in env.fake.responses_requests()]
    assert all("previous_response_id" not in b for b in bodies)
    kinds = [[i.get("type", "message") for i in b["input"]] for b in bodies]
    assert kinds[0] == ["message"]
    assert kinds[1] == ["message", "reasoning", "message", "message"]
    assert kinds[2] == ["message", "reasoning", "message", "message", "function_call", "function_call_output"]
    assert bodies[2]["input"][3]["content"][0]["text"] == "And green tea?"
    assert all("id" not in item for b in bodies for item in b["input"])
    assert len(set(served_by(env))) == 1


async def test_previous_response_fallback_drops_foreign_reasoning(env: Env) -> None:
    """The producing account hits its usage limit: the follow-up moves on, without its reasoning."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, Text("First.", reasoning_summary="secret thoughts"), UsageLimit(resets_in_s=600))
    env.fake.script(bob, Text("From bob."))
    await env.start()
    env.gateway.pool.pin(account_id(env, "alice"))  # turn 1 on alice
    client = env.openai()
    r1 = await in_thread(client.responses.create, model="gpt-5.5", input="hi")
    env.gateway.pool.unpin()
    r2 = await in_thread(client.responses.create, model="gpt-5.5", input="again", previous_response_id=r1.id)
    assert r2.output_text == "From bob."
    assert served_by(env) == [alice.chatgpt_account_id] * 2 + [bob.chatgpt_account_id]
    on_alice, on_bob = (r.json for r in env.fake.responses_requests()[1:])
    assert [i.get("type", "message") for i in on_alice["input"]] == [
        "message",
        "reasoning",
        "message",
        "message",
    ]
    assert [i.get("type", "message") for i in on_bob["input"]] == ["message", "message", "message"]
    # a third turn prefers bob, who produced r2, and bob's history carries no reasoning of his own
    r3 = await in_thread(client.responses.create, model="gpt-5.5", input="more", previous_response_id=r2.id)
    assert r3.output_text and served_by(env)[-1] == bob.chatgpt_account_id


async def test_streamed_response_can_be_continued_at_once(env: Env) -> None:
    """A streamed response is stored before response.completed reaches the client."""
    env.add_account("alice")
    await env.start()
    async with httpx.AsyncClient(base_url=env.url) as client:
        r1 = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "hi", "stream": True})
        first_id = sse_events(r1.text)[-1]["response"]["id"]
        r2 = await client.post(
            "/v1/responses", json={"model": "gpt-5.5", "input": "more", "previous_response_id": first_id}
        )
    assert r2.status_code == 200, r2.text
    assert len(env.fake.responses_requests()[-1].json["input"]) == 3


async def test_unknown_or_unstored_previous_response_is_a_400(env: Env) -> None:
    """Unknown ids and responses made with store:false give 400 previous_response_not_found."""
    env.add_account("alice")
    await env.start()
    client = env.openai()
    with pytest.raises(openai.BadRequestError) as caught:
        await in_thread(
            client.responses.create, model="gpt-5.5", input="hi", previous_response_id="resp_nope"
        )
    error = caught.value.body
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"
    unstored = await in_thread(client.responses.create, model="gpt-5.5", input="hi", store=False)
    assert unstored.store is False
    with pytest.raises(openai.BadRequestError):
        await in_thread(client.responses.create, model="gpt-5.5", input="x", previous_response_id=unstored.id)
    assert len(env.fake.responses_requests()) == 1
    db = env.store_dir / "responses.db"
    assert db.exists() and db.stat().st_mode & 0o777 == 0o600


# -- item_reference ---------------------------------------------------------------------------------


async def test_item_references_resolve_to_stored_output_items(env: Env) -> None:
    """``item_reference`` inputs become the full stored items upstream; the follow-up prefers the
    account whose reasoning it carries (round-robin would pick the other one)."""
    env.add_account("alice")
    env.add_account("bob")
    env.fake.script(
        None, Text("First answer.", reasoning_summary="pondering"), Text("Second."), Text("Third.")
    )
    await env.start(strategy="round-robin")
    client = env.openai()
    r1 = await in_thread(client.responses.create, model="gpt-5.5", input="Tell me")
    assert [o.type for o in r1.output] == ["reasoning", "message"]
    refs = [{"type": "item_reference", "id": o.id} for o in r1.output]
    r2 = await in_thread(  # another prompt_cache_key: session affinity does not decide
        client.responses.create, model="gpt-5.5", input=[*refs, _msg("More?")], prompt_cache_key="other-key"
    )
    assert r2.output_text == "Second."
    second = env.fake.responses_requests()[1].json
    assert second["input"][0]["encrypted_content"] == r1.output[0].encrypted_content
    assert second["input"][1]["content"][0]["text"] == "First answer."
    assert [i["type"] for i in second["input"]] == ["reasoning", "message", "message"]
    assert all("id" not in item for item in second["input"])
    assert len(set(served_by(env))) == 1
    # a bare {"id": ...} is a reference too; r2's input (with resolved items) chains on
    r3 = await in_thread(
        client.responses.create,
        model="gpt-5.5",
        input=[{"id": r2.output[0].id}, _msg("Last one")],
        previous_response_id=r2.id,
    )
    assert r3.output_text == "Third."
    third = env.fake.responses_requests()[-1].json
    assert [i["type"] for i in third["input"]] == ["reasoning"] + ["message"] * 5
    assert third["input"][-2]["content"][0]["text"] == "Second."


async def test_custom_tool_call_output_follows_a_referenced_call(env: Env) -> None:
    """A freeform (custom) tool call from the fake, then its output sent after an item_reference to
    the call: the strict fake accepts the pair (matching call_id), streamed or not."""
    env.add_account("alice")
    patch = "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch"
    env.fake.script(None, CustomToolCall("apply_patch", patch, call_id="call_p1"), Text("Applied."))
    await env.start()
    client = env.openai()

    def run_stream() -> list[Any]:
        return list(client.responses.create(model="gpt-5.5", input="patch it", stream=True))

    events = await in_thread(run_stream)
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    assert len(deltas) > 1 and "".join(deltas) == patch
    call = events[-1].response.output[0]
    assert (call.type, call.name, call.call_id, call.input) == (
        "custom_tool_call",
        "apply_patch",
        "call_p1",
        patch,
    )
    output = {"type": "custom_tool_call_output", "call_id": "call_p1", "output": "Success. A a.txt"}
    r2 = await in_thread(
        client.responses.create, model="gpt-5.5", input=[{"type": "item_reference", "id": call.id}, output]
    )
    assert r2.output_text == "Applied."
    sent = env.fake.responses_requests()[-1].json["input"]
    assert [i["type"] for i in sent] == ["custom_tool_call", "custom_tool_call_output"]
    assert sent[0]["input"] == patch and sent[1] == output


async def test_unknown_item_reference_is_a_400_naming_the_input_index(env: Env) -> None:
    """Unknown ids, items of store:false responses and malformed references never reach upstream."""
    env.add_account("alice")
    await env.start()
    client = env.openai()
    unstored = await in_thread(client.responses.create, model="gpt-5.5", input="hi", store=False)
    kept = await in_thread(client.responses.create, model="gpt-5.5", input="hi")
    cases = [
        ([_msg("hi"), {"type": "item_reference", "id": "msg_nope"}], None, "input[1]"),
        ([{"type": "item_reference", "id": unstored.output[0].id}], None, "input[0]"),
        ([_msg("x"), _msg("y"), {"id": "rs_nope"}], kept.id, "input[2]"),
        ([{"type": "item_reference", "id": 5}], None, "input[0].id"),
    ]
    for items, previous, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            await in_thread(
                client.responses.create, model="gpt-5.5", input=items, previous_response_id=previous
            )
        error = caught.value.body
        assert error["param"] == param, (items, error)
        assert error["type"] == "invalid_request_error"
        assert "not found" in error["message"] or param.endswith(".id")
    assert len(env.fake.responses_requests()) == 2


async def test_store_finds_output_items_by_id_until_they_expire(tmp_path: Any) -> None:
    from codexgw.store.responses import ResponseStore, StoredResponse

    store = ResponseStore.open(tmp_path, ttl_s=100, max_responses=2)
    out = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    store.put(StoredResponse("r1", None, 7, [_msg("a")], [out]), now=0)
    assert store.find_items(["msg_1", "msg_x"], now=50) == {"msg_1": (out, 7)}
    assert store.find_items(["msg_1"], now=149) != {}  # renewed at 50
    assert store.find_items(["msg_1"], now=300) == {}
    store.prune(now=300)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM response_items").fetchone() == (0,)


# -- compact -----------------------------------------------------------------------------------------


async def test_compact_is_relayed_with_failover(env: Env) -> None:
    """/v1/responses/compact reaches /codex/responses/compact; a 429 there moves to the next account."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, UsageLimit(resets_in_s=600))
    await env.start()
    client = env.openai()
    compacted = await in_thread(
        client.responses.compact,
        model="gpt-5.5",
        input=[
            {"role": "system", "content": "Be brief."},
            {"type": "message", "id": "msg_1", "role": "user", "content": "a long conversation"},
        ],
    )
    assert compacted.object == "response.compaction"
    assert "2 items" in compacted.output[0].content[0].text
    calls = [r for r in env.fake.requests if r.path.endswith("/codex/responses/compact")]
    assert [c.headers["chatgpt-account-id"] for c in calls] == [
        alice.chatgpt_account_id,
        bob.chatgpt_account_id,
    ]
    sent = calls[-1].json
    assert set(sent) <= {
        "model",
        "input",
        "instructions",
        "tools",
        "parallel_tool_calls",
        "reasoning",
        "text",
    }
    assert sent["input"][0]["role"] == "developer" and "id" not in sent["input"][1]
    assert calls[-1].headers["accept"] == "application/json"


async def test_compact_on_a_server_error_everywhere_is_a_502(env: Env) -> None:
    alice = env.add_account("alice")
    env.fake.script(alice, ServerError(500), ServerError(500), ServerError(500), ServerError(500))
    await env.start(retries=1)
    async with httpx.AsyncClient(base_url=env.url) as client:
        response = await client.post("/v1/responses/compact", json={"model": "gpt-5.5", "input": "x"})
    assert response.status_code >= 500
    assert response.json()["error"]["message"]


# -- transport ---------------------------------------------------------------------------------------


async def test_websocket_upgrade_is_accepted(env: Env) -> None:
    """Codex's upgrade on ``/v1/responses`` gets 101 (the WebSocket transport, §9, tested in
    test_responses_ws.py); a plain GET there is still a 405."""
    await env.start()
    host, port = env.url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(
            b"GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"OpenAI-Beta: responses_websockets=2026-02-06\r\n\r\n"
        )
        data = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(4096)
    assert data.startswith(b"HTTP/1.1 101"), data[:100]
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in data
    async with httpx.AsyncClient(base_url=env.url) as client:
        assert (await client.get("/v1/responses")).status_code == 405


async def test_zstd_body_is_decoded(env: Env) -> None:
    """Codex logged in with ChatGPT compresses its body with zstd (§6.2)."""
    zstandard = pytest.importorskip("zstandard")
    env.add_account("alice")
    await env.start()
    raw = zstandard.ZstdCompressor(level=3).compress(json.dumps(codex_body()).encode())
    async with httpx.AsyncClient(base_url=env.url) as client:
        response = await client.post(
            "/v1/responses",
            content=raw,
            headers={**CODEX_HEADERS, "content-type": "application/json", "content-encoding": "zstd"},
        )
    assert response.status_code == 200
    assert env.fake.responses_requests()[-1].json["prompt_cache_key"] == SESSION


async def test_zstd_without_zstandard_is_a_415(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    env.add_account("alice")
    await env.start()
    async with httpx.AsyncClient(base_url=env.url) as client:
        response = await client.post(
            "/v1/responses",
            content=b"(\xb5/\xfd\x00\x00",
            headers={"content-type": "application/json", "content-encoding": "zstd"},
        )
    assert response.status_code == 415
    assert "zstandard" in response.json()["error"]["message"]
    assert env.fake.responses_requests() == []


# -- the responses store (unit) ---------------------------------------------------------------------


def _msg(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def test_store_chain_expiry_and_eviction(tmp_path: Any) -> None:
    """Chains expand oldest first; using a chain renews it; expired or evicted ancestors break it."""
    from codexgw.store.responses import ResponseStore, StoredResponse

    store = ResponseStore.open(tmp_path, ttl_s=100, max_responses=3)
    store.put(StoredResponse("r1", None, 1, [_msg("a")], [_msg("A")]), now=0)
    store.put(StoredResponse("r2", "r1", 2, [_msg("b")], [_msg("B")]), now=10)
    history = store.expand("r2", now=50)
    assert history is not None
    assert [i["content"][0]["text"] for i in history.items] == ["a", "A", "b", "B"]
    assert history.owners == [None, 1, None, 2] and history.account_id == 2
    assert store.expand("r2", now=149) is not None  # renewed at 50 -> lives until 150
    assert store.expand("r2", now=400) is None
    store.put(StoredResponse("r3", "gone", 1, [], []), now=500)
    assert store.expand("r3", now=500) is None  # broken chain
    for n in range(4, 8):
        store.put(StoredResponse(f"r{n}", None, 1, [_msg("x")], []), now=500 + n)
    store.prune(now=510)
    assert store.count() == 3
    assert store.expand("r4", now=510) is None and store.expand("r7", now=510) is not None


async def test_store_byte_budget_and_cycles(tmp_path: Any) -> None:
    from codexgw.store.responses import ResponseStore, StoredResponse

    store = ResponseStore.open(tmp_path, max_bytes=300)
    big = [_msg("x" * 100)]
    for n in range(3):
        store.put(StoredResponse(f"r{n}", None, 1, big, []), now=1000 + n)
    store.prune(now=1003)
    assert store.expand("r0", now=1003) is None and store.expand("r2", now=1003) is not None
    store.put(StoredResponse("c1", "c2", 1, [], []), now=1004)
    store.put(StoredResponse("c2", "c1", 1, [], []), now=1004)
    assert store.expand("c1", now=1004) is None


async def test_store_finds_a_chain_or_an_item_only_for_its_tenant(tmp_path: Any) -> None:
    """One user's stored conversation is unknown to another tenant, even with its ids."""
    from codexgw.store.responses import ResponseStore, StoredResponse

    store = ResponseStore.open(tmp_path)
    out = {"type": "message", "id": "msg_ada", "role": "assistant", "content": []}
    store.put(StoredResponse("r1", None, 1, [_msg("secret plan")], [out], "user:ada"), now=0)
    store.put(StoredResponse("r2", "r1", 1, [_msg("more")], [], "user:ada"), now=1)
    assert store.expand("r2", tenant="user:ada", now=2) is not None
    assert store.expand("r2", tenant="user:bob", now=2) is None
    assert store.expand("r2", now=2) is None  # nor to a keyless caller
    assert store.find_items(["msg_ada"], tenant="user:bob", now=2) == {}
    assert store.find_items(["msg_ada"], tenant="user:ada", now=2) == {"msg_ada": (out, 1)}
    store.put(StoredResponse("r3", "r2", 1, [_msg("bob's turn")], [], "user:bob"), now=3)
    assert store.expand("r3", tenant="user:bob", now=4) is None  # a chain through ada's rows


async def test_store_file_from_before_tenants_is_upgraded_on_open(tmp_path: Any) -> None:
    from codexgw.store.responses import RESPONSES_DB_FILENAME, ResponseStore, StoredResponse

    conn = sqlite3.connect(tmp_path / RESPONSES_DB_FILENAME)
    conn.executescript(
        "CREATE TABLE responses (id TEXT PRIMARY KEY, previous_id TEXT, account_id INTEGER, input TEXT NOT NULL,"
        " output TEXT NOT NULL, size INTEGER NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL);"
        "INSERT INTO responses VALUES ('old', NULL, 1, '[]', '[]', 4, 0, 1e12);"
    )
    conn.close()
    store = ResponseStore.open(tmp_path)
    assert store.expand("old", now=1) is not None  # an old row is the keyless tenant's
    store.put(StoredResponse("new", "old", 1, [], [], None), now=2)
    assert store.expand("new", now=3) is not None


async def test_a_key_cannot_continue_another_users_conversation(env: Env) -> None:
    """previous_response_id and item_reference reach only the caller's own stored responses (a
    user's keys share them): another user's id answers 400 previous_response_not_found, as an
    unknown one."""
    from tests.teams_env import key, own, user

    env.add_account("ada-acct")
    env.add_account("bob-acct")
    user(env, "ada")
    user(env, "bob")
    own(env, "ada-acct", "ada")
    own(env, "bob-acct", "bob")
    ada_ci, ada_laptop, bob_ci = (
        key(env, "ada-ci", owner="ada"),
        key(env, "ada-laptop", owner="ada"),
        key(env, "bob-ci", owner="bob"),
    )
    env.fake.script(None, Text("the secret plan"), Text("second"), Text("third"))
    await env.start()
    first = await in_thread(env.openai(api_key=ada_ci).responses.create, model="gpt-5.5", input="plan?")
    item = first.output[0].id
    for request in (
        {"previous_response_id": first.id, "input": "tell me"},
        {"input": [{"type": "item_reference", "id": item}, {"role": "user", "content": "tell me"}]},
    ):
        with pytest.raises(openai.BadRequestError) as info:
            await in_thread(env.openai(api_key=bob_ci).responses.create, model="gpt-5.5", **request)
        assert info.value.status_code == 400
    assert "the secret plan" not in json.dumps([r.json for r in env.fake.responses_requests()][1:])
    follow = await in_thread(
        env.openai(api_key=ada_laptop).responses.create,
        model="gpt-5.5",
        previous_response_id=first.id,
        input="more",
    )
    assert follow.output_text
    sent = env.fake.responses_requests()[-1].json["input"]
    assert "the secret plan" in json.dumps(sent)  # ada's other key continues her conversation
