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
