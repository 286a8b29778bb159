"""The pool decision core (codexgw.pool.scheduler): picking, cooldowns, quota, counters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgw.pool.quota import QuotaSnapshot, Window
from codexgw.pool.scheduler import (
    AccountView,
    LeastUsed,
    Pick,
    Pool,
    RandomChoice,
    RoundRobin,
    Unavailable,
    strategy_by_name,
)

NOW = 1_000_000.0


def acct(i: int, *, enabled: bool = True, status: str = "active") -> AccountView:
    return AccountView(id=i, name=f"acct{i}", enabled=enabled, status=status)


def pool_of(*accounts: AccountView, strategy: object = None) -> Pool:
    pool = Pool(strategy) if strategy is not None else Pool()  # type: ignore[arg-type]
    pool.set_accounts(accounts)
    return pool


def picks(pool: Pool, n: int, *, now: float = NOW, exclude: tuple[int, ...] = ()) -> list[int]:
    out = []
    for _ in range(n):
        result = pool.pick(now=now, exclude=exclude)
        assert isinstance(result, Pick), result
        out.append(result.account_id)
    return out


# ---------------------------------------------------------------------------------- round-robin


def test_round_robin_cycles_in_membership_order() -> None:
    pool = pool_of(acct(3), acct(1), acct(2))
    assert picks(pool, 7) == [3, 1, 2, 3, 1, 2, 3]


@pytest.mark.parametrize("bad", [acct(2, enabled=False), acct(2, status="needs_login"), acct(2, status="")])
def test_round_robin_skips_disabled_and_not_active(bad: AccountView) -> None:
    pool = pool_of(acct(1), bad, acct(3))
    assert picks(pool, 4) == [1, 3, 1, 3]


def test_round_robin_skips_cooling_and_excluded() -> None:
    pool = pool_of(acct(1), acct(2), acct(3))
    pool.cool_down(2, until=NOW + 10, reason="usage_limit")
    assert picks(pool, 3) == [1, 3, 1]
    assert picks(pool, 2, exclude=(3,)) == [1, 1]


def test_round_robin_rejoins_after_cooldown_without_starving_others() -> None:
    pool = pool_of(acct(1), acct(2), acct(3))
    pool.cool_down(1, until=NOW + 10, reason="x")
    assert picks(pool, 4) == [2, 3, 2, 3]
    assert picks(pool, 3, now=NOW + 10) == [1, 2, 3]


def test_cooldown_ends_exactly_at_until() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 30, reason="x")
    assert isinstance(pool.pick(now=NOW + 29.999), Unavailable)
    assert not pool.is_usable(1, now=NOW + 29.999)
    assert pool.pick(now=NOW + 30) == Pick(1)
    assert pool.cooldown_of(1, now=NOW + 30) is None


def test_cool_down_latest_word_wins_even_if_earlier() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 3600, reason="first")
    pool.cool_down(1, until=NOW + 5, reason="second")
    assert pool.cooldown_of(1, now=NOW) == (NOW + 5, "second")
    assert pool.pick(now=NOW + 5) == Pick(1)


def test_clear_cooldown() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 3600, reason="x")
    pool.clear_cooldown(1)
    assert pool.pick(now=NOW) == Pick(1)


# ---------------------------------------------------------------------------------- unavailable


def test_unavailable_no_accounts() -> None:
    assert Pool().pick(now=NOW) == Unavailable(retry_after_s=None, reason="no accounts configured")


def test_unavailable_all_disabled_or_needing_login() -> None:
    pool = pool_of(acct(1, enabled=False), acct(2, status="needs_login"))
    assert pool.pick(now=NOW) == Unavailable(None, "all accounts are disabled or need login")


def test_unavailable_retry_after_is_earliest_cooldown_end() -> None:
    pool = pool_of(acct(1), acct(2), acct(3), acct(4, enabled=False))
    pool.cool_down(1, until=NOW + 300, reason="x")
    pool.cool_down(2, until=NOW + 41.5, reason="x")
    pool.cool_down(3, until=NOW + 100, reason="x")
    pool.cool_down(4, until=NOW + 1, reason="x")  # disabled: does not count
    result = pool.pick(now=NOW)
    assert isinstance(result, Unavailable)
    assert result.retry_after_s == 41.5
    assert result.reason == (
        "all 3 accounts are cooling down; the earliest is free in 42 s (1 more disabled or needing login)"
    )


def test_unavailable_single_cooling_account_wording() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 9, reason="x")
    assert pool.pick(now=NOW) == Unavailable(
        9.0, "the only usable account is cooling down; it is free in 9 s"
    )


def test_unavailable_when_all_excluded_is_retryable_now() -> None:
    pool = pool_of(acct(1), acct(2))
    pool.cool_down(2, until=NOW + 20, reason="x")
    result = pool.pick(now=NOW, exclude={1})
    assert isinstance(result, Unavailable)
    assert result.retry_after_s == 0.0
    assert "1 account already tried" in result.reason and "free in 20 s" in result.reason
    only_tried = pool_of(acct(1)).pick(now=NOW, exclude=[1])
    assert isinstance(only_tried, Unavailable) and only_tried.retry_after_s == 0.0


# ---------------------------------------------------------------------------------- membership


def test_set_accounts_keeps_state_of_remaining_ids_and_drops_removed() -> None:
    pool = pool_of(acct(1), acct(2))
    pool.cool_down(1, until=NOW + 60, reason="usage_limit")
    pool.record_result(1, ok=False, now=NOW, error="boom")
    pool.cool_down(2, until=NOW + 60, reason="x")
    pool.set_accounts([AccountView(1, "renamed", True, "active"), acct(3)])
    rows = {r["id"]: r for r in pool.snapshot(NOW)}
    assert set(rows) == {1, 3}
    assert rows[1]["name"] == "renamed"
    assert rows[1]["cooling_down_until"] == NOW + 60 and rows[1]["errors"] == 1
    pool.set_accounts([acct(1), acct(2)])  # 2 comes back fresh
    assert {r["id"]: r["cooling_down_until"] for r in pool.snapshot(NOW)} == {1: NOW + 60, 2: None}


def test_set_accounts_rejects_duplicate_ids() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Pool().set_accounts([acct(1), acct(1)])


def test_calls_about_unknown_ids_are_ignored() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(9, until=NOW + 5, reason="x")
    pool.record_result(9, ok=True, now=NOW)
    pool.record_quota(9, QuotaSnapshot(None, None, NOW))
    pool.clear_cooldown(9)
    assert [r["id"] for r in pool.snapshot(NOW)] == [1]


# ---------------------------------------------------------------------------------- quota


def full(until: float, observed_at: float) -> QuotaSnapshot:
    return QuotaSnapshot(Window(100, 300, until), Window(20, 10080, until + 9999), observed_at)


def fine(observed_at: float) -> QuotaSnapshot:
    return QuotaSnapshot(Window(3, 300, observed_at + 18000), Window(20, 10080, None), observed_at)


def test_record_quota_exhausted_window_implies_cooldown() -> None:
    pool = pool_of(acct(1), acct(2))
    pool.record_quota(1, full(NOW + 500, NOW))
    assert pool.cooldown_of(1, now=NOW) == (NOW + 500, "usage_limit")
    assert picks(pool, 2) == [2, 2]


def test_record_quota_clears_quota_cooldown_early_on_reset() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 3600, reason="usage_limit", now=NOW)
    pool.record_quota(1, fine(NOW + 60))
    assert pool.pick(now=NOW + 61) == Pick(1)


def test_record_quota_does_not_clear_error_cooldown() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 300, reason="HTTP 403", now=NOW, quota=False)
    pool.record_quota(1, fine(NOW + 60))
    assert pool.cooldown_of(1, now=NOW + 61) == (NOW + 300, "HTTP 403")


def test_snapshot_from_the_same_429_cannot_lift_its_cooldown() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 77, reason="rate_limited", now=NOW)
    pool.record_quota(1, fine(NOW))  # headers of that very 429 showed headroom
    assert pool.cooldown_of(1, now=NOW) == (NOW + 77, "rate_limited")
    pool.record_quota(1, full(NOW + 9000, NOW))  # nor replace it
    assert pool.cooldown_of(1, now=NOW) == (NOW + 77, "rate_limited")


def test_record_quota_headroom_without_windows_does_not_clear() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 300, reason="usage_limit", now=NOW)
    pool.record_quota(1, QuotaSnapshot(None, None, NOW + 5))
    assert pool.cooldown_of(1, now=NOW + 6) is not None


def test_record_quota_keeps_later_error_cooldown() -> None:
    pool = pool_of(acct(1))
    pool.cool_down(1, until=NOW + 900, reason="HTTP 403", now=NOW, quota=False)
    pool.record_quota(1, full(NOW + 100, NOW + 1))
    assert pool.cooldown_of(1, now=NOW + 2) == (NOW + 900, "HTTP 403")
    pool.record_quota(1, full(NOW + 5000, NOW + 2))
    assert pool.cooldown_of(1, now=NOW + 3) == (NOW + 5000, "usage_limit")


def test_record_quota_ignores_older_snapshot() -> None:
    pool = pool_of(acct(1))
    pool.record_quota(1, fine(NOW + 10))
    pool.record_quota(1, full(NOW + 500, NOW))
    assert pool.cooldown_of(1, now=NOW + 11) is None
    quota = pool.snapshot(NOW + 11)[0]["quota"]
    assert quota["observed_at"] == NOW + 10 and quota["headroom_percent"] == 80.0


# ---------------------------------------------------------------------------------- counters, snapshot


def test_record_result_and_snapshot_shape() -> None:
    pool = pool_of(
        AccountView(7, "work", True, "active", weight=2.0, plan_type="pro"), acct(8, enabled=False)
    )
    assert pool.pick(now=NOW) == Pick(7)
    pool.record_result(7, ok=True, now=NOW + 1)
    pool.record_result(7, ok=False, now=NOW + 2, error="HTTP 500")
    pool.record_quota(7, fine(NOW + 3))
    pool.cool_down(7, until=NOW + 50, reason="rate_limited", now=NOW + 4)
    row, other = pool.snapshot(NOW + 5)
    assert row == {
        "id": 7,
        "name": "work",
        "enabled": True,
        "status": "active",
        "weight": 2.0,
        "plan_type": "pro",
        "usable": False,
        "cooling_down_until": NOW + 50,
        "cooldown_reason": "rate_limited",
        "picks": 1,
        "requests": 2,
        "errors": 1,
        "last_error": "HTTP 500",
        "last_used_at": NOW + 2,
        "quota": {
            "observed_at": NOW + 3,
            "plan_type": None,
            "limit_reached": False,
            "headroom_percent": 80.0,
            "primary": {"used_percent": 3, "window_minutes": 300, "resets_at": NOW + 18003},
            "secondary": {"used_percent": 20, "window_minutes": 10080, "resets_at": None},
        },
    }
    assert other["usable"] is False and other["quota"] is None and other["requests"] == 0
    assert pool.snapshot(NOW + 50)[0]["cooling_down_until"] is None  # expired cooldowns vanish


# ---------------------------------------------------------------------------------- other strategies


def test_least_used_prefers_fewest_picks() -> None:
    pool = pool_of(acct(1), acct(2), acct(3), strategy=LeastUsed())
    assert picks(pool, 2, exclude=(3,)) == [1, 2]
    assert picks(pool, 3) == [3, 1, 2]  # 3 had no picks; then ties in round-robin order


def test_random_uses_injected_rng_and_only_candidates() -> None:
    a = pool_of(acct(1), acct(2), acct(3), strategy=RandomChoice(random.Random(5)))
    b = pool_of(acct(1), acct(2), acct(3), strategy=RandomChoice(random.Random(5)))
    seq = picks(a, 50, exclude=(2,))
    assert seq == picks(b, 50, exclude=(2,))
    assert set(seq) == {1, 3}


def test_strategy_by_name() -> None:
    assert isinstance(strategy_by_name("round-robin"), RoundRobin)
    assert isinstance(strategy_by_name("least-used"), LeastUsed)
    assert isinstance(strategy_by_name("random", rng=random.Random(0)), RandomChoice)
    with pytest.raises(ValueError):
        strategy_by_name("random")
    with pytest.raises(ValueError, match="unknown"):
        strategy_by_name("sticky")


@given(
    n=st.integers(min_value=1, max_value=6),
    cooling=st.sets(st.integers(min_value=0, max_value=5)),
    exclude=st.sets(st.integers(min_value=0, max_value=5)),
    rounds=st.integers(min_value=1, max_value=20),
)
def test_round_robin_property_fair_and_only_usable(
    n: int, cooling: set[int], exclude: set[int], rounds: int
) -> None:
    pool = pool_of(*(acct(i) for i in range(n)))
    for i in cooling:
        pool.cool_down(i, until=NOW + 1, reason="x")
    usable = [i for i in range(n) if i not in cooling and i not in exclude]
    results = [pool.pick(now=NOW, exclude=exclude) for _ in range(rounds * max(1, len(usable)))]
    if not usable:
        assert all(isinstance(r, Unavailable) for r in results)
        return
    chosen = [r.account_id for r in results if isinstance(r, Pick)]
    assert len(chosen) == len(results)
    assert all(chosen.count(i) == rounds for i in usable)


# ---------------------------------------------------------------------------------- pinning, describe


def test_pin_serves_only_the_pinned_account() -> None:
    pool = pool_of(acct(1), acct(2), acct(3))
    pool.pin(2)
    assert pool.pinned == 2
    assert picks(pool, 4) == [2, 2, 2, 2]
    assert pool.unpin() == 2
    assert pool.pinned is None and pool.unpin() is None
    assert picks(pool, 3) == [1, 3, 2]  # round-robin resumes (2 was picked most recently)


def test_pin_is_strict_when_the_pinned_account_cools_down() -> None:
    """No silent fallback: Unavailable with the pinned account's own retry_after, others untouched."""
    pool = pool_of(acct(1), acct(2), acct(3))
    pool.pin(1)
    pool.cool_down(1, until=NOW + 42.5, reason="usage_limit", now=NOW)
    result = pool.pick(now=NOW)
    assert result == Unavailable(
        42.5, "the pinned account acct1 is cooling down (usage_limit); it is free in 43 s"
    )
    assert [r["picks"] for r in pool.snapshot(NOW)] == [0, 0, 0]
    assert pool.pick(now=NOW + 42.5) == Pick(1)


