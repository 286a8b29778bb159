"""The fake upstream (tests/fakes) speaks codex-protocol.md faithfully, over real loopback HTTP."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio
import zstandard

from tests.fakes import (
    CLIENT_ID,
    DropMidStream,
    Failed,
    FakeAccount,
    FakeUpstream,
    Hold,
    Incomplete,
    ServerError,
    Text,
    ToolCall,
    Unauthorized,
    Usage,
    UsageLimit,
    decode_claims,
    serve_fake,
)

START = 1_800_000_000.0


class Clock:
    """A settable clock for FakeUpstream."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeUpstream:
    return FakeUpstream(clock=clock)


@pytest.fixture
def account(fake: FakeUpstream) -> FakeAccount:
    return fake.add_account(email="alice@example.com", plan_type="pro")


@pytest.fixture
async def base_url(fake: FakeUpstream, nursery: trio.Nursery) -> str:
    return await nursery.start(serve_fake, fake)


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


# ---------------------------------------------------------------------------- helpers


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-5.5",
        "instructions": "You are a helpful assistant.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "11111111-2222-3333-4444-555555555555",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def auth_headers(account: FakeAccount) -> dict[str, str]:
    return {
        "authorization": f"Bearer {account.access_token}",
        "chatgpt-account-id": account.chatgpt_account_id,
    }


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """Parse an SSE body, checking each frame's ``event:`` names its data ``type``."""
    events = []
    for frame in raw.decode().split("\n\n"):
        if not frame.strip():
            continue
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        data = json.loads(fields["data"])
        assert fields["event"] == data["type"]
        events.append(data)
    return events


async def post_responses(
    client: httpx.AsyncClient, base_url: str, account: FakeAccount, body: Any = None, **kwargs: Any
) -> httpx.Response:
    kwargs.setdefault("headers", auth_headers(account))
    if "content" not in kwargs:
        kwargs["json"] = request_body() if body is None else body
    return await client.post(f"{base_url}/backend-api/codex/responses", **kwargs)


async def refresh(client: httpx.AsyncClient, base_url: str, token: str, **extra: Any) -> httpx.Response:
    payload = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": token, **extra}
    return await client.post(f"{base_url}/oauth/token", json=payload)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


# ---------------------------------------------------------------------------- tokens


def test_minted_tokens_carry_the_protocol_claims(fake: FakeUpstream, account: FakeAccount) -> None:
    """id_token and access_token are 3-part unpadded JWTs with the §4 claims."""
    for token in (account.id_token, account.access_token):
        header, payload, signature = token.split(".")
        assert payload
        assert signature and "=" not in token
        assert json.loads(base64.urlsafe_b64decode(header + "==")) == {
            "alg": "RS256",
            "typ": "JWT",
            "kid": "fake",
        }
    id_claims = decode_claims(account.id_token)
    assert id_claims["email"] == "alice@example.com"
    auth = id_claims["https://api.openai.com/auth"]
    assert auth["chatgpt_plan_type"] == "pro"
    assert auth["chatgpt_account_id"] == account.chatgpt_account_id
    assert auth["chatgpt_user_id"] == auth["user_id"]
    assert id_claims["aud"] == [CLIENT_ID]
    access = decode_claims(account.access_token)
    assert access["exp"] == int(START) + 3600 and access["iat"] == int(START)
    assert access["aud"] == ["https://api.openai.com/v1"]
    assert access["https://api.openai.com/auth"]["chatgpt_account_id"] == account.chatgpt_account_id
    assert account.refresh_token.startswith("rt_")


def test_auth_json_is_a_codex_cli_file(fake: FakeUpstream, account: FakeAccount, tmp_path: Path) -> None:
    path = fake.write_auth_json(account, tmp_path / "codex" / "auth.json")
    data = json.loads(path.read_text())
    assert data["auth_mode"] == "chatgpt" and data["OPENAI_API_KEY"] is None
    assert data["tokens"] == {
        "id_token": account.id_token,
        "access_token": account.access_token,
        "refresh_token": account.refresh_token,
        "account_id": account.chatgpt_account_id,
    }
    assert data["last_refresh"].startswith("2027-01-15T") and data["last_refresh"].endswith("Z")
    assert path.stat().st_mode & 0o777 == 0o600


