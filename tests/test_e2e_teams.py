"""End to end with the ``openai`` SDK: API keys, their scopes, limits and policy (issue 12).

Users, keys and owners are written to the store as ``codexgw users/keys/accounts set`` write them,
while or before the server runs; the fake upstream tells which account served each request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
import trio

from codexgw.serve import serve
from codexgw.store.keys import revoke_key, rotate_key
from codexgw.store.usage import read_usage
from tests.conftest import Env, in_thread
from tests.fakes import Hold, Text, Usage
from tests.teams_env import eventually, key, own, served_by, store_of, user

pytestmark = pytest.mark.trio


def ask(client: openai.OpenAI, topic: str, **kw: object) -> object:
    return client.chat.completions.create(
        model=str(kw.pop("model", "gpt-5.5")), messages=[{"role": "user", "content": topic}], **kw
    )


async def test_each_key_reaches_only_its_owners_accounts_and_an_unscoped_key_all(env: Env) -> None:
    ada_acct, bob_acct, shared = (
        env.add_account("ada-acct"),
        env.add_account("bob-acct"),
        env.add_account("shared"),
    )
    user(env, "ada")
    user(env, "bob")
    own(env, "ada-acct", "ada")
    own(env, "bob-acct", "bob")
    ada_key, bob_key, master = (
        key(env, "ada-ci", owner="ada"),
        key(env, "bob-ci", owner="bob"),
        key(env, "all"),
    )
    await env.start()
    for secret, expected in ((ada_key, ada_acct), (bob_key, bob_acct)):
        before = len(served_by(env))
        client = env.openai(api_key=secret)
        for topic in ("tea", "coffee", "cocoa", "mate"):
            await in_thread(ask, client, topic)
        assert set(served_by(env)[before:]) == {expected.chatgpt_account_id}
    before = len(served_by(env))
    client = env.openai(api_key=master)
    for topic in ("one", "two", "three", "four", "five", "six"):
        await in_thread(ask, client, topic)
    every = {a.chatgpt_account_id for a in (ada_acct, bob_acct, shared)}
    assert set(served_by(env)[before:]) == every  # the unscoped key rotates over all accounts


async def test_a_key_narrowed_to_accounts_and_an_owner_without_accounts(env: Env) -> None:
    env.add_account("a1")
    a2 = env.add_account("a2")
    user(env, "carol")
    narrow = key(env, "narrow", accounts="a2")
    empty = key(env, "carol-ci", owner="carol")
    await env.start()
    for topic in ("x", "y", "z"):
        await in_thread(ask, env.openai(api_key=narrow), topic)
    assert set(served_by(env)) == {a2.chatgpt_account_id}
    with pytest.raises(openai.InternalServerError) as info:  # 503: nothing in scope, never another
        await in_thread(ask, env.openai(api_key=empty), "hello")
    assert info.value.status_code == 503 and "scope" in str(info.value)
    assert len(served_by(env)) == 3


async def test_once_a_key_exists_every_v1_request_needs_one_on_loopback_too(env: Env) -> None:
    env.add_account("alice")
    secret = key(env, "ci")
    await env.start()
    with pytest.raises(openai.AuthenticationError) as info:
        await in_thread(ask, env.openai(api_key="sk-unused"), "hi")
    assert info.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        await in_thread(env.openai(api_key="sk-unused").models.list)
    assert (await in_thread(ask, env.openai(api_key=secret), "hi")).choices[0].message.content  # type: ignore[attr-defined]
    teams = env.gateway.teams
    assert await eventually(lambda: teams.today("ci")["requests"] == 1)
    assert teams.today("-")["requests"] == 0  # a refused request is nobody's usage


async def test_rpm_answers_429_at_the_request_over_the_limit_with_openai_headers(env: Env) -> None:
    env.add_account("alice")
    secret = key(env, "ci", rpm=2)
    await env.start()
    client = env.openai(api_key=secret)
    first = await in_thread(
        client.chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=[{"role": "user", "content": "1"}],
    )
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert "x-ratelimit-limit-tokens" not in first.headers  # only the limits the key has
    second = await in_thread(
        client.chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=[{"role": "user", "content": "2"}],
    )
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as info:
        await in_thread(ask, client, "3")
    error = info.value.body
    assert info.value.code == "rate_limit_exceeded" and error["type"] == "requests"  # type: ignore[index]
    headers = info.value.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0" and int(headers["retry-after"]) >= 1
    assert len(env.fake.responses_requests()) == 2  # the refused one never went upstream
    env.clock.advance(61)
    assert await in_thread(ask, client, "4")


async def test_tpm_counts_reported_tokens_and_refuses_once_the_window_is_full(env: Env) -> None:
    alice = env.add_account("alice")
    secret = key(env, "ci", tpm=50)
    env.fake.script(alice, *[Text("ok", usage=Usage(input_tokens=30, output_tokens=10))] * 3)
    await env.start()
    client = env.openai(api_key=secret)
    await in_thread(ask, client, "1")
    raw = await in_thread(
        client.chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=[{"role": "user", "content": "2"}],
    )
    assert (
        raw.headers["x-ratelimit-limit-tokens"] == "50"
        and raw.headers["x-ratelimit-remaining-tokens"] == "10"
    )
    with pytest.raises(openai.RateLimitError) as info:
        await in_thread(ask, client, "3")
    assert info.value.body["type"] == "tokens"  # type: ignore[index]
    assert info.value.response.headers["x-ratelimit-remaining-tokens"] == "0"


async def test_tokens_per_day_refuses_once_spent(env: Env) -> None:
    alice = env.add_account("alice")
    secret = key(env, "ci", tokens_per_day=100)
    env.fake.script(alice, *[Text("ok", usage=Usage(input_tokens=50, output_tokens=10))] * 3)
    await env.start()
    client = env.openai(api_key=secret)
    await in_thread(ask, client, "1")
    await in_thread(ask, client, "2")  # 60 < 100 before it: allowed, 120 after
    with pytest.raises(openai.RateLimitError) as info:
        await in_thread(ask, client, "3")
    assert info.value.body["type"] == "tokens" and "per day" in info.value.message  # type: ignore[index]
    assert info.value.response.headers["x-should-retry"] == "false"  # until midnight: no SDK retries


async def test_max_streams_counts_requests_in_flight(env: Env) -> None:
    alice = env.add_account("alice")
    secret = key(env, "ci", max_streams=1)
    hold = Hold(then=Text("slow"))
    env.fake.script(alice, hold)
    await env.start()
    client = env.openai(api_key=secret)
    results: list[object] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _collect(results, in_thread(ask, client, "slow one")))
        await hold.reached.wait()
        with pytest.raises(openai.RateLimitError) as info:
            await in_thread(ask, client, "meanwhile")
        assert "concurrent" in info.value.message
        hold.release.set()
    assert results
    assert await in_thread(ask, client, "after")  # the slot was given back


async def _collect(into: list[object], awaitable: object) -> None:
    into.append(await awaitable)  # type: ignore[misc]


async def test_a_model_outside_the_allowlist_is_refused(env: Env) -> None:
    env.add_account("alice")
    secret = key(env, "ci", models=["gpt-5.5"])
    await env.start()
    client = env.openai(api_key=secret)
    with pytest.raises(openai.PermissionDeniedError) as info:
        await in_thread(ask, client, "hi", model="gpt-5.4")
    assert info.value.code == "model_not_allowed" and info.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.PermissionDeniedError):
        await in_thread(client.responses.create, model="gpt-5.4", input="hi")
    assert await in_thread(ask, client, "hi", model="gpt-5.5-high")  # an effort of an allowed model
    assert len(env.fake.responses_requests()) == 1
    listed = [m.id for m in await in_thread(lambda: list(client.models.list()))]
    assert listed and all(m == "gpt-5.5" or m.startswith("gpt-5.5-") for m in listed)  # what it may use
    assert (await in_thread(client.models.retrieve, "gpt-5.5-high")).id == "gpt-5.5-high"
    with pytest.raises(openai.NotFoundError):
        await in_thread(client.models.retrieve, "gpt-5.4")


async def test_effort_ceiling_lowers_and_names_it_and_the_keys_reasoning_display(env: Env) -> None:
    alice = env.add_account("alice")
    secret = key(env, "ci", max_effort="medium", reasoning_mode="think")
    env.fake.script(alice, *[Text("answer", reasoning_summary="pondering")] * 3)
    await env.start()
    client = env.openai(api_key=secret)
    raw = await in_thread(
        client.chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=[{"role": "user", "content": "think hard"}],
        reasoning_effort="xhigh",
    )
    assert raw.headers["x-codexgw-effort-lowered"] == "xhigh->medium"
    assert env.fake.responses_requests()[-1].json["reasoning"]["effort"] == "medium"
    assert "<think>" in (raw.parse().choices[0].message.content or "")  # the key's default display
    hidden = await in_thread(ask, client, "again", extra_headers={"x-codexgw-reasoning": "hidden"})
    assert "<think>" not in (hidden.choices[0].message.content or "")  # type: ignore[attr-defined]
    low = await in_thread(client.responses.with_raw_response.create, model="gpt-5.5-low", input="hi")
    assert "x-codexgw-effort-lowered" not in low.headers


async def test_revocation_and_rotation_are_in_force_within_a_second(env: Env) -> None:
    """Every change is in force at the server's next poll of the store's generation (at most
    ``accounts_poll_s`` later, 1 s by default): after that poll, and no later, requests see it."""
    from codexgw.config import Settings

    assert Settings().accounts_poll_s <= 1.0
    env.add_account("alice")
    key(env, "first")  # keys are required from the start
    await env.start(accounts_poll_s=1.0)  # the default poll of a real server
    store, gw = store_of(env), env.gateway

    def ci() -> Any:
        return gw.teams.ring.keys.get("ci")

    async def next_poll(seen: Callable[[], bool]) -> float:
        """Wait until the server's keys show the last write (``seen``); returns the seconds it took."""
        return await eventually(seen, within_s=5)

    async def refused(secret: str) -> bool:
        try:
            await in_thread(ask, env.openai(api_key=secret), "?")
        except openai.AuthenticationError:
            return True
        return False

    old = key(env, "ci")  # created while the server runs
    assert await next_poll(lambda: ci() is not None) < 3  # about a second; generous when loaded
    client = env.openai(api_key=old)
    assert await in_thread(ask, client, "hi")
    new = "cgw-" + "x" * 43
    rotate_key(store, "ci", new, grace_s=3600, now=env.clock())
    await next_poll(lambda: ci().prefix == new[:12])
    assert await in_thread(ask, env.openai(api_key=new), "new")
    assert await in_thread(ask, client, "old secret in its grace period")
    newer = "cgw-" + "y" * 43
    rotate_key(store, "ci", newer, grace_s=0, now=env.clock())
    await next_poll(lambda: ci().prefix == newer[:12])
    assert await refused(new) and await refused(old)
    assert await in_thread(ask, env.openai(api_key=newer), "newest")
    revoke_key(store, "ci", now=env.clock())
    await next_poll(lambda: ci().revoked_at is not None)
    assert await refused(newer)


