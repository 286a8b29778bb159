"""Quota parsing and cooldown precedence (codexgw.pool.quota; codex-protocol.md §6.1, §8.1, §8.2)."""

from __future__ import annotations

import email.utils
import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgw.pool.quota import (
    QuotaSnapshot,
    UsageLimit,
    Window,
    cooldown_until,
    parse_rate_limit_headers,
    parse_usage_limit_body,
    parse_usage_response,
)

NOW = 1_700_000_000.0


# ---------------------------------------------------------------------------------- headers


def test_headers_current_names_both_windows() -> None:
    snap = parse_rate_limit_headers(
        {
            "x-codex-primary-used-percent": "42.5",
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-at": "1700003600",
            "x-codex-secondary-used-percent": "7",
            "x-codex-secondary-window-minutes": "10080",
            "x-codex-secondary-reset-at": "1700500000",
        },
        now=NOW,
    )
    assert snap == QuotaSnapshot(
        primary=Window(used_percent=42.5, window_minutes=300, resets_at=1700003600.0),
        secondary=Window(used_percent=7.0, window_minutes=10080, resets_at=1700500000.0),
        observed_at=NOW,
    )


def test_headers_older_reset_after_seconds_is_relative_to_now() -> None:
    snap = parse_rate_limit_headers(
        {"x-codex-primary-used-percent": "10", "x-codex-primary-reset-after-seconds": "120"}, now=NOW
    )
    assert snap is not None and snap.primary is not None
    assert snap.primary.resets_at == NOW + 120
    assert snap.secondary is None


def test_headers_reset_at_beats_reset_after_seconds() -> None:
    snap = parse_rate_limit_headers(
        {
            "x-codex-primary-used-percent": "10",
            "x-codex-primary-reset-at": "1700000500",
            "x-codex-primary-reset-after-seconds": "9999",
        },
        now=NOW,
    )
    assert snap is not None and snap.primary is not None
    assert snap.primary.resets_at == 1700000500.0


def test_headers_names_are_case_insensitive() -> None:
    snap = parse_rate_limit_headers(
        {"X-Codex-Primary-Used-Percent": "55", "X-CODEX-PRIMARY-WINDOW-MINUTES": "60"}, now=NOW
    )
    assert snap is not None and snap.primary == Window(55.0, 60, None)


def test_headers_from_httpx_headers_object() -> None:
    headers = httpx.Headers(
        {"x-codex-secondary-used-percent": "100", "x-codex-secondary-reset-at": "1700000900"}
    )
    snap = parse_rate_limit_headers(headers, now=NOW)
    assert snap is not None and snap.primary is None
    assert snap.secondary == Window(100.0, None, 1700000900.0)


def test_headers_malformed_values_are_ignored() -> None:
    snap = parse_rate_limit_headers(
        {
            "x-codex-primary-used-percent": "12",
            "x-codex-primary-window-minutes": "five hours",
            "x-codex-primary-reset-at": "soon",
            "x-codex-secondary-used-percent": "nan",
        },
        now=NOW,
    )
    assert snap == QuotaSnapshot(primary=Window(12.0, None, None), secondary=None, observed_at=NOW)


def test_headers_absent_or_unusable_give_none() -> None:
    assert parse_rate_limit_headers({"content-type": "text/event-stream"}, now=NOW) is None
    assert parse_rate_limit_headers({"x-codex-primary-used-percent": "lots"}, now=NOW) is None
    assert parse_rate_limit_headers({"x-codex-primary-window-minutes": "60"}, now=NOW) is None


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "x-codex-primary-used-percent",
                "x-codex-primary-reset-at",
                "x-codex-primary-reset-after-seconds",
                "X-Codex-Secondary-Used-Percent",
                "x-codex-secondary-window-minutes",
                "retry-after",
            ]
        ),
        st.text(max_size=12),
    )
)
def test_headers_never_raise(headers: dict[str, str]) -> None:
    parse_rate_limit_headers(headers, now=NOW)
    assert cooldown_until(status=429, headers=headers, body=None, now=NOW) >= NOW


# ---------------------------------------------------------------------------------- snapshot helpers


def test_headroom_is_100_minus_the_most_used_window() -> None:
    snap = QuotaSnapshot(primary=Window(30, 300, None), secondary=Window(80, 10080, None), observed_at=NOW)
    assert snap.headroom_percent == 20.0
    assert QuotaSnapshot(None, None, NOW).headroom_percent == 100.0
    assert QuotaSnapshot(Window(130, None, None), None, NOW).headroom_percent == 0.0


