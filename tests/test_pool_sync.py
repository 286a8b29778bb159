"""The pool's shared runtime state: pool/sync.py (pure), store/pool_state.py (SQL), and a restart of
one ``serve`` keeping its cooldowns and quota snapshots (issue 16 item 8)."""

from __future__ import annotations

import httpx
import pytest
import trio

from codexgw.pool.affinity import DERIVED_PREFIX
from codexgw.pool.quota import QuotaSnapshot, Window
from codexgw.pool.scheduler import AccountView, Pool
from codexgw.pool.sync import PoolSync, SessionRow, StateRow
from codexgw.store.pool_state import exchange, purge_sessions
from codexgw.store.sqlite import Store
from tests.conftest import Env
from tests.fakes import UsageLimit

NOW = 1_000_000.0
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


def two_pools() -> tuple[Pool, PoolSync, Pool, PoolSync]:
    views = [AccountView(id=i, name=f"a{i}", enabled=True, status="active") for i in (1, 2)]
    a, b = Pool(), Pool()
    a.set_accounts(views)
    b.set_accounts(views)
    return a, PoolSync(a), b, PoolSync(b)


def test_a_cooldown_learned_by_one_pool_reaches_the_other_and_is_not_echoed() -> None:
    a, sa, b, sb = two_pools()
    a.cool_down(1, until=NOW + 600, reason="usage_limit_reached", now=NOW)
    rows, _ = sa.outgoing(NOW)
    assert [r.account_id for r in rows] == [1]
    assert sb.apply(rows) == 1
    assert b.cooldown_of(1, now=NOW + 1) == (NOW + 600, "usage_limit_reached")
    assert sb.outgoing(NOW + 1) == ([], [])  # applied rows are not sent back
    assert sa.outgoing(NOW + 1) == ([], [])  # nothing new here either


def test_an_older_cooldown_does_not_replace_a_newer_one_and_a_clear_travels() -> None:
    a, sa, b, sb = two_pools()
    b.cool_down(1, until=NOW + 900, reason="newer", now=NOW + 10)
    sb.outgoing(NOW + 10)  # b's tick shares it (a misses that row here)
    a.cool_down(1, until=NOW + 60, reason="older", now=NOW)
    rows, _ = sa.outgoing(NOW + 10)
    sb.apply(rows)
    assert b.cooldown_of(1, now=NOW + 20) == (NOW + 900, "newer")
    b.clear_cooldown(1)  # `accounts reset` through one worker
    cleared, _ = sb.outgoing(NOW + 30)
    assert cleared[0].cooldown is None and cleared[0].cleared_at == NOW + 30
    sa.apply(cleared)
    assert a.is_usable(1, now=NOW + 31)
    sa.apply(rows)  # the old row read again later: the clear came after its cause
    assert a.is_usable(1, now=NOW + 31)


def test_a_cooldown_ending_by_itself_is_no_change_and_quota_rows_move_cooldowns() -> None:
    a, sa, b, sb = two_pools()
    a.cool_down(1, until=NOW + 5, reason="r", now=NOW)
    sb.apply(sa.outgoing(NOW)[0])
    assert sa.outgoing(NOW + 10) == ([], [])  # expired, not cleared: nothing to tell
    full = QuotaSnapshot(Window(100.0, 300, NOW + 3600), None, observed_at=NOW + 20)
    a.record_quota(2, full)
    sb.apply(sa.outgoing(NOW + 20)[0])
    assert b.cooldown_of(2, now=NOW + 21) == (NOW + 3600, "usage_limit")


def test_sessions_are_journaled_once_per_move_and_learned_by_the_other() -> None:
    a, sa, b, sb = two_pools()
    assert isinstance(a.pick(now=NOW, session="s1"), object)
    bound = a.affinity.get("s1", NOW)
    a.pick(now=NOW + 1, session="s1")  # a hit: no new journal entry (refreshed at most every ttl/4)
    _, sessions = sa.outgoing(NOW + 1)
    assert sessions == [SessionRow("s1", bound, NOW)]
    sb.apply([], sessions)
    assert b.affinity.get("s1", NOW + 2) == bound
    a.pick(now=NOW + a.affinity.ttl_s / 4 + 1, session="s1")
    assert len(sa.outgoing(NOW + 2)[1]) == 1  # the refresh travels, so the binding lives on elsewhere