SCRIPTED = [
    Usage(input_tokens=120, output_tokens=30, cached_tokens=64, reasoning_tokens=12),
    Usage(input_tokens=7, output_tokens=5),
    Usage(input_tokens=300, output_tokens=90, cached_tokens=0, reasoning_tokens=40),
    Usage(input_tokens=11, output_tokens=3, cached_tokens=8, reasoning_tokens=0),
]


async def test_usage_counters_equal_the_upstreams_reported_usage_also_after_a_restart(env: Env) -> None:
    """Chat and Responses, streamed and whole: the key's counters (in /status, the store and
    /metrics) are the sums the fake reported; a restart keeps them, and tokens_per_day counts them."""
    alice = env.add_account("alice")
    secret = key(env, "ci", tokens_per_day=10_000)
    ops = key(env, "ops", admin=True)  # /status and /metrics need an admin key once keys exist
    env.fake.script(alice, *[Text("ok", usage=u) for u in SCRIPTED])
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:  # a server we can stop and wait for
        running = await nursery.start(
            lambda task_status: serve(
                env.settings(), shutdown=shutdown, clock=env.clock, task_status=task_status
            )
        )
        env.running = running
        client = env.openai(api_key=secret)
        seen = []
        seen.append((await in_thread(ask, client, "one")).usage)
        stream = await in_thread(
            client.chat.completions.create, model="gpt-5.5", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "two"}],
        )  # fmt: skip
        chunks = await in_thread(list, stream)
        seen.append(chunks[-1].usage)
        seen.append((await in_thread(client.responses.create, model="gpt-5.5", input="three")).usage)
        events = await in_thread(
            lambda: list(client.responses.create(model="gpt-5.5", input="four", stream=True))
        )
        seen.append(events[-1].response.usage)
        expected = {
            "requests": 4, "errors": 0,
            "input_tokens": sum(u.input_tokens for u in SCRIPTED),
            "cached_tokens": sum(u.cached_tokens for u in SCRIPTED),
            "output_tokens": sum(u.output_tokens for u in SCRIPTED),
            "reasoning_tokens": sum(u.reasoning_tokens for u in SCRIPTED),
        }  # fmt: skip
        reported_in = [getattr(u, "prompt_tokens", None) or getattr(u, "input_tokens", 0) for u in seen]
        assert sum(reported_in) == expected["input_tokens"]  # what the client saw is what was counted
        assert await eventually(lambda: running.gateway.teams.today("ci")["requests"] == 4)
        assert running.gateway.teams.today("ci") == expected
        assert await in_thread(_status_code, f"{env.url}/status", secret) == 403
        status = await in_thread(_get, f"{env.url}/status", ops)
        row = next(r for r in status["keys"] if r["name"] == "ci")
        assert {k: row[k] for k in expected} == expected and secret not in str(status)
        metrics = await in_thread(_text, f"{env.url}/metrics", ops)
        assert (
            f'codexgw_key_tokens_total{{key="ci",kind="input"}} {float(expected["input_tokens"])}' in metrics
        )
        assert 'codexgw_key_requests_total{key="ci"} 4.0' in metrics and secret not in metrics
        shutdown.set()  # the last counters are flushed on the way out
    rows = read_usage(store_of(env), since=0, by="key")
    assert rows == [{"bucket": "ci", **expected}]
    env.fake.script(alice, Text("ok", usage=Usage(input_tokens=1, output_tokens=1)))
    restarted = await env.start()
    assert restarted.gateway.teams.today("ci") == expected  # read back from the store
    await in_thread(ask, env.openai(api_key=secret), "five")
    assert await eventually(lambda: restarted.gateway.teams.today("ci")["requests"] == 5)
    assert (
        restarted.gateway.teams.ledger.tokens_today("ci", env.clock())
        == expected["input_tokens"] + expected["output_tokens"] + 2
    )


