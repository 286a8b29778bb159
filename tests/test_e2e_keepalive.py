"""Keep-alive before the first output (upstream/keepalive.py), end to end.

An upstream that stays silent before its first output (a model reasoning for minutes) must not hold
the client in silence: after ``keepalive_after_s`` the 200 headers and an SSE comment go out, then a
comment every ``heartbeat_s``, failover staying invisible; the answer follows, or, when every
account failed, the error in-band.

**Time is scaled by 1/40**: the gateway waits ``keepalive_after_s = 0.25`` (10 s in production) and
``heartbeat_s = 0.375`` (15 s). "Silent for 40 s" is played by the fake holding the stream until the
test has read the comments 40 s of silence gives (at 10, 25 and 40 s: three), so no test sleeps; the
first byte is checked to come no sooner than the (scaled) 10 s.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tests.conftest import Env
from tests.fakes import Failed, Hold, Text, UsageLimit
from tests.sse_data import data_events as data_of

pytestmark = pytest.mark.trio

SCALE = 1 / 40
KEEPALIVE_AFTER_S = 10 * SCALE
HEARTBEAT_S = 15 * SCALE
COMMENTS_IN_40_S = 3
"""Comments 40 s of silence gives: at 10 s, then every 15 s (25 s, 40 s)."""
COMMENT = ": keep-alive"
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "think hard"}], "stream": True}
RESPONSES = {"model": "gpt-5.5", "input": "think hard", "stream": True}


async def start(env: Env, accounts: int = 1) -> None:
    for i in range(accounts):
        env.add_account(f"acct{i}")
    await env.start(keepalive_after_s=KEEPALIVE_AFTER_S, heartbeat_s=HEARTBEAT_S)


async def read_stream(
    env: Env, path: str, body: dict[str, Any], holds: list[Hold]
) -> tuple[Any, list[str], float]:
    """POST ``body`` and read the SSE lines; each hold of ``holds`` is released, in turn, once
    :data:`COMMENTS_IN_40_S` more comments arrived. Returns ``(response, lines, seconds until the
    first line)``."""
    lines: list[str] = []
    comments = 0
    pending = list(holds)
    first_at: float | None = None
    with trio.fail_after(20):
        started = trio.current_time()
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", f"{env.url}{path}", json=body) as r,
        ):
            async for line in r.aiter_lines():
                if first_at is None:
                    first_at = trio.current_time() - started
                lines.append(line)
                if line == COMMENT:
                    comments += 1
                    if pending and comments >= COMMENTS_IN_40_S:
                        pending.pop(0).release.set()
                        comments = 0
    assert first_at is not None
    return r, lines, first_at




def chat_text(payloads: list[Any]) -> str:
    return "".join(
        p["choices"][0]["delta"].get("content") or "" for p in payloads if p != "[DONE]" and p.get("choices")
    )


async def test_silent_chat_stream_gets_comments_from_10_s_then_the_answer(env: Env, pumps: list) -> None:
    await start(env)
    hold = Hold(after_headers=True, then=Text("Thought about it."))  # created, in_progress, then silence
    env.fake.script(None, hold)
    r, lines, first_at = await read_stream(env, "/v1/chat/completions", CHAT, [hold])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert first_at >= KEEPALIVE_AFTER_S
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert lines[:first_data].count(COMMENT) == COMMENTS_IN_40_S
    payloads = data_of(lines)
    assert chat_text(payloads) == "Thought about it." and payloads[-1] == "[DONE]"
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(pumps) == 1  # after the comments, the relay was pushed from the direct read loop


async def test_silent_responses_stream_gets_comments_then_the_answer(env: Env, pumps: list) -> None:
    """Silent before the upstream's 200 (no byte at all): the client still gets its headers at 10 s."""
    await start(env)
    hold = Hold(then=Text("Thought about it."))
    env.fake.script(None, hold)
    r, lines, first_at = await read_stream(env, "/v1/responses", RESPONSES, [hold])
    assert r.status_code == 200 and first_at >= KEEPALIVE_AFTER_S
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert lines[:first_data].count(COMMENT) == COMMENTS_IN_40_S
    events = data_of(lines)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert "".join(e.get("delta", "") for e in events if e["type"] == "response.output_text.delta") == (
        "Thought about it."
    )
    assert len(pumps) == 1