def test_store_batches_merge_field_by_field_and_read_back(tmp_path) -> None:
    store = Store.open(tmp_path / "s")
    ids = [_account(store, n) for n in ("a", "b")]
    first = exchange(store, 0)
    assert first.states == [] and first.seq == 0
    from codexgw.pool.scheduler import Cooldown

    newer = StateRow(ids[0], Cooldown(NOW + 900, "newer", True, NOW + 10))
    older = StateRow(ids[0], Cooldown(NOW + 60, "older", True, NOW))
    snap = QuotaSnapshot(Window(40.0, 300, NOW + 3600), None, observed_at=NOW + 5)
    exchange(store, 0, [newer])
    batch = exchange(store, 0, [StateRow(ids[0], older.cooldown, None, snap)], [SessionRow("s", ids[1], NOW)])
    assert batch.seq == 2
    (row,) = batch.states
    assert row.cooldown == newer.cooldown  # the older cooldown lost, its quota snapshot was kept
    assert row.quota == snap
    assert batch.sessions == [SessionRow("s", ids[1], NOW)]
    assert exchange(store, batch.seq).states == []  # nothing since
    assert purge_sessions(store, before=NOW + 1) == 1


def _account(store: Store, name: str) -> int:
    from tests.fakes import FakeUpstream

    fake = FakeUpstream()
    account = fake.add_account(email=f"{name}@example.com")
    from codexgw.store.importers import load_codex_auth_json

    path = store.directory / f"{name}.json"
    fake.write_auth_json(account, path)
    return store.upsert_account(load_codex_auth_json(path), name=name)[0].id


@pytest.mark.trio
async def test_a_restart_keeps_the_cooldown_and_the_quota_snapshot(env: Env) -> None:
    """Issue 16 item 8: a 429's cooldown and the latest quota reading survive a restart of serve
    (before: the restarted server sent the next request straight back into alice's limit)."""
    alice = env.add_account("alice")
    env.add_account("bob")
    env.fake.script(alice, UsageLimit(resets_in_s=600))
    await env.start()
    gw = env.gateway
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 200
    alice_id = next(a.id for a in gw.accounts.values() if a.name == "alice")
    until = gw.pool.cooldown_of(alice_id, now=env.clock())
    assert until is not None
    snapshot = QuotaSnapshot(Window(42.0, 300, env.clock() + 3600), None, observed_at=env.clock())
    gw.pool.record_quota(next(a.id for a in gw.accounts.values() if a.name == "bob"), snapshot)
    assert env.shutdown is not None
    env.shutdown.set()
    await trio.sleep(0.5)  # the last tick is written as the server stops
    await env.start()
    again = env.gateway
    assert again is not gw
    assert again.pool.cooldown_of(alice_id, now=env.clock()) == until
    bob = next(r for r in again.pool.snapshot(env.clock()) if r["name"] == "bob")
    assert bob["quota"]["primary"]["used_percent"] == 42.0
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=CHAT)).status_code == 200
    served = [r.headers.get("chatgpt-account-id") for r in env.fake.responses_requests()]
    assert served[-1] != alice.chatgpt_account_id  # not straight back into alice's limit


def test_our_own_row_read_back_after_a_local_clear_does_not_bring_the_cooldown_back() -> None:
    """A clear while a tick's store round trip runs: the row read back is our own older share; it
    must not undo the clear, and the clear must still go out (test_prober saw bob cooling again)."""
    a, sa, _b, _sb = two_pools()
    a.cool_down(1, until=NOW + 600, reason="usage_limit", now=NOW)
    rows, _ = sa.outgoing(NOW)
    a.clear_cooldown(1)  # `accounts reset`, applied while the batch was being written
    sa.apply(rows)  # the batch read back
    assert a.is_usable(1, now=NOW + 1)
    cleared, _ = sa.outgoing(NOW + 1)
    assert cleared and cleared[0].cooldown is None and cleared[0].cleared_at == NOW + 1


