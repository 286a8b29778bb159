"""The model catalogue (``upstream/catalog.py``): ``/codex/models`` fetched with an account's token,
cached ``models_ttl_s``, the built-in list (codex-protocol.md §10) when no account can fetch it."""

from __future__ import annotations

import trio

from codexgw.upstream.catalog import BUILTIN_MODELS
from tests.conftest import Env


def fetches(env: Env) -> int:
    return sum(1 for r in env.fake.requests if r.path.endswith("/codex/models"))


async def test_the_catalogue_is_cached_for_its_ttl(env: Env) -> None:
    env.add_account("alice")
    await env.start(models_ttl_s=100)
    catalog = env.gateway.catalog
    first = await catalog.models()
    assert first is not BUILTIN_MODELS and all(isinstance(m["slug"], str) for m in first)
    env.clock.advance(99)
    assert await catalog.models() == first
    assert fetches(env) == 1
    env.clock.advance(1)
    assert await catalog.models() == first
    assert fetches(env) == 2


async def test_no_account_means_the_builtin_list_which_is_not_cached(env: Env) -> None:
    await env.start()
    gw = env.gateway
    assert await gw.models() is BUILTIN_MODELS
    assert fetches(env) == 0
    env.add_account("alice")
    with trio.fail_after(5):
        while not gw.accounts:
            await trio.sleep(0.01)
    assert await gw.models() is not BUILTIN_MODELS
    assert fetches(env) == 1


async def test_an_account_that_cannot_refresh_falls_back_to_the_builtin_list(env: Env) -> None:
    alice = env.add_account("alice", access_ttl_s=30)  # within the on-use margin: fetching refreshes
    env.fake.fail_next_refresh(503, "busy")
    await env.start()
    assert await env.gateway.models() is BUILTIN_MODELS
    assert fetches(env) == 0 and alice.refresh_count == 0


async def test_an_unknown_model_is_a_400_model_not_found_once_the_catalogue_is_known(env: Env) -> None:
    """Before the catalogue is known the backend answers for itself; once it is, a model it does not
    list is refused before any account is used. Suffixes (``gpt-5.5-high``) stay accepted."""
    import httpx

    env.add_account("alice")
    await env.start()
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=30) as client:
        before = await client.post(f"{env.url}/v1/chat/completions", json={"model": "gpt-9", **chat})
        assert before.status_code == 400 and before.json()["error"]["code"] != "model_not_found"
        assert (await client.get(f"{env.url}/v1/models")).status_code == 200  # the catalogue is fetched
        calls = len(env.fake.responses_requests())
        for path, body in (
            ("/v1/chat/completions", {"model": "gpt-9", **chat}),
            ("/v1/responses", {"model": "gpt-9-high", "input": "hi"}),
            ("/v1/responses/compact", {"model": "gpt-9", "input": "hi"}),
        ):
            r = await client.post(f"{env.url}{path}", json=body)
            assert r.status_code == 400, (path, r.text)
            error = r.json()["error"]
            assert (error["code"], error["param"], error["type"]) == (
                "model_not_found", "model", "invalid_request_error"
            ), path  # fmt: skip
            assert "'gpt-9' is not served" in error["message"] and "GET /v1/models" in error["message"]
        assert len(env.fake.responses_requests()) == calls  # no account was used
        for model in ("gpt-5.5", "gpt-5.5-high", "gpt-5.4-mini", "codex-auto-review"):
            ok = await client.post(f"{env.url}/v1/chat/completions", json={"model": model, **chat})
            assert ok.status_code == 200, (model, ok.text)