def _get(url: str, secret: str) -> dict:
    import httpx

    return httpx.get(url, headers={"authorization": f"Bearer {secret}"}, timeout=10).json()


def _status_code(url: str, secret: str) -> int:
    import httpx

    return httpx.get(url, headers={"authorization": f"Bearer {secret}"}, timeout=10).status_code


def _text(url: str, secret: str) -> str:
    import httpx

    return httpx.get(url, headers={"authorization": f"Bearer {secret}"}, timeout=10).text


async def test_the_websocket_transport_keeps_the_keys_scope_and_policy(env: Env) -> None:
    """The Codex CLI's WebSocket: the handshake's key decides every turn's accounts and policy."""
    from tests.test_responses_ws import create, message
    from tests.wsclient import Rejected, connect

    env.add_account("shared")
    mine = env.add_account("ada-acct")
    user(env, "ada")
    own(env, "ada-acct", "ada")
    secret = key(env, "ada-ws", owner="ada", models=["gpt-5.5"], rpm=2)
    await env.start()
    with pytest.raises(Rejected) as info:
        await connect(env.url, headers={"authorization": "Bearer cgw-unknown"})
    assert info.value.status == 401
    ws = await connect(env.url, headers={"authorization": f"Bearer {secret}"})
    for topic in ("one", "two"):
        await ws.send_json(create([message("user", topic, f"m-{topic}")]))
        assert (await ws.recv_until("response.completed"))[-1]["type"] == "response.completed"
    assert set(served_by(env)) == {mine.chatgpt_account_id}
    await ws.send_json(create([message("user", "three", "m3")]))
    [error] = await ws.recv_until("error")
    assert error["status"] == 429 and error["error"]["code"] == "rate_limit_exceeded"
    env.clock.advance(61)
    await ws.send_json(create([message("user", "four", "m4")], model="gpt-5.4"))
    [refused] = await ws.recv_until("error")
    assert refused["status"] == 403 and refused["error"]["code"] == "model_not_allowed"
    assert await eventually(lambda: env.gateway.teams.today("ada-ws")["requests"] == 4)


async def test_a_failed_keys_reload_is_tried_again_at_the_next_poll(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that cannot be read once (locked) must not leave the server on stale keys."""
    import codexgw.upstream.teams as teams_module

    env.add_account("alice")
    key(env, "first")
    await env.start()
    real, failures = teams_module.list_keys, []

    def flaky(store: object) -> object:
        if not failures:
            failures.append(1)
            raise OSError("database is locked")
        return real(store)  # type: ignore[arg-type]

    monkeypatch.setattr(teams_module, "list_keys", flaky)
    secret = key(env, "late")
    await eventually(lambda: "late" in env.gateway.teams.ring.keys)
    assert failures and await in_thread(ask, env.openai(api_key=secret), "hi")
