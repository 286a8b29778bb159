"""An API key's scope inside the pool core: ``Pool.pick(allowed=...)`` and ``exhausted_answer(scope=...)``
(teams contract §2: everything the pool does happens inside the key's scope)."""

from __future__ import annotations

from codexgw.errors import PoolExhaustedError, UsageLimitError
from codexgw.pool.failover import exhausted_answer
from codexgw.pool.scheduler import Pick, Pool, Unavailable
from tests.test_pool_failover import row
from tests.test_pool_scheduler import NOW, acct, pool_of


def chosen(pool: Pool, n: int, **kw: object) -> list[int]:
    out = []
    for _ in range(n):
        result = pool.pick(now=NOW, **kw)  # type: ignore[arg-type]
        assert isinstance(result, Pick), result
        out.append(result.account_id)
    return out


def test_the_strategy_rotates_inside_the_scope_only() -> None:
    pool = pool_of(acct(1), acct(2), acct(3), acct(4))
    assert chosen(pool, 4, allowed=frozenset({2, 4})) == [2, 4, 2, 4]
    assert chosen(pool, 4) == [1, 3, 2, 4]  # unscoped: the least recently picked first, over all


def test_prefer_and_affinity_never_leave_the_scope() -> None:
    pool = pool_of(acct(1), acct(2), acct(3))
    assert chosen(pool, 1, session="s", allowed=frozenset({3})) == [3]
    assert chosen(pool, 2, session="s", allowed=frozenset({1, 2})) == [1, 1]  # rebound inside
    assert chosen(pool, 1, prefer=3, allowed=frozenset({2})) == [2]
    assert chosen(pool, 1, prefer=2, allowed=frozenset({2, 3})) == [2]


def test_unavailable_speaks_of_the_scope_only() -> None:
    pool = pool_of(acct(1), acct(2), acct(3))
    pool.cool_down(2, until=NOW + 90, reason="usage_limit", now=NOW)
    pick = pool.pick(now=NOW, allowed=frozenset({2}))
    assert isinstance(pick, Unavailable)
    assert pick.retry_after_s == 90 and pick.reason.startswith("the only usable account is cooling down")
    empty = pool.pick(now=NOW, allowed=frozenset())
    assert isinstance(empty, Unavailable) and empty.retry_after_s is None and "scope" in empty.reason
    gone = pool.pick(now=NOW, allowed=frozenset({9}))
    assert isinstance(gone, Unavailable) and "scope" in gone.reason
    assert pool.snapshot(NOW)[0]["picks"] == 0  # nothing outside the scope was counted


def test_a_pin_outside_the_scope_refuses() -> None:
    pool = pool_of(acct(1), acct(2))
    pool.pin(1)
    pick = pool.pick(now=NOW, allowed=frozenset({2}))
    assert isinstance(pick, Unavailable) and pick.retry_after_s is None and "pinned" in pick.reason
    assert chosen(pool, 1, allowed=frozenset({1})) == [1]


def test_the_exhausted_answer_looks_at_the_accounts_in_scope() -> None:
    """Alice (in scope) cools down for a reason other than a usage limit; bob (outside) is at his
    usage limit. The scoped key's client gets a 503, never a 429 about bob's limit."""
    rows = [row(1, "rate_limited", in_s=60), row(2, "usage_limit", in_s=600)]
    pick = Unavailable(60.0, "the only usable account is cooling down; it is free in 60 s")
    scoped = exhausted_answer(pick, rows, None, now=NOW, plan_types={1: "plus", 2: "pro"}, allowed={1})
    assert isinstance(scoped, PoolExhaustedError) and scoped.headers["Retry-After"] == "60"
    assert "a2" not in scoped.message and "usage limit" not in scoped.message  # nothing about bob
    whole = exhausted_answer(pick, [row(2, "usage_limit")], None, now=NOW, plan_types={2: "pro"})
    assert isinstance(whole, UsageLimitError) and whole.plan_type == "pro"
    only_bob = exhausted_answer(
        pick, [row(2, "usage_limit")], None, now=NOW, plan_types={2: "pro"}, allowed={2}
    )
    assert isinstance(only_bob, UsageLimitError)
