"""``serve`` builds the Gateway complete: nothing is set on it afterwards, nothing is opened lazily."""

from __future__ import annotations

import trio

from codexgw.store.responses import ResponseStore
from codexgw.upstream.catalog import Catalog
from codexgw.upstream.prober import Prober
from tests.conftest import Env


async def test_the_running_gateway_is_complete_before_any_request(env: Env) -> None:
    alice = env.add_account("alice")
    await env.start(probe_interval_s=0)
    gw = env.gateway
    assert isinstance(gw.nursery, trio.Nursery)
    assert isinstance(gw.prober, Prober) and isinstance(gw.catalog, Catalog)
    assert isinstance(gw.responses, ResponseStore)
    assert gw.responses.path == env.store_dir / "responses.db" and gw.responses.path.exists()
    assert [a.name for a in gw.accounts.values()] == ["alice"]  # loaded before serving
    assert gw.pool is gw.account_state.pool and gw.store is gw.account_state.store
    assert env.fake.requests == [] and alice.refresh_count == 0


async def test_the_prober_works_on_the_gateways_accounts_and_pool(env: Env) -> None:
    """The prober's collaborators are the gateway's own parts: its probe lands in the same pool."""
    env.add_account("alice")
    await env.start(probe_interval_s=0)
    gw = env.gateway
    (account_id,) = gw.accounts
    assert gw.pool.snapshot(env.clock.now)[0]["quota"] is None
    snapshot = await gw.prober.probe(account_id)
    assert gw.pool.snapshot(env.clock.now)[0]["quota"] is not None
    assert snapshot.observed_at == env.clock.now
