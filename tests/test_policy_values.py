"""Durations, key fields, passwords and failed-login throttling (policy/durations.py, fields.py,
passwords.py, throttle.py)."""

from __future__ import annotations

import pytest

from codexgw.policy.durations import day_start, openai_duration, parse_duration, parse_expiry
from codexgw.policy.fields import FieldError, check_name, check_role, key_fields
from codexgw.policy.passwords import check_password, hash_password, verify_password
from codexgw.policy.throttle import LoginThrottle

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("1h", 3600), ("30d", 2592000), ("0", 0), (" 2H ", 7200)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "1w", "-5m", "1.5h", "h", "5 m"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="90s, 30m, 1h, 30d or 0"):
        parse_duration(text)


def test_parse_expiry_forms() -> None:
    assert parse_expiry("30d", now=NOW) == NOW + 30 * 86400
    assert parse_expiry("0", now=NOW) is None
    assert parse_expiry(0, now=NOW) is None
    assert parse_expiry("2027-01-02", now=NOW) == 1798848000.0  # 00:00 UTC
    assert parse_expiry("2020-01-01", now=NOW) < NOW  # in the past: expired at once
    assert parse_expiry(1_900_000_000, now=NOW) == 1_900_000_000.0
    assert parse_expiry("1900000000", now=NOW) == 1_900_000_000.0
    for bad in ("2027-02-30", "tomorrow", "-1", True):
        with pytest.raises(ValueError):
            parse_expiry(bad, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.12, "120ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.999, "59.999s"),
        (360, "6m0s"),
        (3725, "1h2m5s"),
        (-3, "0ms"),
    ],
)
def test_openai_duration(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text


def test_day_start_is_utc_midnight() -> None:
    assert day_start(NOW) == 1_799_971_200
    assert day_start(1_799_971_200) == 1_799_971_200


def test_key_fields_normalise_api_and_cli_values() -> None:
    fields = key_fields(
        {
            "name": "ci",
            "owner": "ada",
            "accounts": "a1, a2,a1",
            "models": ["gpt-5.5"],
            "rpm": "60",
            "tpm": 0,
            "tokens_per_day": None,
            "max_streams": 2,
            "expires": "1h",
            "reasoning_mode": "think",
            "max_effort": "medium",
            "admin": False,
        },
        now=NOW,
    )
    assert fields == {
        "name": "ci", "owner": "ada", "accounts": ("a1", "a2"), "models": ("gpt-5.5",), "rpm": 60,
        "tpm": None, "tokens_per_day": None, "max_streams": 2, "expires_at": NOW + 3600,
        "reasoning_mode": "think", "max_effort": "medium", "admin": False,
    }  # fmt: skip
    assert key_fields({"accounts": None, "models": ""}, now=NOW) == {"accounts": None, "models": None}


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"rpm": -1}, "rpm"),
        ({"tpm": 1.5}, "tpm"),
        ({"max_streams": True}, "max_streams"),
        ({"expires": "soon"}, "expires"),
        ({"max_effort": "none"}, "max_effort"),
        ({"reasoning_mode": "loud"}, "reasoning_mode"),
        ({"admin": "yes"}, "admin"),
        ({"accounts": []}, "accounts"),
        ({"accounts": ["a", 3]}, "accounts"),
        ({"name": " ci"}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "-"}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_key_fields_name_the_bad_field(data: dict, param: str) -> None:
    with pytest.raises(FieldError) as info:
        key_fields(data, now=NOW)
    assert info.value.param == param and str(info.value)


def test_names_and_roles() -> None:
    assert check_name("ada") == "ada"
    for bad in ("", " a", "a\n", "x" * 65, 5, None):
        with pytest.raises(FieldError):
            check_name(bad)
    assert check_role("member") == "member"
    with pytest.raises(FieldError):
        check_role("root")


def test_passwords_hash_with_scrypt_and_verify_in_constant_time() -> None:
    stored = hash_password("correct horse", salt=b"s" * 16)
    scheme, n, r, p, salt, _digest = stored.split("$")
    assert salt == "c3Nzc3Nzc3Nzc3Nzc3Nzcw=="
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert hash_password("correct horse", salt=b"t" * 16) != stored  # per-user salt
    for broken in ("", "scrypt$1$2", "md5$1$1$1$AA==$AA==", "scrypt$x$8$1$AA==$AA=="):
        assert not verify_password("x", broken)
    assert check_password("12345678") == "12345678"
    for bad in ("short", " " * 12, "x" * 2000):
        with pytest.raises(ValueError):
            check_password(bad)


def test_failed_logins_are_throttled_per_user_and_per_address() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60)
    for i in range(3):
        assert throttle.retry_after("ada", "10.0.0.1", NOW + i) is None
        throttle.failed("ada", "10.0.0.1", NOW + i)
    assert throttle.retry_after("ada", "10.0.0.2", NOW + 3) == pytest.approx(57)  # the user is locked
    assert throttle.retry_after("bob", "10.0.0.1", NOW + 3) == pytest.approx(57)  # so is the address
    assert throttle.retry_after("bob", "10.0.0.2", NOW + 3) is None
    assert throttle.retry_after("ada", "10.0.0.2", NOW + 60) is None  # the first failure left
    throttle.succeeded("ada")
    assert throttle.retry_after("ada", "10.0.0.3", NOW + 3) is None


def test_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle(max_entries=10)
    for i in range(100):
        throttle.failed(f"u{i}", f"a{i}", NOW)
    assert len(throttle._failures) <= 10