def test_exhausted_until_is_latest_reset_among_full_windows() -> None:
    snap = QuotaSnapshot(
        primary=Window(100, 300, NOW + 600), secondary=Window(100, 10080, NOW + 86400), observed_at=NOW
    )
    assert snap.exhausted_until(NOW) == NOW + 86400
    partly = QuotaSnapshot(
        primary=Window(100, 300, NOW + 600), secondary=Window(99.9, 10080, NOW + 86400), observed_at=NOW
    )
    assert partly.exhausted_until(NOW) == NOW + 600


def test_exhausted_until_none_when_not_full_or_reset_passed() -> None:
    assert QuotaSnapshot(Window(99, 300, NOW + 60), None, NOW).exhausted_until(NOW) is None
    assert QuotaSnapshot(Window(100, 300, NOW - 1), None, NOW).exhausted_until(NOW) is None
    assert QuotaSnapshot(Window(100, 300, NOW + 5), None, NOW).exhausted_until(NOW + 5) is None
    assert QuotaSnapshot(Window(100, 300, None), None, NOW).exhausted_until(NOW) is None


def test_limit_reached_without_full_window_uses_latest_reset() -> None:
    snap = QuotaSnapshot(Window(50, 300, NOW + 60), Window(20, 10080, NOW + 999), NOW, limit_reached=True)
    assert snap.exhausted_until(NOW) == NOW + 999


# ---------------------------------------------------------------------------------- 429 body


def test_usage_limit_body_from_protocol_example() -> None:
    body = {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "pro",
            "resets_at": 1704067242,
            "resets_in_seconds": 1234,
        }
    }
    assert parse_usage_limit_body(body, now=NOW) == UsageLimit(
        type="usage_limit_reached",
        resets_at=1704067242.0,
        plan_type="pro",
        message="The usage limit has been reached",
    )


def test_usage_limit_body_resets_in_seconds_when_no_resets_at() -> None:
    body = json.dumps({"error": {"type": "usage_limit_reached", "resets_in_seconds": 1234}}).encode()
    limit = parse_usage_limit_body(body, now=NOW)
    assert limit is not None
    assert limit.resets_at == NOW + 1234
    assert limit.plan_type is None and limit.message is None


def test_usage_limit_body_type_variants_and_code_fallback() -> None:
    assert parse_usage_limit_body({"error": {"type": "usage_not_included"}}, now=NOW) == UsageLimit(
        "usage_not_included", None, None, None
    )
    limit = parse_usage_limit_body({"error": {"code": "rate_limit_exceeded", "message": "slow"}}, now=NOW)
    assert limit is not None and limit.type == "rate_limit_exceeded"


def test_usage_limit_body_inside_response_failed_event() -> None:
    event = {
        "type": "response.failed",
        "response": {"error": {"code": "usage_limit_reached", "resets_at": 5}},
    }
    limit = parse_usage_limit_body(event, now=NOW)
    assert limit is not None and limit.resets_at == 5.0


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        b"<html>",
        "not json",
        [],
        {"error": "oops"},
        {"error": {}},
        {"error": {"type": 3}},
        {"detail": "x"},
        b"\xff\xfe",
    ],
)
def test_usage_limit_body_unreadable_gives_none(body: object) -> None:
    assert parse_usage_limit_body(body, now=NOW) is None


def test_usage_limit_body_ignores_bad_reset_values() -> None:
    body = {"error": {"type": "usage_limit_reached", "resets_at": True, "resets_in_seconds": "x"}}
    limit = parse_usage_limit_body(body, now=NOW)
    assert limit is not None and limit.resets_at is None


# ---------------------------------------------------------------------------------- wham/usage

USAGE = {
    "plan_type": "pro",
    "rate_limit": {
        "allowed": True,
        "limit_reached": False,
        "primary_window": {
            "used_percent": 42,
            "limit_window_seconds": 3600,
            "reset_after_seconds": 120,
            "reset_at": 1735689720,
        },
        "secondary_window": {"used_percent": 5, "limit_window_seconds": 86401, "reset_after_seconds": 43200},
    },
    "credits": {"has_credits": True, "unlimited": False, "balance": "9.99"},
}


def test_usage_response_protocol_shape() -> None:
    snap = parse_usage_response(USAGE, now=NOW)
    assert snap == QuotaSnapshot(
        primary=Window(42.0, 60, 1735689720.0),
        secondary=Window(5.0, 1441, NOW + 43200),  # ceil(86401 / 60); reset_after when no reset_at
        observed_at=NOW,
        plan_type="pro",
        limit_reached=False,
    )