@pytest.mark.parametrize(
    ("members", "exclude", "expected"),
    [
        (
            (acct(1, enabled=False), acct(2)),
            (),
            Unavailable(None, "the pinned account acct1 is disabled; unpin it to use the others"),
        ),
        (
            (acct(1, status="needs_login"), acct(2)),
            (),
            Unavailable(
                None, "the pinned account acct1 has status 'needs_login'; unpin it to use the others"
            ),
        ),
        (
            (acct(1), acct(2)),
            (1,),
            Unavailable(0.0, "the pinned account acct1 was already tried for this request"),
        ),
        ((acct(2),), (), Unavailable(None, "the pinned account (id 1) is not configured")),
    ],
)
def test_pin_strict_when_unusable_excluded_or_missing(
    members: tuple[AccountView, ...], exclude: tuple[int, ...], expected: Unavailable
) -> None:
    pool = pool_of(*members)
    pool.pin(1)
    assert pool.pick(now=NOW, exclude=exclude) == expected


def test_pin_survives_membership_changes() -> None:
    pool = pool_of(acct(1), acct(2))
    pool.pin(1)
    pool.set_accounts([acct(2)])
    assert isinstance(pool.pick(now=NOW), Unavailable)
    pool.set_accounts([acct(2), acct(1)])
    assert pool.pick(now=NOW) == Pick(1)


