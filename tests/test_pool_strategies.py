"""Pool strategies (codexgw.pool.strategies) and choosing them on a Pool (set_strategy, strategy_name)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from codexgw.pool.quota import QuotaSnapshot, Window
from codexgw.pool.scheduler import (
    STRATEGY_NAMES,
    AccountView,
    Candidate,
    LeastUsed,
    Pick,
    Pool,
    QuotaHeadroom,
    RandomChoice,
    RoundRobin,
    Weighted,
    strategy_by_name,
)

NOW = 1_000_000.0


def acct(i: int, *, weight: float = 1.0, enabled: bool = True) -> AccountView:
    return AccountView(id=i, name=f"acct{i}", enabled=enabled, status="active", weight=weight)


def pool_of(*accounts: AccountView, strategy: object = None, rng: random.Random | None = None) -> Pool:
    pool = Pool(strategy, rng=rng)  # type: ignore[arg-type]
    pool.set_accounts(accounts)
    return pool


def picks(pool: Pool, n: int, *, now: float = NOW, exclude: tuple[int, ...] = ()) -> list[int]:
    out = []
    for _ in range(n):
        result = pool.pick(now=now, exclude=exclude)
        assert isinstance(result, Pick), result
        out.append(result.account_id)
    return out


def cand(i: int, *, weight: float = 1.0, quota: QuotaSnapshot | None = None, seq: int = -1) -> Candidate:
    return Candidate(
        account=acct(i, weight=weight),
        picks=0,
        last_pick_seq=seq,
        requests=0,
        errors=0,
        last_used_at=None,
        quota=quota,
    )


def snap(
    primary: float, *, resets_at: float | None = NOW + 3600, secondary: float | None = None
) -> QuotaSnapshot:
    """A snapshot observed at NOW: primary used %, optional secondary used % (weekly, resets later)."""
    return QuotaSnapshot(
        primary=Window(primary, 300, resets_at),
        secondary=None if secondary is None else Window(secondary, 10080, NOW + 7 * 86400),
        observed_at=NOW,
    )


# ---------------------------------------------------------------------------------- weighted


def test_weighted_shares_within_3_percent_over_10k_picks() -> None:
    """Weights 0.7, 1.4, 4.9 (1/10, 2/10, 7/10 of the total) on a pool: shares within ±3 points."""
    pool = pool_of(
        acct(1, weight=0.7), acct(2, weight=1.4), acct(3, weight=4.9), strategy=Weighted(random.Random(7))
    )
    counts = Counter(picks(pool, 10_000))
    for account_id, expected in {1: 0.1, 2: 0.2, 3: 0.7}.items():
        assert abs(counts[account_id] / 10_000 - expected) <= 0.03, counts


def test_weighted_shares_renormalise_over_remaining_candidates() -> None:
    """With account 3 cooling down, 1 and 2 (weights 1 and 3) split 25/75."""
    pool = pool_of(
        acct(1, weight=1), acct(2, weight=3), acct(3, weight=6), strategy=Weighted(random.Random(1))
    )
    pool.cool_down(3, until=NOW + 60, reason="usage_limit")
    counts = Counter(picks(pool, 10_000))
    assert set(counts) == {1, 2}
    assert abs(counts[1] / 10_000 - 0.25) <= 0.03 and abs(counts[2] / 10_000 - 0.75) <= 0.03


def test_weighted_zero_weight_is_a_standby() -> None:
    """Weight 0 (or negative, NaN, inf) is never chosen beside a positive weight, but serves alone."""
    strategy = Weighted(random.Random(3))
    mixed = [
        cand(1, weight=0.0),
        cand(2, weight=2.0),
        cand(3, weight=-1.0),
        cand(4, weight=float("nan")),
        cand(5, weight=float("inf")),
    ]
    assert {strategy.choose(mixed, now=NOW) for _ in range(500)} == {2}
    standbys = [cand(1, weight=0.0), cand(3, weight=-1.0)]
    assert {strategy.choose(standbys, now=NOW) for _ in range(200)} == {1, 3}
    assert strategy.choose([cand(5, weight=0.0)], now=NOW) == 5


def test_weighted_is_reproducible_with_a_seed() -> None:
    candidates = [cand(1, weight=1), cand(2, weight=1), cand(3, weight=1)]
    a, b = Weighted(random.Random(42)), Weighted(random.Random(42))
    seq_a = [a.choose(candidates, now=NOW) for _ in range(100)]
    assert seq_a == [b.choose(candidates, now=NOW) for _ in range(100)]
    assert set(seq_a) == {1, 2, 3}


# ---------------------------------------------------------------------------------- least-used, random


def test_least_used_evens_out_after_a_cooldown() -> None:
    """Account 1 rests while 2 and 3 serve 10 each; back, it takes every pick until it has caught up."""
    pool = pool_of(acct(1), acct(2), acct(3), strategy=LeastUsed())
    pool.cool_down(1, until=NOW + 60, reason="x")
    assert Counter(picks(pool, 20)) == {2: 10, 3: 10}
    assert picks(pool, 10, now=NOW + 60) == [1] * 10
    assert Counter(picks(pool, 30, now=NOW + 61)) == {1: 10, 2: 10, 3: 10}


def test_random_covers_every_healthy_account_and_nothing_else() -> None:
    pool = pool_of(
        acct(1), acct(2), acct(3), acct(4, enabled=False), acct(5), strategy=RandomChoice(random.Random(9))
    )
    pool.cool_down(5, until=NOW + 60, reason="x")
    counts = Counter(picks(pool, 600))
    assert set(counts) == {1, 2, 3}
    assert all(150 <= n <= 250 for n in counts.values()), counts


# ---------------------------------------------------------------------------------- quota


def test_quota_prefers_headroom_and_moves_traffic_as_usage_rises() -> None:
    """Snapshots fed through record_quota steer every pick to the account with the most headroom."""
    pool = pool_of(acct(1), acct(2), acct(3), strategy=QuotaHeadroom())
    pool.record_quota(1, snap(10))
    pool.record_quota(2, snap(30))
    pool.record_quota(3, snap(50))
    assert picks(pool, 3) == [1, 1, 1]
    pool.record_quota(1, QuotaSnapshot(Window(45, 300, NOW + 3600), None, NOW + 1))
    assert picks(pool, 2, now=NOW + 2) == [2, 2]
    pool.record_quota(2, QuotaSnapshot(Window(60, 300, NOW + 3600), None, NOW + 3))
    assert picks(pool, 2, now=NOW + 4) == [1, 1]
    pool.record_quota(1, QuotaSnapshot(Window(100, 300, NOW + 3600), None, NOW + 5))  # exhausted: cools
    assert picks(pool, 2, now=NOW + 6) == [3, 3]


def test_quota_uses_the_tighter_window() -> None:
    """Primary 10 % but weekly 80 % used leaves 20 % headroom: less than a flat 50 %."""
    strategy = QuotaHeadroom()
    tight_weekly = cand(1, quota=snap(10, secondary=80))
    flat = cand(2, quota=snap(50, secondary=50))
    assert strategy.choose([tight_weekly, flat], now=NOW) == 2
    assert strategy.choose([cand(1, quota=snap(10, secondary=40)), flat], now=NOW) == 1


def test_quota_ties_go_to_the_earlier_reset() -> None:
    strategy = QuotaHeadroom()
    later = cand(1, quota=snap(40, resets_at=NOW + 7200))
    earlier = cand(2, quota=snap(40, resets_at=NOW + 600))
    unknown_reset = cand(3, quota=snap(40, resets_at=None))
    assert strategy.choose([later, earlier, unknown_reset], now=NOW) == 2
    assert strategy.choose([unknown_reset, later], now=NOW) == 1


def test_quota_unknown_accounts_count_as_full_headroom_after_known_full_ones() -> None:
    strategy = QuotaHeadroom()
    unknown = cand(1, quota=None)
    assert strategy.choose([unknown, cand(2, quota=snap(1))], now=NOW) == 1
    assert strategy.choose([unknown, cand(3, quota=snap(0))], now=NOW) == 3
    assert strategy.choose([unknown, cand(4, quota=snap(0, resets_at=None))], now=NOW) == 4  # known first


def test_quota_window_that_has_reset_since_it_was_seen_counts_as_unused() -> None:
    strategy = QuotaHeadroom()
    stale = cand(1, quota=snap(90, resets_at=NOW + 100))
    other = cand(2, quota=snap(30))
    assert strategy.choose([stale, other], now=NOW + 99) == 2
    assert strategy.choose([stale, other], now=NOW + 100) == 1


def test_quota_limit_reached_ranks_last() -> None:
    strategy = QuotaHeadroom()
    flagged = cand(1, quota=QuotaSnapshot(Window(5, 300, None), None, NOW, limit_reached=True))
    assert strategy.choose([flagged, cand(2, quota=snap(95))], now=NOW) == 2


def test_quota_equal_accounts_take_turns() -> None:
    pool = pool_of(acct(1), acct(2), strategy=QuotaHeadroom())
    pool.record_quota(1, snap(20))
    pool.record_quota(2, snap(20))
    assert picks(pool, 4) == [1, 2, 1, 2]


# ---------------------------------------------------------------------------------- by name, on a Pool


def test_strategy_by_name_knows_all_five() -> None:
    rng = random.Random(0)
    made = {name: strategy_by_name(name, rng=rng) for name in STRATEGY_NAMES}
    assert {name: type(s) for name, s in made.items()} == {
        "round-robin": RoundRobin,
        "least-used": LeastUsed,
        "random": RandomChoice,
        "weighted": Weighted,
        "quota": QuotaHeadroom,
    }
    assert all(s.name == name for name, s in made.items())
    with pytest.raises(ValueError, match="rng"):
        strategy_by_name("weighted")
    with pytest.raises(ValueError, match="quota"):
        strategy_by_name("sticky")  # the message lists the known names


def test_pool_set_strategy_by_name_and_instance() -> None:
    pool = pool_of(acct(1, weight=0.0), acct(2, weight=1.0), acct(3))
    assert pool.strategy_name == "round-robin"
    pool.set_strategy("weighted")
    assert pool.strategy_name == "weighted"
    assert 1 not in picks(pool, 100)
    pool.set_strategy(LeastUsed())
    assert pool.strategy_name == "least-used"
    assert picks(pool, 1) == [1]  # the standby of `weighted` has the fewest picks
    with pytest.raises(ValueError, match="unknown"):
        pool.set_strategy("fastest")
    assert pool.strategy_name == "least-used"


def test_pool_named_random_strategies_use_the_pool_rng() -> None:
    a = pool_of(acct(1), acct(2), acct(3), rng=random.Random(11))
    b = pool_of(acct(1), acct(2), acct(3), rng=random.Random(11))
    a.set_strategy("random")
    b.set_strategy("random")
    assert picks(a, 50) == picks(b, 50)