async def test_failover_after_the_comments_stays_invisible(env: Env) -> None:
    """The first account fails (overloaded) only after the comments began: the second one answers,
    and the client sees comments, then one clean answer."""
    await start(env, accounts=2)
    hold = Hold(after_headers=True, then=Failed("server_is_overloaded"))
    env.fake.script(None, hold, Text("From the second account."))
    _, lines, _ = await read_stream(env, "/v1/chat/completions", CHAT, [hold])
    payloads = data_of(lines)
    assert chat_text(payloads) == "From the second account." and payloads[-1] == "[DONE]"
    assert not any(p != "[DONE]" and "error" in p for p in payloads)
    served = [rec.headers["chatgpt-account-id"] for rec in env.fake.responses_requests()]
    assert len(served) == 2 and served[0] != served[1]


async def test_chat_whose_accounts_all_fail_after_the_silence_ends_with_the_usage_limit_in_band(
    env: Env,
) -> None:
    """Every account at its usage limit, found out after the comments began: ``data: {"error": …}``
    with the usage-limit error and its ``resets_at``, and no ``[DONE]``."""
    await start(env)
    resets_at = int(env.clock.now) + 3600
    hold = Hold(then=UsageLimit(resets_in_s=3600))
    env.fake.script(None, hold)
    r, lines, _ = await read_stream(env, "/v1/chat/completions", CHAT, [hold])
    assert r.status_code == 200
    payloads = data_of(lines)
    assert payloads == [payloads[0]] and "[DONE]" not in lines
    error = payloads[0]["error"]
    assert (error["type"], error["code"]) == ("usage_limit_reached", "usage_limit_reached")
    assert abs(error["resets_at"] - resets_at) <= 1 and error["plan_type"] == "plus"


async def test_responses_whose_accounts_all_fail_after_the_silence_end_with_response_failed(env: Env) -> None:
    """The Responses stream ends with ``response.failed`` carrying the usage-limit code and reset
    (codex-rs reads ``response.error.code``/``resets_at``/``plan_type``, §7)."""
    await start(env)
    resets_at = int(env.clock.now) + 3600
    hold = Hold(then=UsageLimit(resets_in_s=3600))
    env.fake.script(None, hold)
    _, lines, _ = await read_stream(env, "/v1/responses", RESPONSES, [hold])
    (event,) = data_of(lines)
    assert event["type"] == "response.failed"
    error = event["response"]["error"]
    assert error["code"] == "usage_limit_reached" and error["type"] == "usage_limit_reached"
    assert abs(error["resets_at"] - resets_at) <= 1 and error["plan_type"] == "plus"
    assert "limit" in error["message"]


async def test_the_sdk_raises_the_in_band_usage_limit(env: Env) -> None:
    """The ``openai`` SDK skips the comments and raises ``APIError`` on the in-band error (not an
    ``APIStatusError``: the 200 headers had gone out). The upstream's 429 is released as soon as the
    SDK got the committed headers."""
    import openai

    from tests.conftest import in_thread

    await start(env)
    hold = Hold(then=UsageLimit(resets_in_s=600))
    env.fake.script(None, hold)

    def headers_arrived(response: httpx.Response) -> None:  # in the SDK's thread
        trio.from_thread.run_sync(hold.release.set)

    client = env.openai(http_client=httpx.Client(event_hooks={"response": [headers_arrived]}))

    def run() -> None:
        for _ in client.chat.completions.create(model="gpt-5.5", messages=CHAT["messages"], stream=True):
            pass

    with pytest.raises(openai.APIError, match="usage limit") as info:
        await in_thread(run)
    assert not isinstance(info.value, openai.APIStatusError)


async def test_a_client_leaving_during_the_keepalive_closes_the_upstream(env: Env) -> None:
    await start(env)
    hold = Hold(after_headers=True, then=Text("never read"))
    env.fake.script(None, hold)
    with trio.fail_after(20):
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", f"{env.url}/v1/chat/completions", json=CHAT) as r,
        ):
            async for line in r.aiter_lines():
                if line == COMMENT:
                    break
        await env.fake.wait_for(lambda: env.fake.client_disconnects == 1)


async def test_a_quick_answer_is_served_as_before(env: Env) -> None:
    """Output before the keep-alive wait: the upstream's headers are relayed, no comment is written."""
    await start(env)
    env.fake.script(None, Text("quick"))
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
    assert (
        COMMENT not in r.text and r.headers["x-codex-turn-state"] and r.headers["openai-model"] == "gpt-5.5"
    )
