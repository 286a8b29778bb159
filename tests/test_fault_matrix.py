"""The fault matrix: every scenario of the fake upstream × chat/Responses × stream true/false (issue 16).

Two accounts; alice plays the scenario, bob answers ``from bob``. For each cell: no 5xx but the
documented ones (``Failed`` after output, non-streamed: the upstream's ``server_is_overloaded`` as
a 503, README "Errors"), every error OpenAI-shaped, and failover where the README's failover table
says ("moves on" → bob serves; after the first byte → the error in-band, no failover). Non-streamed
answers reach the client only whole, so a drop mid-answer fails over too (issue 16).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Env
from tests.fakes import (
    CustomToolCall,
    DropMidStream,
    Failed,
    Forbidden,
    Incomplete,
    Refusal,
    ServerError,
    Text,
    ToolCall,
    Unauthorized,
    UsageLimit,
    UsageNotIncluded,
)

pytestmark = pytest.mark.trio

ALICE, BOB, IN_BAND = "alice", "bob", "in-band error"

SCENARIOS: dict[str, tuple[Any, str, str]] = {
    # name: (alice's behaviour, who serves when streamed, who serves when not streamed)
    "text": (Text("from alice"), ALICE, ALICE),
    "refusal": (Refusal("no"), ALICE, ALICE),
    "tool_call": (ToolCall("exec", '{"cmd": "ls"}'), ALICE, ALICE),
    "custom_tool_call": (CustomToolCall("apply_patch", "*** Begin Patch"), ALICE, ALICE),
    "incomplete": (Incomplete(), ALICE, ALICE),
    "unauthorized_once": (Unauthorized(), ALICE, ALICE),  # refresh, then the same account
    "usage_limit": (UsageLimit(resets_in_s=600), BOB, BOB),
    "usage_not_included": (UsageNotIncluded(), BOB, BOB),
    "forbidden": (Forbidden(), BOB, BOB),
    "server_error_500": (ServerError(500), BOB, BOB),
    "server_error_502": (ServerError(502), BOB, BOB),
    "server_error_503": (ServerError(503), BOB, BOB),
    "server_error_504": (ServerError(504), BOB, BOB),
    "rate_limited_429": (ServerError(429), BOB, BOB),
    "failed_before_output": (Failed(), BOB, BOB),
    "drop_before_output": (DropMidStream(after_events=1), BOB, BOB),
    "drop_mid_answer": (DropMidStream(after_events=6), IN_BAND, BOB),
    "failed_after_output": (Failed(after_output=True), IN_BAND, "503"),
}


def body_for(path: str, stream: bool) -> dict[str, Any]:
    if "chat" in path:
        return {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return {"model": "gpt-5.5", "input": "hi", "stream": stream}


def assert_openai_error(payload: Any) -> dict[str, Any]:
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    return error


def stream_outcome(path: str, lines: list[str]) -> str:
    """``alice``/``bob`` (who finished the stream) or ``in-band error``."""
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ") and line != "data: [DONE]"]
    last = data[-1]
    if "chat" in path:
        if "error" in last:
            assert_openai_error(last)
            assert "data: [DONE]" not in lines
            return IN_BAND
        assert lines[-1] == "data: [DONE]" or "data: [DONE]" in lines
        return ""
    if last["type"] == "response.failed":
        assert last["response"]["error"]["message"]
        return IN_BAND
    assert last["type"] in ("response.completed", "response.incomplete"), last["type"]
    return ""


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_fault_matrix(env: Env, scenario: str, path: str, stream: bool) -> None:
    behaviour, streamed, whole = SCENARIOS[scenario]
    expected = streamed if stream else whole
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, behaviour)
    env.fake.script(bob, Text("from bob"))
    await env.start(strategy="round-robin")
    async with httpx.AsyncClient(timeout=20) as client:
        if stream:
            async with client.stream("POST", f"{env.url}{path}", json=body_for(path, True)) as r:
                lines = [line async for line in r.aiter_lines()]
        else:
            r = await client.post(f"{env.url}{path}", json=body_for(path, False))
    served = [req.account_id for req in env.fake.responses_requests()]
    if expected == "503":
        assert r.status_code == 503
        assert_openai_error(r.json())
        assert served == [alice.chatgpt_account_id]
        return
    assert r.status_code == 200, (r.status_code, r.read() if stream else r.text)
    who = {alice.chatgpt_account_id: ALICE, bob.chatgpt_account_id: BOB}
    outcome = (stream_outcome(path, lines) if stream else "") or who[served[-1]]
    assert outcome == expected
    if expected == BOB:  # failover: alice first, then bob
        assert served == [alice.chatgpt_account_id, bob.chatgpt_account_id]
    elif expected == IN_BAND:  # after the first byte: no failover
        assert served == [alice.chatgpt_account_id]
