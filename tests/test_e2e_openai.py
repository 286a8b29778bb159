"""End to end: the official ``openai`` SDK against a real codexgw server in front of the fake upstream."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Env, in_thread
from tests.fakes import Text, ToolCall, Usage

pytestmark = pytest.mark.trio


async def test_chat_completion_not_streamed(env: Env) -> None:
    """A plain chat request comes back as a ``chat.completion`` with the fake's text and usage."""
    env.add_account("alice")
    env.fake.script(
        None, Text("Hi there, friend.", usage=Usage(input_tokens=12, output_tokens=5, cached_tokens=4))
    )
    await env.start()
    client = env.openai()
    completion = await in_thread(
        client.chat.completions.create,
        model="gpt-5.5",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hi there, friend."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 12
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 17
    assert completion.usage.prompt_tokens_details.cached_tokens == 4

    upstream = env.fake.responses_requests()[-1]
    assert upstream.json["stream"] is True
    assert upstream.json["store"] is False
    assert isinstance(upstream.json["instructions"], str)
    roles = [item.get("role") for item in upstream.json["input"]]
    assert roles == ["developer", "user"]


async def test_chat_completion_streamed_with_usage(env: Env) -> None:
    """Streamed chunks carry the text in order, end with finish_reason stop, then a usage chunk."""
    env.add_account("alice")
    env.fake.script(None, Text("one two three", chunks=["one ", "two ", "three"]))
    await env.start()
    client = env.openai()

    def run() -> list:
        stream = client.chat.completions.create(
            model="gpt-5.5",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        return list(stream)

    chunks = await in_thread(run)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert all(c.object == "chat.completion.chunk" for c in chunks)


async def test_chat_dropped_params_are_named_in_a_header(env: Env) -> None:
    """Parameters the backend rejects are removed and listed in x-codexgw-dropped-params."""
    env.add_account("alice")
    await env.start()
    client = env.openai()
    raw = await in_thread(
        client.chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.2,
        max_tokens=100,
    )
    dropped = {p.strip() for p in raw.headers["x-codexgw-dropped-params"].split(",")}
    assert {"temperature", "max_tokens"} <= dropped
    assert raw.parse().choices[0].message.content
    body = env.fake.responses_requests()[-1].json
    assert "temperature" not in body and "max_tokens" not in body


async def test_responses_not_streamed(env: Env) -> None:
    """``responses.create`` with a plain-string input returns the aggregated Response object."""
    env.add_account("alice")
    env.fake.script(None, Text("Plain answer."))
    await env.start()
    response = await in_thread(env.openai().responses.create, model="gpt-5.5", input="Hello")
    assert response.output_text == "Plain answer."
    assert response.status == "completed"
    assert response.usage.total_tokens > 0
    upstream = env.fake.responses_requests()[-1].json
    assert upstream["input"][0]["role"] == "user"
    assert "reasoning.encrypted_content" in upstream["include"]


async def test_responses_streamed_and_helper(env: Env) -> None:
    """The SDK's ``responses.stream()`` helper sees created first, text deltas, completed last."""
    env.add_account("alice")
    env.fake.script(None, Text("streamed words here", chunks=["streamed ", "words ", "here"]))
    await env.start()
    client = env.openai()

    def run() -> tuple[list[str], str]:
        with client.responses.stream(model="gpt-5.5", input="go") as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
        return kinds, final.output_text

    kinds, text = await in_thread(run)
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 3
    assert text == "streamed words here"


async def test_tool_call_passes_through_responses(env: Env) -> None:
    """A function call item streams through /v1/responses untouched."""
    env.add_account("alice")
    env.fake.script(None, ToolCall("get_weather", '{"city":"Paris"}', call_id="call_1"))
    await env.start()
    response = await in_thread(
        env.openai().responses.create,
        model="gpt-5.5",
        input="weather?",
        tools=[
            {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
        ],
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.name, c.arguments, c.call_id) for c in calls] == [
        ("get_weather", '{"city":"Paris"}', "call_1")
    ]


async def test_models_list(env: Env) -> None:
    """``models.list`` renders the upstream catalogue in OpenAI's shape."""
    env.add_account("alice")
    await env.start()
    models = await in_thread(env.openai().models.list)
    ids = [m.id for m in models.data]
    assert ids[0] == "gpt-5.5"
    assert "gpt-5.4-mini" in ids
    assert "gpt-5.5-high" in ids
    assert any(r.path.endswith("/codex/models") for r in env.fake.requests)


async def test_upstream_headers_follow_the_codex_client(env: Env) -> None:
    """codexgw sends what the real Codex client sends (codex-protocol.md §6.2)."""
    account = env.add_account("alice")
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{env.url}/v1/responses",
            json={"model": "gpt-5.5", "input": "hi"},
            headers={"session-id": "sess-123", "x-codex-turn-state": "ts-1"},
        )
    assert r.status_code == 200, r.text
    headers = env.fake.responses_requests()[-1].headers
    assert headers["authorization"] == f"Bearer {account.access_token}"
    assert headers["chatgpt-account-id"] == account.chatgpt_account_id
    assert headers["originator"] == "codex_cli_rs"
    assert headers["session_id"] == "sess-123"
    assert headers["x-codex-turn-state"] == "ts-1"
    assert headers["accept"] == "text/event-stream"
    assert headers["version"]
    assert headers["user-agent"].startswith("codex_cli_rs/")
