"""End to end: pool rotation, failover before the first byte, token refresh, exhaustion answers."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
import trio

from tests.conftest import Env, in_thread
from tests.fakes import DropMidStream, Failed, ServerError, Text, UsageLimit

pytestmark = pytest.mark.trio

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


def served_by(env: Env) -> list[str]:
    """chatgpt_account_ids of the accounts that got /codex/responses calls, in order."""
    return [r.headers.get("chatgpt-account-id", "") for r in env.fake.responses_requests()]


async def test_usage_limit_rotates_to_next_account_and_cools_down(env: Env) -> None:
    """A 429 usage limit on alice moves the request to bob; alice then sits out until her reset."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, UsageLimit(resets_in_s=600))
    await env.start()
    client = env.openai()
    for _ in range(3):
        completion = await in_thread(client.chat.completions.create, **CHAT)
        assert completion.choices[0].message.content
    assert served_by(env) == [alice.chatgpt_account_id] + [bob.chatgpt_account_id] * 3
    env.clock.advance(601)
    for topic in ("tea", "coffee"):  # two new conversations: round-robin includes alice again
        await in_thread(
            client.chat.completions.create, model="gpt-5.5", messages=[{"role": "user", "content": topic}]
        )
    assert alice.chatgpt_account_id in served_by(env)[4:]


async def test_a_conversation_stays_on_its_account_and_moves_when_it_cools_down(env: Env) -> None:
    """Session affinity: turns of one conversation keep one account (prompt cache); a 429 moves them."""
    env.add_account("alice")
    env.add_account("bob")
    await env.start()
    client = env.openai()
    history = [{"role": "user", "content": "let us talk about tea"}]
    for turn in range(3):
        await in_thread(client.chat.completions.create, model="gpt-5.5", messages=history)
        history = [
            *history,
            {"role": "assistant", "content": f"answer {turn}"},
            {"role": "user", "content": "more"},
        ]
    first = served_by(env)
    assert len(set(first)) == 1
    bound = env.fake.account_by_id(first[0])
    env.fake.script(bound, UsageLimit(resets_in_s=600))
    for _ in range(2):
        await in_thread(client.chat.completions.create, model="gpt-5.5", messages=history)
    moved = served_by(env)[3:]
    assert moved[0] == first[0]  # the 429
    assert moved[1] != first[0] and moved[2] == moved[1]
    headers = [r.headers["session_id"] for r in env.fake.responses_requests()]
    assert len(set(headers)) == 1  # the same upstream session id every turn: prompt caching holds


async def test_every_account_at_its_usage_limit_gives_429_with_resets_at(env: Env) -> None:
    """Every account hits its usage limit: HTTP 429 usage_limit_reached, whose resets_at is the
    pool's earliest reset (not the last answer's) on the first request as on the next ones."""
    alice = env.add_account("alice", plan_type="pro")
    bob = env.add_account("bob", plan_type="pro")
    env.fake.script(alice, UsageLimit(resets_in_s=900))
    env.fake.script(bob, UsageLimit(resets_in_s=1800))
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{env.url}/v1/responses", json={"model": "gpt-5.5", "input": "hi", "stream": True}
        )
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["type"] == "usage_limit_reached"
        assert error["plan_type"] == "pro"
        assert abs(error["resets_at"] - (env.clock.now + 900)) <= 2
        assert abs(error["resets_at"] - (env.clock.now + int(r.headers["retry-after"]))) < 1
        assert "the earliest (alice) resets in 15 min" in error["message"]
        # The pool remembers: the next request is refused at once, with the same reset.
        calls = len(env.fake.responses_requests())
        r2 = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
        assert r2.status_code == 429
        assert r2.json()["error"]["type"] == "usage_limit_reached"
        assert r2.json()["error"]["resets_at"] == error["resets_at"]
        assert abs(int(r2.headers["retry-after"]) - 900) <= 2
        assert len(env.fake.responses_requests()) == calls