def test_a_quota_reading_read_again_does_not_bring_back_a_cleared_cooldown() -> None:
    a, sa, _b, _sb = two_pools()
    full = QuotaSnapshot(Window(100.0, 300, NOW + 3600), None, observed_at=NOW)
    a.record_quota(1, full)  # exhausted: a quota cooldown
    rows, _ = sa.outgoing(NOW)
    a.clear_cooldown(1)  # `accounts reset` after that reading
    sa.outgoing(NOW + 1)
    sa.apply(rows)  # the row with the same reading, read back later
    assert a.is_usable(1, now=NOW + 2)


def test_a_process_alone_does_not_read_its_own_batch_back_and_the_bindings_stay_bounded(tmp_path) -> None:
    """One process (every tick of a single ``serve``): its own batch is not read back (the soak's
    server learned each of its own bindings again); with another writer in between, everything
    since is read, ours included (the upsert's merge). ``keep`` trims the table to the newest."""
    store = Store.open(tmp_path / "s")
    (account,) = [_account(store, "a")]
    first = exchange(store, 0, [], [SessionRow("s1", account, NOW)])
    assert first.seq == 1 and first.sessions == []
    other = exchange(store, first.seq - 1, [], [SessionRow("s2", account, NOW + 1)])  # another process
    assert other.seq == 2 and [s.session for s in other.sessions] == ["s1", "s2"]
    mine = exchange(store, first.seq, [], [SessionRow("s3", account, NOW + 2)])
    assert mine.seq == 3 and [s.session for s in mine.sessions] == ["s2", "s3"]  # s2 came from the other
    assert purge_sessions(store, before=NOW - 1, keep=2) == 1  # s1, the oldest, goes
    assert sorted(s.session for s in exchange(store, 0).sessions) == ["s2", "s3"]


def test_the_store_trims_guessed_and_named_sessions_each_to_its_own_budget(tmp_path) -> None:
    """Many one-off requests (guessed ``conv-`` keys, all newer) never push a named session out of
    the store: each budget keeps its own most recent rows (a trim over all rows kept only the
    guessed ones, so a restart forgot the named sessions)."""
    store = Store.open(tmp_path / "s")
    (account,) = [_account(store, "a")]
    named = [SessionRow(f"sid-{i}", account, NOW + i) for i in range(3)]
    guessed = [SessionRow(f"{DERIVED_PREFIX}{i}", account, NOW + 10 + i) for i in range(5)]
    exchange(store, 0, [], named + guessed)
    assert purge_sessions(store, before=NOW - 1, keep=2, guessed=(DERIVED_PREFIX, 3)) == 3
    left = sorted(s.session for s in exchange(store, 0).sessions)
    assert left == ["conv-2", "conv-3", "conv-4", "sid-1", "sid-2"]


async def test_the_sync_purge_keeps_named_sessions_past_a_flood_of_guessed_ones(tmp_path) -> None:
    """The 5-minute purge of ``serve`` trims the store per budget of the pool's own table: 3 named
    sessions survive 5 newer guessed ones at bounds of 3 and 2 (it trimmed to the newest 5 of
    all, which were all guessed), and rows older than the TTL go."""
    from codexgw.pool.affinity import AffinityTable
    from codexgw.upstream.pool_sync import PoolStateSync

    store = Store.open(tmp_path / "s")
    account = _account(store, "a")
    named = [SessionRow(f"sid-{i}", account, NOW + i) for i in range(3)]
    guessed = [SessionRow(f"{DERIVED_PREFIX}{i}", account, NOW + 10 + i) for i in range(5)]
    exchange(store, 0, [], [SessionRow("sid-old", account, NOW - 4000), *named, *guessed])
    pool = Pool(affinity=AffinityTable(ttl_s=3600, max_entries=3, derived_max_entries=2))
    sync = PoolStateSync(store, pool, clock=lambda: NOW + 20)
    assert await sync.purge() == 4
    left = sorted(s.session for s in exchange(store, 0).sessions)
    assert left == ["conv-3", "conv-4", "sid-0", "sid-1", "sid-2"]