def test_strategy_change_while_pinned_applies_after_unpin() -> None:
    pool = pool_of(acct(1), acct(2), acct(3))
    pool.pin(1)
    pool.set_strategy("least-used")
    assert pool.pinned == 1 and pool.strategy_name == "least-used"
    assert picks(pool, 3) == [1, 1, 1]  # still pinned
    pool.unpin()
    assert picks(pool, 4) == [2, 3, 2, 3]  # least-used: 1 already has 3 picks; round-robin would give 1


def test_pin_beats_affinity_and_leaves_bindings_alone() -> None:
    pool = pool_of(acct(1), acct(2))
    assert pool.pick(now=NOW, session="s") == Pick(1)
    pool.pin(2)
    assert pool.pick(now=NOW, session="s") == Pick(2)
    assert pool.affinity.get("s", NOW) == 1
    pool.unpin()
    assert pool.pick(now=NOW, session="s") == Pick(1)


# ---------------------------------------------------------------------------------- preferred account


@pytest.mark.parametrize(
    ("members", "setup", "exclude", "expected"),
    [
        pytest.param((acct(1), acct(2), acct(3)), None, (), 2, id="usable: used first"),
        pytest.param((acct(1), acct(2), acct(3)), None, (2,), 1, id="excluded: the strategy picks"),
        pytest.param((acct(1), acct(2), acct(3)), "cool", (), 1, id="cooling down: the strategy picks"),
        pytest.param((acct(1), acct(2, enabled=False)), None, (), 1, id="disabled: the strategy picks"),
        pytest.param(
            (acct(1), acct(2, status="needs_login")), None, (), 1, id="needs login: the strategy picks"
        ),
        pytest.param((acct(1), acct(3)), None, (), 1, id="not a member: the strategy picks"),
        pytest.param((acct(1), acct(2), acct(3)), "pin3", (), 3, id="pinned elsewhere: the pin wins"),
        pytest.param(
            (acct(1), acct(2), acct(3)), "pin3-cool", (), None, id="pinned and cooling: no fallback"
        ),
    ],
)
def test_prefer_is_used_first_when_usable_not_excluded_and_not_pinned(
    members: tuple[AccountView, ...], setup: str | None, exclude: tuple[int, ...], expected: int | None
) -> None:
    """``pick(prefer=2)``: account 2 serves unless pinned elsewhere, unusable, absent or excluded."""
    pool = pool_of(*members)
    if setup == "cool":
        pool.cool_down(2, until=NOW + 60, reason="usage_limit", now=NOW)
    if setup and setup.startswith("pin3"):
        pool.pin(3)
        if setup == "pin3-cool":
            pool.cool_down(3, until=NOW + 60, reason="usage_limit", now=NOW)
    result = pool.pick(now=NOW, exclude=exclude, prefer=2)
    if expected is None:
        assert isinstance(result, Unavailable) and result.retry_after_s == 60
    else:
        assert result == Pick(expected)