async def test_one_account_at_its_limit_and_the_others_failing_is_a_503_not_a_usage_limit(env: Env) -> None:
    """The issue's outage: alice cools down after a usage limit, bob and carol answer 500. That is no
    usage limit of the pool: 503 with Retry-After, and a message naming what happened to each."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    carol = env.add_account("carol")
    env.fake.script(alice, UsageLimit(resets_in_s=3600))
    env.fake.script(bob, Text("from bob"), ServerError(500))
    env.fake.script(carol, ServerError(500))
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)  # alice 429s, bob serves
        assert first.status_code == 200
        r = await client.post(
            f"{env.url}/v1/chat/completions",
            json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "another topic"}]},
        )
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "no_account_available" and "resets_at" not in error
    assert r.headers["retry-after"] == "1"
    message = error["message"]
    assert "alice is at its usage limit (resets in 60 min)" in message
    assert "bob failed (the Codex backend answered HTTP 500" in message
    assert "carol failed (the Codex backend answered HTTP 500" in message
    assert message.endswith("retry after 1 s")
    assert sorted(served_by(env)[2:]) == sorted([bob.chatgpt_account_id, carol.chatgpt_account_id])


async def test_a_usage_limit_as_the_last_answer_after_an_outage_is_a_503(env: Env) -> None:
    """bob answers 500, then alice answers a usage limit: the last answer is a usage limit, but bob
    is not at one, so the client gets 503 (which the Codex CLI retries), not 429."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, Text("from alice"), UsageLimit(resets_in_s=600))
    env.fake.script(bob, ServerError(500))
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)  # round-robin: alice
        assert first.status_code == 200
        other = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "another topic"}]}
        r = await client.post(f"{env.url}/v1/chat/completions", json=other)  # bob 500s, alice 429s
    assert served_by(env) == [alice.chatgpt_account_id, bob.chatgpt_account_id, alice.chatgpt_account_id]
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["message"] == (
        "No account can serve this request now: alice is at its usage limit (resets in 10 min); "
        "bob failed (the Codex backend answered HTTP 500: An error occurred while processing your "
        "request. You can retry your request, or contact us through our help center if the error "
        "persists.); retry after 1 s"
    )


async def test_no_usable_account_gives_503_with_retry_after(env: Env) -> None:
    """Every account cooling down for a reason other than a usage limit: 503 with Retry-After."""
    env.add_account("alice")
    await env.start()
    gw = env.gateway
    (account_id,) = gw.accounts
    gw.pool.cool_down(account_id, until=env.clock.now + 120, reason="rate_limited")
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    assert 119 <= int(r.headers["retry-after"]) <= 120
    assert r.json()["error"]["code"] == "no_account_available"


async def test_no_accounts_gives_503(env: Env) -> None:
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    assert "account" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "behaviour",
    [ServerError(500), ServerError(503), DropMidStream(after_events=1), Failed(code="server_is_overloaded")],
    ids=["500", "503", "drop-before-output", "failed-before-output"],
)
async def test_failures_before_the_first_byte_fail_over(env: Env, behaviour: object) -> None:
    """5xx, a stream cut before output and an early response.failed move to the next account."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, behaviour)  # type: ignore[arg-type]
    env.fake.script(bob, Text("from bob"))
    await env.start()
    completion = await in_thread(env.openai().chat.completions.create, **CHAT)
    assert completion.choices[0].message.content == "from bob"
    assert served_by(env) == [alice.chatgpt_account_id, bob.chatgpt_account_id]


async def test_failure_after_output_reaches_the_client_as_an_error(env: Env) -> None:
    """After the first byte there is no failover: the SDK raises APIError from the error event."""
    alice = env.add_account("alice")
    env.add_account("bob")
    env.fake.script(alice, DropMidStream(after_events=6))
    await env.start()
    client = env.openai()

    def run() -> None:
        for _ in client.chat.completions.create(**CHAT, stream=True):
            pass

    with pytest.raises(openai.APIError):
        await in_thread(run)
    assert served_by(env) == [alice.chatgpt_account_id]


async def test_401_refreshes_the_token_and_retries_once(env: Env) -> None:
    """An access token the backend no longer accepts is refreshed once; the request succeeds."""
    alice = env.add_account("alice")
    await env.start()
    old_refresh = alice.refresh_token
    env.fake.expire_access_token(alice)
    completion = await in_thread(env.openai().chat.completions.create, **CHAT)
    assert completion.choices[0].message.content
    assert alice.refresh_count == 1
    stored = env.gateway.store.get_account("alice")
    assert stored.refresh_token == alice.refresh_token != old_refresh


async def test_fifty_concurrent_requests_on_an_expired_token_refresh_once(env: Env) -> None:
    """Refresh tokens are single-use: 50 requests racing on an expired token cause ONE refresh."""
    alice = env.add_account("alice", access_ttl_s=3600)
    await env.start()
    env.clock.advance(4000)  # the access token's exp is now in the past, for codexgw and the fake
    gate = trio.Event()
    env.fake.refresh_gate = gate
    results: list[int] = []
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as client:

        async def one() -> None:
            r = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
            results.append(r.status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one)
            await env.fake.wait_for(lambda: len(env.fake.token_requests) >= 1)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
    assert results == [200] * 50
    assert alice.refresh_count == 1
    assert len(env.fake.token_requests) == 1
    assert env.gateway.refresher.refresh_calls == 1


async def test_permanent_refresh_failure_marks_needs_login_and_moves_on(env: Env) -> None:
    """A reused/expired refresh token takes the account out of rotation; bob serves instead."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    await env.start()
    env.fake.expire_access_token(alice)
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_expired", "message": "expired"}})
    completion = await in_thread(env.openai().chat.completions.create, **CHAT)
    assert completion.choices[0].message.content
    assert served_by(env)[-1] == bob.chatgpt_account_id
    stored = env.gateway.store.get_account("alice")
    assert stored.status == "needs_login"
    assert "refresh_token_expired" in (stored.status_reason or "")
    for _ in range(2):
        await in_thread(env.openai().chat.completions.create, **CHAT)
    assert served_by(env)[-2:] == [bob.chatgpt_account_id] * 2


