"""``Account.needs_refresh``: the one definition of "fresh enough" (codex-protocol.md §3)."""

from __future__ import annotations

import pytest

from codexgw.store.models import ON_USE_MARGIN_S, REFRESH_INTERVAL_S, Account

NOW = 1_800_000_000.0


def account(*, exp: float | None, last_refresh: float | None = NOW - 3600) -> Account:
    return Account(
        id=1,
        name="alice",
        chatgpt_account_id="acct-1",
        email=None,
        plan_type=None,
        user_id=None,
        fedramp=False,
        id_token="id",
        access_token="at",
        refresh_token="rt",
        access_expires_at=exp,
        last_refresh=last_refresh,
        enabled=True,
        status="active",
        status_reason=None,
        created_at=0.0,
        updated_at=0.0,
    )


@pytest.mark.parametrize(
    ("left_s", "margin_s", "expected"),
    [
        (ON_USE_MARGIN_S + 0.001, ON_USE_MARGIN_S, False),
        (ON_USE_MARGIN_S, ON_USE_MARGIN_S, True),  # the margin itself is not enough
        (0.0, ON_USE_MARGIN_S, True),
        (-5.0, ON_USE_MARGIN_S, True),  # already expired
        (300.001, 300.0, False),  # the background refresh's default ahead-time
        (300.0, 300.0, True),
        (200.0, 300.0, True),
        (200.0, ON_USE_MARGIN_S, False),  # due for the background refresh, still fine to use
    ],
)
def test_known_exp_is_judged_by_the_margin(left_s: float, margin_s: float, expected: bool) -> None:
    assert account(exp=NOW + left_s).needs_refresh(now=NOW, margin_s=margin_s) is expected


def test_last_refresh_does_not_matter_when_exp_is_known() -> None:
    assert not account(exp=NOW + 3600, last_refresh=None).needs_refresh(now=NOW, margin_s=60)
    assert not account(exp=NOW + 3600, last_refresh=0.0).needs_refresh(now=NOW, margin_s=60)


@pytest.mark.parametrize(
    ("last_refresh", "expected"),
    [
        (None, True),  # never known to be refreshed
        (NOW - REFRESH_INTERVAL_S + 1, False),
        (NOW - REFRESH_INTERVAL_S, True),
        (NOW - 30 * 24 * 3600, True),
    ],
)
def test_unreadable_exp_falls_back_to_the_8_day_rule(last_refresh: float | None, expected: bool) -> None:
    subject = account(exp=None, last_refresh=last_refresh)
    for margin_s in (0.0, ON_USE_MARGIN_S, 300.0):  # the margin plays no part without an exp
        assert subject.needs_refresh(now=NOW, margin_s=margin_s) is expected


def test_it_reads_the_clock_it_is_given() -> None:
    subject = account(exp=NOW + 120)
    assert not subject.needs_refresh(now=NOW, margin_s=ON_USE_MARGIN_S)
    assert subject.needs_refresh(now=NOW + 60, margin_s=ON_USE_MARGIN_S)