def test_prefer_binds_the_session_over_its_old_binding() -> None:
    """A follow-up on account 2 moves the conversation there: later turns without ``prefer`` stay on 2."""
    pool = pool_of(acct(1), acct(2), acct(3))
    assert pool.pick(now=NOW, session="s") == Pick(1)
    assert pool.pick(now=NOW, session="s", prefer=2) == Pick(2)
    assert pool.affinity.get("s", NOW) == 2
    assert pool.pick(now=NOW, session="s") == Pick(2)
    assert pool.pick(now=NOW, prefer=3) == Pick(3)  # no session: nothing bound
    assert pool.affinity.get("s", NOW) == 2 and len(pool.affinity) == 1


def test_prefer_that_does_not_qualify_leaves_the_session_to_affinity() -> None:
    pool = pool_of(acct(1), acct(2), acct(3))
    assert pool.pick(now=NOW, session="s") == Pick(1)
    pool.cool_down(2, until=NOW + 60, reason="rate_limited", now=NOW)
    assert pool.pick(now=NOW, session="s", prefer=2) == Pick(1)
    assert pool.affinity.get("s", NOW) == 1


def test_a_preferred_pick_is_not_counted_and_keeps_the_rotation() -> None:
    """A follow-up does not move its account in the round-robin order nor count in ``picks``."""
    pool = pool_of(acct(1), acct(2), acct(3))
    assert picks(pool, 1) == [1]
    assert pool.pick(now=NOW, prefer=2) == Pick(2)
    assert [r["picks"] for r in pool.snapshot(NOW)] == [1, 0, 0]
    assert picks(pool, 3) == [2, 3, 1]


def test_describe_shape() -> None:
    pool = pool_of(acct(1), acct(2))
    pool.pick(now=NOW, session="s")
    assert pool.describe(NOW) == {
        "strategy": "round-robin",
        "pinned": None,
        "affinity": {"sessions": 1, "ttl_s": 3600.0},
        "accounts": pool.snapshot(NOW),
    }
    pool.pin(2)
    pool.set_strategy("quota")
    described = pool.describe(NOW)
    assert (described["strategy"], described["pinned"]) == ("quota", 2)
    assert [row["id"] for row in described["accounts"]] == [1, 2]