async def test_accounts_imported_while_serving_are_picked_up(env: Env) -> None:
    """The server sees an account the CLI adds to the store, without a restart."""
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 503
        env.add_account("late")
        with trio.fail_after(5):
            while not env.gateway.accounts:
                await trio.sleep(0.02)
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 200


async def test_background_refresh_renews_a_token_before_it_expires(env: Env) -> None:
    """With no traffic at all, a token within refresh_margin_s of its exp is refreshed in the
    background, persisted, and the account stays active; nothing is refreshed before that."""
    alice = env.add_account("alice", access_ttl_s=3600)
    await env.start(refresh_margin_s=300, refresh_check_s=0.02)
    await trio.sleep(0.2)  # several checks while the token still has ~60 min: no refresh
    assert alice.refresh_count == 0
    old_refresh = env.gateway.store.get_account("alice").refresh_token
    env.clock.advance(3600 - 200)  # now 200 s before exp: inside the margin
    with trio.fail_after(5):
        await env.fake.wait_for(lambda: alice.refresh_count == 1)
        while env.gateway.store.get_account("alice").refresh_token == old_refresh:
            await trio.sleep(0.01)
    stored = env.gateway.store.get_account("alice")
    assert stored.refresh_token == alice.refresh_token
    assert stored.status == "active"
    assert stored.access_expires_at > env.clock.now + 3000
    await trio.sleep(0.2)  # the fresh token is not refreshed again
    assert alice.refresh_count == 1


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
async def test_a_drop_mid_answer_of_a_non_streamed_request_fails_over(env: Env, path: str) -> None:
    """Issue 16: ``stream: false`` and the upstream drops after some output. Nothing reached the
    client yet, so the request moves to another account instead of answering 502."""
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    env.fake.script(alice, DropMidStream(after_events=6))
    env.fake.script(bob, Text("from bob"))
    await env.start(strategy="round-robin")
    body: dict[str, Any] = (
        {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
        if "chat" in path
        else {"model": "gpt-5.5", "input": "hi"}
    )
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"{env.url}{path}", json={**body, "stream": False})
    assert r.status_code == 200, r.text
    text = (
        r.json()["choices"][0]["message"]["content"]
        if "chat" in path
        else r.json()["output"][0]["content"][0]["text"]
    )
    assert text == "from bob"
    assert served_by(env) == [alice.chatgpt_account_id, bob.chatgpt_account_id]


async def test_the_first_all_429_answer_names_the_earliest_reset_when_the_retries_run_out(env: Env) -> None:
    """Issue 16: with more accounts than moves (``retries`` 1, three accounts, all at their limits)
    the first answer was the last attempt's 429 (the latest reset tried); now it is the pool's,
    the earliest, as on the next requests."""
    accounts = [env.add_account(name) for name in ("alice", "bob", "carol")]
    for account, resets_in_s in zip(accounts, (900, 1800, 2700), strict=True):
        env.fake.script(account, UsageLimit(resets_in_s=resets_in_s))
    await env.start(retries=1, strategy="round-robin")
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
        assert first.status_code == 429
        assert abs(first.json()["error"]["resets_at"] - (env.clock.now + 900)) <= 2
        second = await client.post(f"{env.url}/v1/chat/completions", json=CHAT)
        assert second.status_code == 429
        assert second.json()["error"]["resets_at"] == first.json()["error"]["resets_at"]