async def test_refresh_rotates_and_is_single_use(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    old_rt, old_at = account.refresh_token, account.access_token
    first = await refresh(client, base_url, old_rt)
    assert first.status_code == 200
    tokens = first.json()
    assert tokens["refresh_token"] == account.refresh_token != old_rt
    assert tokens["access_token"] == account.access_token != old_at
    assert tokens["id_token"] == account.id_token and tokens["expires_in"] == 3600
    assert account.refresh_count == 1

    reused = await refresh(client, base_url, old_rt)
    assert reused.status_code == 401
    assert reused.json()["error"] == {
        "message": "Your refresh token has already been used to generate a new access token. "
        "Please try signing in again.",
        "type": "invalid_request_error",
        "param": None,
        "code": "refresh_token_reused",
    }
    # Reuse looks like theft: the newer token of that login dies too.
    newest = await refresh(client, base_url, tokens["refresh_token"])
    assert newest.status_code == 401 and newest.json()["error"]["code"] == "refresh_token_invalidated"
    assert [t.outcome for t in fake.token_requests] == ["ok", "reused", "revoked"]
    assert fake.token_requests[1].refresh_token == old_rt


async def test_refresh_accepts_form_and_scope_but_checks_client(
    account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    form = {
        "client_id": CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": account.refresh_token,
        "scope": "openid profile email",
    }
    ok = await client.post(f"{base_url}/oauth/token", data=form)
    assert ok.status_code == 200 and ok.json()["refresh_token"] == account.refresh_token
    bad_client = await refresh(client, base_url, account.refresh_token, client_id="app_other")
    assert bad_client.status_code == 401
    unknown = await refresh(client, base_url, "rt_nonsense")
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_refresh_token"
    no_token = await client.post(
        f"{base_url}/oauth/token", json={"client_id": CLIENT_ID, "grant_type": "refresh_token"}
    )
    assert no_token.status_code == 400


async def test_fail_next_refresh_keeps_the_token_usable(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.fail_next_refresh(500, "<html>upstream broke</html>")
    fake.fail_next_refresh(401, {"error": {"code": "refresh_token_expired"}})
    rt = account.refresh_token
    first = await refresh(client, base_url, rt)
    assert first.status_code == 500 and first.text == "<html>upstream broke</html>"
    second = await refresh(client, base_url, rt)
    assert second.status_code == 401 and second.json() == {"error": {"code": "refresh_token_expired"}}
    assert (await refresh(client, base_url, rt)).status_code == 200


async def test_refresh_gate_lets_concurrent_refreshes_overlap(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    """Five refreshes with one token, parked together at the gate: exactly one wins."""
    fake.refresh_gate = trio.Event()
    rt = account.refresh_token
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await refresh(client, base_url, rt)).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
        await fake.wait_for(lambda: fake.refresh_waiting == 5)
        assert statuses == []
        assert [(t.outcome, t.status) for t in fake.token_requests] == [("pending", 0)] * 5
        fake.refresh_gate.set()
    assert sorted(statuses) == [200, 401, 401, 401, 401]
    assert account.refresh_count == 1


async def test_access_tokens_expire_on_the_fake_clock(
    fake: FakeUpstream, clock: Clock, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    assert (await post_responses(client, base_url, account)).status_code == 200
    clock.now += 3600
    expired = await post_responses(client, base_url, account)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "token_expired"
    assert (await refresh(client, base_url, account.refresh_token)).status_code == 200
    assert (await post_responses(client, base_url, account)).status_code == 200


async def test_expire_access_token_keeps_the_refresh_token(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.expire_access_token(account)
    assert (await post_responses(client, base_url, account)).status_code == 401
    assert (await refresh(client, base_url, account.refresh_token)).status_code == 200
    assert (await post_responses(client, base_url, account)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer not-a-token"},
        {"authorization": "Basic abc"},
        "no-account-header",
        "wrong-account-header",
    ],
)
async def test_backend_requires_bearer_and_matching_account_id(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient, headers: Any
) -> None:
    other = fake.add_account(email="bob@example.com")
    if headers == "no-account-header":
        headers = {"authorization": f"Bearer {account.access_token}"}
    elif headers == "wrong-account-header":
        headers = {**auth_headers(account), "chatgpt-account-id": other.chatgpt_account_id}
    for path in ("/codex/models?client_version=0.125.0", "/wham/usage"):
        assert (await client.get(f"{base_url}/backend-api{path}", headers=headers)).status_code == 401
    response = await post_responses(client, base_url, account, headers=headers)
    assert response.status_code == 401 and "error" in response.json()
    assert account.responses_count == 0


# ---------------------------------------------------------------------------- streams


async def test_text_stream_has_the_real_event_sequence(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(
        account, Text("Hello there, world", usage=Usage(input_tokens=11, output_tokens=3, cached_tokens=4))
    )
    response = await post_responses(
        client, base_url, account, headers={**auth_headers(account), "x-codex-turn-state": "ts_abc"}
    )
    assert response.status_code == 200
    h = response.headers
    assert h["content-type"].startswith("text/event-stream")
    assert h["openai-model"] == "gpt-5.5" and h["x-request-id"] and h["x-codex-turn-state"] == "ts_abc"
    for family in ("primary", "secondary"):
        for suffix in ("used-percent", "window-minutes", "reset-at", "reset-after-seconds"):
            assert f"x-codex-{family}-{suffix}" in h
    assert h["x-codex-primary-window-minutes"] == "300" and float(h["x-codex-primary-used-percent"]) < 100
    assert int(h["x-codex-primary-reset-at"]) > START
    assert h["x-codex-credits-has-credits"] in ("true", "false")
    events = parse_sse(response.content)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(d["delta"] for d in deltas) == "Hello there, world"
    item_id = events[2]["item"]["id"]
    assert events[2]["item"] == {
        "id": item_id,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    assert all(d["item_id"] == item_id and d["output_index"] == 0 and d["content_index"] == 0 for d in deltas)
    done = events[-2]["item"]
    assert done["status"] == "completed" and done["content"][0]["text"] == "Hello there, world"
    final = events[-1]["response"]
    assert final["id"].startswith("resp_") and final["id"] == events[0]["response"]["id"]
    assert final["object"] == "response" and final["status"] == "completed" and final["model"] == "gpt-5.5"
    assert final["output"] == [done]
    assert final["usage"] == {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 14,
    }
    assert account.responses_count == 1
    recorded = fake.responses_requests()[-1]
    assert recorded.account_id == account.chatgpt_account_id and recorded.json["model"] == "gpt-5.5"


async def test_default_answer_chunks_model_and_estimated_usage(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(account, Text("abc", chunks=["a", "bc"], model="gpt-5.4"))
    first = parse_sse((await post_responses(client, base_url, account)).content)
    assert [e["delta"] for e in first if e["type"] == "response.output_text.delta"] == ["a", "bc"]
    assert first[-1]["response"]["model"] == "gpt-5.4"
    second = parse_sse((await post_responses(client, base_url, account)).content)
    assert second[-2]["item"]["content"][0]["text"] == "Hello from the fake Codex backend."
    usage = second[-1]["response"]["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_reasoning_item_precedes_the_message(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(None, Text("Answer", reasoning_summary="Thinking it over"))
    events = parse_sse((await post_responses(client, base_url, account)).content)
    assert types(events)[2:10] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * 3,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    reasoning = events[9]["item"]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Thinking it over"}]
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


async def test_tool_call_streams_arguments(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    arguments = json.dumps({"city": "Paris", "unit": "celsius"})
    fake.script(account, ToolCall("get_weather", arguments, call_id="call_1", text_before="Let me check."))
    events = parse_sse((await post_responses(client, base_url, account)).content)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) > 1 and "".join(deltas) == arguments
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert [d["item"]["type"] for d in done] == ["message", "function_call"]
    call = done[1]["item"]
    assert call["name"] == "get_weather" and call["call_id"] == "call_1" and call["arguments"] == arguments
    assert call["status"] == "completed" and done[1]["output_index"] == 1
    assert types(events)[-1] == "response.completed"


async def test_usage_limit_is_a_429_that_persists_until_reset(
    fake: FakeUpstream, clock: Clock, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(account, UsageLimit(resets_in_s=600), Text("after reset"))
    limited = await post_responses(client, base_url, account)
    assert limited.status_code == 429
    assert limited.json() == {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "pro",
            "resets_at": int(START) + 600,
            "resets_in_seconds": 600,
        }
    }
    assert limited.headers["x-codex-primary-used-percent"] == "100"
    assert limited.headers["x-codex-primary-reset-at"] == str(int(START) + 600)
    assert limited.headers["x-codex-active-limit"] == "codex"
    usage = (await client.get(f"{base_url}/backend-api/wham/usage", headers=auth_headers(account))).json()
    assert usage["rate_limit"]["limit_reached"] is True and usage["rate_limit"]["allowed"] is False
    assert usage["rate_limit"]["primary_window"]["used_percent"] == 100
    assert usage["rate_limit"]["primary_window"]["reset_after_seconds"] == 600
    clock.now += 300
    again = await post_responses(client, base_url, account)
    assert again.status_code == 429 and again.json()["error"]["resets_in_seconds"] == 300
    clock.now += 300
    after = await post_responses(client, base_url, account)
    assert (
        after.status_code == 200
        and parse_sse(after.content)[-2]["item"]["content"][0]["text"] == "after reset"
    )
    usage = (await client.get(f"{base_url}/backend-api/wham/usage", headers=auth_headers(account))).json()
    assert usage["rate_limit"]["limit_reached"] is False


async def test_unauthorized_and_server_errors(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(account, Unauthorized(), ServerError(), ServerError(503), ServerError(502))
    r401 = await post_responses(client, base_url, account)
    assert r401.status_code == 401 and r401.json()["error"]["code"] == "token_expired"
    r500 = await post_responses(client, base_url, account)
    assert r500.status_code == 500 and r500.json()["error"]["type"] == "server_error"
    r503 = await post_responses(client, base_url, account)
    assert r503.status_code == 503 and r503.json()["error"]["code"] == "server_is_overloaded"
    r502 = await post_responses(client, base_url, account)
    assert r502.status_code == 502 and r502.headers["content-type"].startswith("text/html")
    fake.script(account, ServerError(429))
    r429 = await post_responses(client, base_url, account)
    assert r429.json()["error"]["code"] == "rate_limit_exceeded" and r429.headers["retry-after"] == "20"
    assert (await post_responses(client, base_url, account)).status_code == 200


async def test_drop_mid_stream_truncates_the_chunked_body(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(account, DropMidStream(after_events=3))
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream(
            "POST",
            f"{base_url}/backend-api/codex/responses",
            json=request_body(),
            headers=auth_headers(account),
        ) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                received += chunk
    events = parse_sse(received)
    assert types(events) == ["response.created", "response.in_progress", "response.output_item.added"]
    # The server is still fine afterwards.
    assert (await post_responses(client, base_url, account)).status_code == 200


@pytest.mark.parametrize("after_output", [False, True])
async def test_failed_closes_the_stream(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient, after_output: bool
) -> None:
    fake.script(
        account,
        Failed(code="rate_limit_exceeded", message="Please try again in 1.5s.", after_output=after_output),
    )
    response = await post_responses(client, base_url, account)
    assert response.status_code == 200
    events = parse_sse(response.content)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"] == {
        "code": "rate_limit_exceeded",
        "message": "Please try again in 1.5s.",
    }
    assert ("response.output_text.delta" in types(events)) is after_output
    assert "response.output_item.done" not in types(events)


async def test_incomplete_ends_with_reason(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(account, Incomplete(reason="max_output_tokens"))
    events = parse_sse((await post_responses(client, base_url, account)).content)
    assert "response.output_text.delta" in types(events)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_hold_blocks_until_released(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    hold = Hold(then=ServerError(503))
    fake.script(account, hold)
    results: list[int] = []

    async def call() -> None:
        results.append((await post_responses(client, base_url, account)).status_code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call)
        await hold.reached.wait()
        assert results == []
        hold.release.set()
    assert results == [503]


async def test_hold_after_headers_and_client_disconnect(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    hold = Hold(after_headers=True)
    fake.script(account, hold)
    async with client.stream(
        "POST", f"{base_url}/backend-api/codex/responses", json=request_body(), headers=auth_headers(account)
    ) as response:
        assert response.status_code == 200
        await hold.reached.wait()
        lines = response.aiter_lines()
        assert await anext(lines) == "event: response.created"
    # Leaving the block closed the connection mid-stream: the fake notices.
    await fake.wait_for(lambda: fake.client_disconnects == 1)


async def test_script_fifo_per_account_then_shared(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    bob = fake.add_account(email="bob@example.com")
    fake.script(None, Text("shared-1"), Text("shared-2"))
    fake.script(account, Text("alice-1"))

    async def text_of(who: FakeAccount) -> str:
        return parse_sse((await post_responses(client, base_url, who)).content)[-2]["item"]["content"][0][
            "text"
        ]

    assert await text_of(bob) == "shared-1"
    assert await text_of(account) == "alice-1"
    assert await text_of(account) == "shared-2"
    assert await text_of(bob) == "Hello from the fake Codex backend."


# ---------------------------------------------------------------------------- strictness

MESSAGE_WITH_ID = {
    "type": "message",
    "id": "msg_1",
    "role": "user",
    "content": [{"type": "input_text", "text": "x"}],
}
SYSTEM_MESSAGE = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "x"}]}
ASSISTANT_INPUT_TEXT = {
    "type": "message",
    "role": "assistant",
    "content": [{"type": "input_text", "text": "x"}],
}
ORPHAN_OUTPUT = {"type": "function_call_output", "call_id": "call_9", "output": "42"}


@pytest.mark.parametrize(
    ("overrides", "status", "expected"),
    [
        ({"stream": False}, 400, {"detail": "Stream must be set to true"}),
        ({"stream": ...}, 400, {"detail": "Stream must be set to true"}),
        ({"store": True}, 400, {"detail": "Store must be set to false"}),
        ({"store": ...}, 400, {"detail": "Store must be set to false"}),
        ({"max_output_tokens": 100}, 400, {"detail": "Unsupported parameter: max_output_tokens"}),
        ({"temperature": 0.2}, 400, {"detail": "Unsupported parameter: temperature"}),
        ({"top_p": 0.9}, 400, {"detail": "Unsupported parameter: top_p"}),
        ({"max_tokens": 9}, 400, {"detail": "Unsupported parameter: max_tokens"}),
        ({"max_completion_tokens": 9}, 400, {"detail": "Unsupported parameter: max_completion_tokens"}),
        ({"metadata": {}}, 400, {"detail": "Unsupported parameter: metadata"}),
        ({"user": "u"}, 400, {"detail": "Unsupported parameter: user"}),
        ({"truncation": "auto"}, 400, {"detail": "Unsupported parameter: truncation"}),
        ({"safety_identifier": "s"}, 400, {"detail": "Unsupported parameter: safety_identifier"}),
        ({"prompt_cache_retention": "24h"}, 400, {"detail": "Unsupported parameter: prompt_cache_retention"}),
        ({"previous_response_id": "resp_1"}, 400, {"detail": "Unsupported parameter: previous_response_id"}),
        ({"service_tier": "flex"}, 400, {"detail": "Unsupported parameter: service_tier"}),
        ({"instructions": ...}, 400, {"detail": "Instructions are required"}),
        ({"instructions": ["x"]}, 400, {"detail": "Instructions are not valid"}),
        ({"input": "hello"}, 400, {"detail": "Input must be a list"}),
        (
            {"model": "gpt-4o"},
            400,
            {"detail": "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."},
        ),
        (
            {"model": "gpt-5.5-high"},
            400,
            {"detail": "The 'gpt-5.5-high' model is not supported when using Codex with a ChatGPT account."},
        ),
        ({"input": [SYSTEM_MESSAGE]}, 400, {"detail": "System messages are not allowed"}),
    ],
)
async def test_strict_rejections_like_the_chatgpt_backend(
    fake: FakeUpstream,
    account: FakeAccount,
    base_url: str,
    client: httpx.AsyncClient,
    overrides: dict[str, Any],
    status: int,
    expected: dict[str, Any],
) -> None:
    response = await post_responses(client, base_url, account, request_body(**overrides))
    assert (response.status_code, response.json()) == (status, expected)
    assert account.responses_count == 0


@pytest.mark.parametrize(
    ("overrides", "param", "fragment"),
    [
        (
            {"input": [MESSAGE_WITH_ID]},
            "input",
            "Item with id 'msg_1' not found. Items are not persisted when `store`",
        ),
        ({"input": [{"type": "item_reference", "id": "rs_1"}]}, "input", "Item with id 'rs_1' not found"),
        ({"input": [ASSISTANT_INPUT_TEXT]}, "input[0].content[0]", "Invalid value: 'input_text'"),
        (
            {"input": [ORPHAN_OUTPUT]},
            "input",
            "No tool call found for function call output with call_id call_9",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools[0].name",
            "Missing required parameter",
        ),
        ({"reasoning": {"effort": "minimal"}}, "reasoning.effort", "does not support 'minimal'"),
    ],
)
async def test_deeper_rejections_use_the_openai_error_shape(
    account: FakeAccount, base_url: str, client: httpx.AsyncClient, overrides: dict, param: str, fragment: str
) -> None:
    response = await post_responses(client, base_url, account, request_body(**overrides))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (
        error["type"] == "invalid_request_error" and error["param"] == param and fragment in error["message"]
    )


async def test_full_codex_style_body_is_accepted(
    account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    body = request_body(
        input=[
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
            {"type": "message", "role": "user", "content": "plain string content"},
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA"},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
        ],
        tools=[{"type": "function", "name": "shell", "description": "", "strict": False, "parameters": {}}],
        reasoning={"effort": "xhigh", "summary": "auto"},
        service_tier="priority",
        text={"verbosity": "low"},
        client_metadata={"x-codex-installation-id": "abc"},
    )
    assert (await post_responses(client, base_url, account, body)).status_code == 200


@pytest.mark.parametrize("encoding", ["zstd", "gzip"])
async def test_compressed_bodies_are_accepted(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient, encoding: str
) -> None:
    raw = json.dumps(request_body()).encode()
    packed = zstandard.ZstdCompressor(level=3).compress(raw) if encoding == "zstd" else gzip.compress(raw)
    headers = {**auth_headers(account), "content-encoding": encoding, "content-type": "application/json"}
    response = await post_responses(client, base_url, account, headers=headers, content=packed)
    assert response.status_code == 200 and parse_sse(response.content)[-1]["type"] == "response.completed"
    assert fake.responses_requests()[-1].json == request_body()
    garbage = await post_responses(client, base_url, account, headers=headers, content=b"not compressed")
    assert garbage.status_code == 400


# ---------------------------------------------------------------------------- other endpoints


async def test_models_compact_usage_and_unknown_paths(
    account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    h = auth_headers(account)
    models = await client.get(
        f"{base_url}/backend-api/codex/models", params={"client_version": "0.125.0"}, headers=h
    )
    assert models.status_code == 200 and models.headers["etag"]
    listed = models.json()["models"]
    assert [m["slug"] for m in listed] == [
        "gpt-5.5",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5.3-codex",
        "gpt-5.2",
        "codex-auto-review",
    ]
    required = {
        "slug",
        "display_name",
        "supported_reasoning_levels",
        "shell_type",
        "visibility",
        "supported_in_api",
        "priority",
        "base_instructions",
        "supports_reasoning_summaries",
        "support_verbosity",
        "truncation_policy",
        "supports_parallel_tool_calls",
        "experimental_supported_tools",
    }
    assert all(required <= m.keys() for m in listed)
    compact = await client.post(
        f"{base_url}/backend-api/codex/responses/compact",
        headers=h,
        json={"model": "gpt-5.5", "input": request_body()["input"], "instructions": "x"},
    )
    assert compact.status_code == 200 and compact.json()["output"][0]["type"] == "message"
    usage = (await client.get(f"{base_url}/backend-api/wham/usage", headers=h)).json()
    assert usage["plan_type"] == "pro"
    window = usage["rate_limit"]["primary_window"]
    assert set(window) == {"used_percent", "limit_window_seconds", "reset_after_seconds", "reset_at"}
    assert window["limit_window_seconds"] == 18000 and usage["credits"]["has_credits"] is False
    assert (await client.get(f"{base_url}/backend-api/nope", headers=h)).status_code == 404
    assert (await client.get(f"{base_url}/backend-api/codex/responses", headers=h)).status_code == 405


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(64)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def test_browser_authorize_then_code_exchange(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    verifier, challenge = _pkce()
    redirect_uri = "http://localhost:1455/auth/callback"
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": "openid profile email offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": "s" * 43,
        "originator": "codex_cli_rs",
    }
    answer = await client.get(f"{base_url}/oauth/authorize", params=params)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["state"] == "s" * 43 and query["scope"] == params["scope"]
    form = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": redirect_uri,
        "client_id": CLIENT_ID,
        "code_verifier": verifier,
    }
    tokens = await client.post(f"{base_url}/oauth/token", data=form)
    assert tokens.status_code == 200
    assert {"id_token", "access_token", "refresh_token"} <= tokens.json().keys()
    assert tokens.json()["access_token"] == account.access_token
    reused = await client.post(f"{base_url}/oauth/token", data=form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    exchange = await client.post(
        f"{base_url}/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": CLIENT_ID,
            "requested_token": "openai-api-key",
            "subject_token": tokens.json()["id_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        },
    )
    assert exchange.status_code == 200 and exchange.json()["access_token"].startswith("sk-fake-")


async def test_authorize_rejections(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    _, challenge = _pkce()
    good = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "http://localhost:1455/auth/callback",
        "scope": "openid profile email offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state-1234",
    }
    bad_redirect = await client.get(
        f"{base_url}/oauth/authorize", params={**good, "redirect_uri": "http://127.0.0.1:1455/auth/callback"}
    )
    assert bad_redirect.status_code == 400
    plain = await client.get(f"{base_url}/oauth/authorize", params={**good, "code_challenge_method": "plain"})
    assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"]
    fake.authorize_error = "access_denied"
    denied = await client.get(f"{base_url}/oauth/authorize", params=good)
    assert (
        "error=access_denied" in denied.headers["location"]
        and "state=state-1234" in denied.headers["location"]
    )
    fake.authorize_error = None
    fake.redirect_ports = None
    ok = await client.get(
        f"{base_url}/oauth/authorize", params={**good, "redirect_uri": "http://localhost:40123/auth/callback"}
    )
    code = parse_qs(urlsplit(ok.headers["location"]).query)["code"][0]
    wrong_verifier = await client.post(
        f"{base_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://localhost:40123/auth/callback",
            "client_id": CLIENT_ID,
            "code_verifier": _pkce()[0],
        },
    )
    assert wrong_verifier.status_code == 400 and "PKCE" in wrong_verifier.json()["error_description"]


async def test_device_code_flow(
    fake: FakeUpstream, clock: Clock, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    start = await client.post(f"{base_url}/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})
    assert start.status_code == 200
    info = start.json()
    assert info["interval"] == "5" and info["device_auth_id"] and info["user_code"]
    poll = {"device_auth_id": info["device_auth_id"], "user_code": info["user_code"]}
    pending = await client.post(f"{base_url}/api/accounts/deviceauth/token", json=poll)
    assert pending.status_code == 403
    fake.approve_device(info["user_code"], account)
    approved = await client.post(f"{base_url}/api/accounts/deviceauth/token", json=poll)
    assert approved.status_code == 200
    grant = approved.json()
    assert set(grant) == {"authorization_code", "code_challenge", "code_verifier"}
    tokens = await client.post(
        f"{base_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": grant["authorization_code"],
            "redirect_uri": f"{base_url}/deviceauth/callback",
            "client_id": CLIENT_ID,
            "code_verifier": grant["code_verifier"],
        },
    )
    assert tokens.status_code == 200 and tokens.json()["refresh_token"] == account.refresh_token

    # Denied and expired codes fail outright (not 403/404, which mean "keep polling").
    denied = (
        await client.post(f"{base_url}/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})
    ).json()
    fake.deny_device(denied["user_code"])
    r = await client.post(
        f"{base_url}/api/accounts/deviceauth/token",
        json={"device_auth_id": denied["device_auth_id"], "user_code": denied["user_code"]},
    )
    assert r.status_code == 400
    late = (
        await client.post(f"{base_url}/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})
    ).json()
    clock.now += 15 * 60
    r = await client.post(
        f"{base_url}/api/accounts/deviceauth/token",
        json={"device_auth_id": late["device_auth_id"], "user_code": late["user_code"]},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "device_auth_expired"
    fake.device_login_enabled = False
    off = await client.post(f"{base_url}/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})
    assert off.status_code == 404


async def test_revoke_kills_the_refresh_token(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    rt = account.refresh_token
    r = await client.post(
        f"{base_url}/oauth/revoke",
        json={"token": rt, "token_type_hint": "refresh_token", "client_id": CLIENT_ID},
    )
    assert r.status_code == 200
    assert fake.revocations == [
        {"token": rt, "token_type_hint": "refresh_token", "client_id": CLIENT_ID, "known": True}
    ]
    after = await refresh(client, base_url, rt)
    assert after.status_code == 401 and after.json()["error"]["code"] == "refresh_token_invalidated"


# ---------------------------------------------------------------------------- standalone runner


async def test_standalone_runner_writes_auth_files_and_stops_on_sigterm(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    proc = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "tests.fakes",
            "--accounts",
            "2",
            "--auth-json-dir",
            str(tmp_path / "auth"),
            "--url-file",
            str(url_file),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(1)
                assert chunk, "runner exited before printing its URL"
                line += chunk
        base_url = line.decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and url_file.read_text().strip() == base_url
        auth = json.loads((tmp_path / "auth" / "account2.json").read_text())
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{base_url}/oauth/token",
                json={
                    "client_id": CLIENT_ID,
                    "grant_type": "refresh_token",
                    "refresh_token": auth["tokens"]["refresh_token"],
                },
            )
            assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            assert await proc.wait() == 0


async def test_websocket_upgrade_answers_426(base_url: str) -> None:
    """codex-protocol.md §11.4: a 426 makes Codex fall back to HTTP SSE."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    assert host is not None and port is not None
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(
            b"GET /backend-api/codex/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        with trio.fail_after(10):
            while b"\r\n" not in head:
                chunk = await stream.receive_some(1024)
                assert chunk
                head += chunk
    assert head.startswith(b"HTTP/1.1 426")


async def test_usage_dict_and_recorded_headers(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    fake.script(account, Text("x", usage={"input_tokens": 5, "output_tokens": 1}))
    headers = {**auth_headers(account), "Originator": "codex_cli_rs", "Session_ID": "abc"}
    events = parse_sse((await post_responses(client, base_url, account, headers=headers)).content)
    assert events[-1]["response"]["usage"]["total_tokens"] == 6
    recorded = fake.responses_requests()[-1]
    assert recorded.headers["originator"] == "codex_cli_rs" and recorded.headers["session_id"] == "abc"
    with pytest.raises(ValueError):
        Hold(after_headers=True, then=UsageLimit())


async def test_the_fake_can_pace_its_text_deltas(
    fake: FakeUpstream, account: FakeAccount, base_url: str, client: httpx.AsyncClient
) -> None:
    """``delta_interval_s`` (``python -m tests.fakes --delta-interval-ms``, used by ``make demo``)
    waits before each text delta, as a model typing; 0 (the default) never waits."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    fake.sleep = record
    await post_responses(client, base_url, account)
    assert waits == []
    fake.delta_interval_s = 0.15
    events = parse_sse((await post_responses(client, base_url, account)).content)
    deltas = types(events).count("response.output_text.delta")
    assert deltas > 1 and waits == [0.15] * deltas


def test_the_soak_fakes_401_never_refuses_the_retry_after_a_refresh() -> None:
    """bench/soak.py's failing fake: after a 401 the same account is not refused again for a while,
    so codexgw's retry after its refresh gets an answer (a second 401 would rightly mark the
    account needs_login, and a long soak would end with every account out and only 503s)."""
    from tests.fakes import Unauthorized
    from tests.fakes.__main__ import FailingFake

    fake = FailingFake(1.0)
    fake.MIX = ((1.0, Unauthorized()),)  # type: ignore[misc]
    alice = fake.add_account(email="alice@example.com")
    bob = fake.add_account(email="bob@example.com")
    assert isinstance(fake.next_behaviour(alice), Unauthorized)
    assert not isinstance(fake.next_behaviour(alice), Unauthorized)  # the retry after the refresh
    assert isinstance(fake.next_behaviour(bob), Unauthorized)  # another account: its own gap