@pytest.mark.parametrize(
    ("rate_limit", "reached"),
    [
        ({"allowed": True, "limit_reached": True}, True),
        ({"allowed": False, "limit_reached": False}, True),
        ({"allowed": True}, False),
    ],
)
def test_usage_response_limit_reached(rate_limit: dict[str, object], reached: bool) -> None:
    snap = parse_usage_response(json.dumps({"rate_limit": rate_limit}).encode(), now=NOW)
    assert snap is not None and snap.limit_reached is reached
    assert snap.primary is None and snap.plan_type is None


def test_usage_response_not_an_object() -> None:
    assert parse_usage_response(b"[1]", now=NOW) is None
    assert parse_usage_response("garbage", now=NOW) is None


# ---------------------------------------------------------------------------------- cooldown_until

FULL_HEADERS = {"x-codex-primary-used-percent": "100", "x-codex-primary-reset-at": str(int(NOW + 4000))}


def test_cooldown_prefers_body_resets_at() -> None:
    body = {"error": {"type": "usage_limit_reached", "resets_at": NOW + 1000, "resets_in_seconds": 5}}
    until = cooldown_until(status=429, headers={"Retry-After": "30", **FULL_HEADERS}, body=body, now=NOW)
    assert until == NOW + 1000


def test_cooldown_body_resets_in_seconds() -> None:
    body = {"error": {"type": "usage_limit_reached", "resets_in_seconds": 77}}
    assert cooldown_until(status=429, headers={"retry-after": "30"}, body=body, now=NOW) == NOW + 77


def test_cooldown_retry_after_seconds_beats_headers() -> None:
    until = cooldown_until(status=429, headers={"Retry-After": "30", **FULL_HEADERS}, body=b"", now=NOW)
    assert until == NOW + 30


def test_cooldown_retry_after_http_date() -> None:
    date = email.utils.formatdate(NOW + 90, usegmt=True)
    assert cooldown_until(status=429, headers={"Retry-After": date}, body=None, now=NOW) == NOW + 90


@pytest.mark.parametrize(
    ("message", "delay"),
    [
        ("Rate limit reached. Please try again in 11.054s. Visit …", 11.054),
        ("Please try again in 250ms.", 0.25),
        ("please TRY AGAIN IN 3 seconds", 3.0),
    ],
)
def test_cooldown_try_again_in_message(message: str, delay: float) -> None:
    body = {"error": {"code": "rate_limit_exceeded", "message": message}}
    assert cooldown_until(status=429, headers={}, body=body, now=NOW) == pytest.approx(NOW + delay)


def test_cooldown_retry_after_beats_message() -> None:
    body = {"error": {"code": "rate_limit_exceeded", "message": "try again in 5s"}}
    assert cooldown_until(status=429, headers={"retry-after": "9"}, body=body, now=NOW) == NOW + 9


def test_cooldown_exhausted_window_reset_from_headers() -> None:
    headers = {
        **FULL_HEADERS,
        "x-codex-secondary-used-percent": "50",
        "x-codex-secondary-reset-at": "1800000000",
    }
    assert cooldown_until(status=429, headers=headers, body={}, now=NOW) == NOW + 4000


def test_cooldown_default_when_nothing_known() -> None:
    headers = {"x-codex-primary-used-percent": "40", "x-codex-primary-reset-at": str(int(NOW + 4000))}
    assert cooldown_until(status=429, headers=headers, body=b"nope", now=NOW) == NOW + 60
    assert cooldown_until(status=429, headers={}, body=None, now=NOW, default_s=5) == NOW + 5


def test_cooldown_past_values_fall_through_never_before_now() -> None:
    body = {"error": {"type": "usage_limit_reached", "resets_at": NOW - 100}}
    headers = {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}
    assert cooldown_until(status=429, headers=headers, body=body, now=NOW) == NOW + 60
    assert cooldown_until(status=429, headers={"retry-after": "-5"}, body=None, now=NOW, default_s=-3) == NOW


@given(resets_in=st.floats(min_value=0.001, max_value=1e7), now=st.floats(min_value=0, max_value=4e9))
def test_cooldown_property_body_reset_used_and_not_before_now(resets_in: float, now: float) -> None:
    body = {"error": {"type": "usage_limit_reached", "resets_in_seconds": resets_in}}
    until = cooldown_until(status=429, headers={"Retry-After": "1"}, body=body, now=now)
    assert until >= now
    if now + resets_in > now:
        assert until == now + resets_in
