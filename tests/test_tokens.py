"""OAuth message building and parsing (codexgw.oauth.tokens and .device; codex-protocol.md §1-§3)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgw.config import CLIENT_ID
from codexgw.oauth.device import (
    DeviceCode,
    DeviceGrant,
    build_device_token_request,
    build_device_usercode_request,
    device_redirect_uri,
    device_verification_url,
    parse_device_token_response,
    parse_device_usercode_response,
)
from codexgw.oauth.tokens import (
    PERMANENT_REFRESH_CODES,
    DeviceCodeError,
    DeviceLoginNotEnabled,
    OAuthError,
    RefreshError,
    TokenExchangeError,
    TokenResponse,
    build_api_key_exchange_request,
    build_code_exchange_request,
    build_refresh_request,
    build_revoke_request,
    parse_api_key_exchange_response,
    parse_code_exchange_response,
    parse_refresh_response,
    safe_excerpt,
)

AUTH = "https://auth.example.test"
RT = "rt_SECRETrefreshtoken0123456789abcdef"
AT = "eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2lnbmF0dXJlU0VDUkVUYWNjZXNz"
IDT = "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImEifQ.aWRzaWduYXR1cmVTRUNSRVQ"
SECRETS = (RT, AT, IDT)


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


# ---------------------------------------------------------------------------------- refresh §3


def test_refresh_request_is_exactly_protocol_3() -> None:
    spec = build_refresh_request(AUTH + "/", RT)
    assert (spec.method, spec.url) == ("POST", f"{AUTH}/oauth/token")
    assert spec.headers == {"Content-Type": "application/json"}
    assert spec.form is None
    assert spec.json == {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": RT}
    assert list(spec.json) == ["client_id", "grant_type", "refresh_token"]
    assert spec.body_bytes() == (
        b'{"client_id":"app_EMoamEEZ73f0CkXaXp7hrann","grant_type":"refresh_token","refresh_token":"'
        + RT.encode()
        + b'"}'
    )
    assert RT not in repr(spec)


def test_refresh_success_all_tokens() -> None:
    tokens = parse_refresh_response(
        200, body({"id_token": IDT, "access_token": AT, "refresh_token": RT, "x": 1})
    )
    assert tokens == TokenResponse(id_token=IDT, access_token=AT, refresh_token=RT)


def test_refresh_success_only_access_token_keeps_others_none() -> None:
    tokens = parse_refresh_response(200, body({"access_token": AT}))
    assert (tokens.id_token, tokens.access_token, tokens.refresh_token) == (None, AT, None)


def test_token_response_repr_hides_values() -> None:
    text = repr(TokenResponse(id_token=IDT, access_token=AT, refresh_token=None)) + str(
        TokenResponse(IDT, AT, RT)
    )
    assert not any(secret in text for secret in SECRETS)
    assert "access_token" in text


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"", b"[]", body({"id_token": IDT}), body({"access_token": ""}), body({"access_token": 5})],
)
def test_refresh_2xx_malformed_is_transient(payload: bytes) -> None:
    with pytest.raises(RefreshError) as info:
        parse_refresh_response(200, payload)
    assert info.value.permanent is False
    assert info.value.message == "malformed token response"
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"error": {"code": "refresh_token_expired"}}, "refresh_token_expired"),  # the codex-rs test fixture
        ({"error": "refresh_token_reused"}, "refresh_token_reused"),
        ({"code": "refresh_token_invalidated"}, "refresh_token_invalidated"),
        ({"error": {"code": "something_new", "message": "nope"}}, "something_new"),
        ({"error": "a sentence, not a code", "code": "weird"}, "weird"),
        ({}, None),
    ],
)
def test_refresh_401_is_permanent_with_code(payload: dict[str, object], code: str | None) -> None:
    with pytest.raises(RefreshError) as info:
        parse_refresh_response(401, body(payload))
    assert info.value.permanent is True
    assert info.value.code == code
    assert info.value.status == 401
    assert "log in again" in info.value.message


def test_refresh_401_non_json_is_permanent() -> None:
    with pytest.raises(RefreshError) as info:
        parse_refresh_response(401, b"<html>Unauthorized</html>")
    assert info.value.permanent is True and info.value.code is None
    assert "HTML body" in info.value.message


@pytest.mark.parametrize("code", sorted(PERMANENT_REFRESH_CODES))
@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_refresh_known_codes_are_permanent_at_any_status(code: str, status: int) -> None:
    with pytest.raises(RefreshError) as info:
        parse_refresh_response(status, body({"error": {"code": code, "message": f"leak {RT}"}}))
    assert info.value.permanent is True
    assert info.value.code == code
    assert info.value.message == PERMANENT_REFRESH_CODES[code]


def test_refresh_known_code_messages() -> None:
    assert (
        PERMANENT_REFRESH_CODES["refresh_token_reused"] == "the refresh token was already used; log in again"
    )
    assert "expired" in PERMANENT_REFRESH_CODES["refresh_token_expired"]
    assert "revoked" in PERMANENT_REFRESH_CODES["refresh_token_invalidated"]
    assert len(PERMANENT_REFRESH_CODES) == 9


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (500, b"internal error"),
        (502, b"<html>Bad gateway</html>"),
        (429, body({"error": {"code": "rate_limited", "message": "slow down"}})),
        (400, body({"error": "invalid_request"})),
        (403, b""),
    ],
)
def test_refresh_other_non_2xx_is_transient(status: int, payload: bytes) -> None:
    with pytest.raises(RefreshError) as info:
        parse_refresh_response(status, payload)
    assert info.value.permanent is False
    assert f"HTTP {status}" in info.value.message
    assert isinstance(info.value, OAuthError)


@pytest.mark.parametrize("status", [400, 401, 500])
def test_refresh_messages_never_contain_tokens(status: int) -> None:
    payloads = [
        body({"error": {"message": f"bad token {RT}", "code": f"x{AT}"}}),
        body({"error_description": f"access {AT} id {IDT}"}),
        f"echo refresh_token={RT}&access={AT}".encode(),
        body({"error": f"{RT}"}),
    ]
    for payload in payloads:
        with pytest.raises(RefreshError) as info:
            parse_refresh_response(status, payload)
        text = f"{info.value} {info.value.message} {info.value.code} {info.value!r}"
        assert not any(secret in text for secret in SECRETS), text


def test_safe_excerpt_redacts_and_cuts() -> None:
    assert safe_excerpt(f"bad  \n token {RT}") == "bad token [redacted]"
    assert len(safe_excerpt("word " * 200)) == 160
    assert safe_excerpt("short_code_ok") == "short_code_ok"


@given(st.integers(min_value=100, max_value=599), st.binary(max_size=200))
def test_refresh_parse_raises_only_refresh_error(status: int, payload: bytes) -> None:
    try:
        parse_refresh_response(status, payload)
    except RefreshError as exc:
        assert exc.permanent or status != 401
    else:
        assert 200 <= status < 300


# ---------------------------------------------------------------------------------- code exchange §1


def test_code_exchange_request_form_order_and_encoding() -> None:
    spec = build_code_exchange_request(
        AUTH, code="ac/1+2 3", redirect_uri="http://localhost:1455/auth/callback", code_verifier="v~-._"
    )
    assert (spec.method, spec.url) == ("POST", f"{AUTH}/oauth/token")
    assert spec.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert spec.json is None and spec.form is not None
    assert list(spec.form) == ["grant_type", "code", "redirect_uri", "client_id", "code_verifier"]
    assert spec.body_bytes() == (
        b"grant_type=authorization_code&code=ac%2F1%2B2%203"
        b"&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback"
        b"&client_id=app_EMoamEEZ73f0CkXaXp7hrann&code_verifier=v~-._"
    )


def test_code_exchange_success_requires_all_three() -> None:
    tokens = parse_code_exchange_response(
        200, body({"id_token": IDT, "access_token": AT, "refresh_token": RT})
    )
    assert tokens == TokenResponse(IDT, AT, RT)
    for missing in ("id_token", "access_token", "refresh_token"):
        partial = {"id_token": IDT, "access_token": AT, "refresh_token": RT}
        del partial[missing]
        with pytest.raises(TokenExchangeError, match="malformed"):
            parse_code_exchange_response(200, body(partial))


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (body({"error_description": "Code expired", "error": {"message": "m", "code": "c"}}), "Code expired"),
        (body({"error": {"message": "Bad verifier", "code": "invalid_grant"}}), "Bad verifier"),
        (body({"error": "invalid_grant"}), "invalid_grant"),
        (body({"error": {"code": "invalid_code"}}), "invalid_code"),
        (b"plain failure text", "plain failure text"),
    ],
)
def test_code_exchange_error_text_order(payload: bytes, text: str) -> None:
    with pytest.raises(TokenExchangeError) as info:
        parse_code_exchange_response(400, payload)
    assert info.value.message == f"token exchange failed (HTTP 400): {text}"
    assert info.value.status == 400


def test_api_key_exchange_request_and_response() -> None:
    spec = build_api_key_exchange_request(AUTH, IDT)
    assert spec.url == f"{AUTH}/oauth/token"
    assert spec.form is not None
    assert list(spec.form.items()) == [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("client_id", CLIENT_ID),
        ("requested_token", "openai-api-key"),
        ("subject_token", IDT),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
    ]
    assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&" in spec.body_bytes()
    assert parse_api_key_exchange_response(200, body({"access_token": "sk-x"})) == "sk-x"
    assert parse_api_key_exchange_response(400, body({"access_token": "sk-x"})) is None
    assert parse_api_key_exchange_response(200, b"nope") is None


def test_revoke_request_prefers_refresh_token() -> None:
    spec = build_revoke_request(AUTH, refresh_token=RT, access_token=AT)
    assert spec.url == f"{AUTH}/oauth/revoke"
    assert spec.headers == {"Content-Type": "application/json"}
    assert spec.json is not None
    assert list(spec.json.items()) == [
        ("token", RT),
        ("token_type_hint", "refresh_token"),
        ("client_id", CLIENT_ID),
    ]


def test_revoke_request_falls_back_to_access_token_without_client_id() -> None:
    spec = build_revoke_request(AUTH, access_token=AT)
    assert spec.json == {"token": AT, "token_type_hint": "access_token"}
    with pytest.raises(ValueError):
        build_revoke_request(AUTH)


# ---------------------------------------------------------------------------------- device code §2


def test_device_usercode_request() -> None:
    spec = build_device_usercode_request(AUTH)
    assert (spec.method, spec.url) == ("POST", f"{AUTH}/api/accounts/deviceauth/usercode")
    assert spec.json == {"client_id": CLIENT_ID}
    assert spec.headers == {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"device_auth_id": "d1", "user_code": "AB-12", "interval": "5"}, DeviceCode("d1", "AB-12", 5.0)),
        ({"device_auth_id": "d1", "usercode": "AB-12", "interval": "0"}, DeviceCode("d1", "AB-12", 0.0)),
        ({"device_auth_id": "d1", "user_code": "AB-12", "interval": 2.5}, DeviceCode("d1", "AB-12", 2.5)),
        ({"device_auth_id": "d1", "user_code": "AB-12"}, DeviceCode("d1", "AB-12", 0.0)),
    ],
)
def test_device_usercode_response(payload: dict[str, object], expected: DeviceCode) -> None:
    assert parse_device_usercode_response(200, body(payload)) == expected


@pytest.mark.parametrize(
    "payload",
    [
        {"user_code": "AB", "interval": "5"},
        {"device_auth_id": "d1", "interval": "5"},
        {"device_auth_id": "d1", "user_code": "AB", "interval": "soon"},
        {"device_auth_id": "d1", "user_code": "AB", "interval": -1},
        {"device_auth_id": "d1", "user_code": "AB", "interval": True},
    ],
)
def test_device_usercode_response_malformed(payload: dict[str, object]) -> None:
    with pytest.raises(DeviceCodeError, match="malformed") as info:
        parse_device_usercode_response(200, body(payload))
    assert not isinstance(info.value, DeviceLoginNotEnabled)


def test_device_usercode_404_means_not_enabled() -> None:
    with pytest.raises(DeviceLoginNotEnabled) as info:
        parse_device_usercode_response(404, b"")
    assert info.value.status == 404
    with pytest.raises(DeviceCodeError) as other:
        parse_device_usercode_response(500, body({"error": {"message": "down"}}))
    assert not isinstance(other.value, DeviceLoginNotEnabled) and "down" in other.value.message


def test_device_token_request() -> None:
    spec = build_device_token_request(AUTH, DeviceCode("d1", "AB-12", 5.0))
    assert (spec.method, spec.url) == ("POST", f"{AUTH}/api/accounts/deviceauth/token")
    assert spec.json == {"device_auth_id": "d1", "user_code": "AB-12"}
    assert list(spec.json) == ["device_auth_id", "user_code"]


@pytest.mark.parametrize("status", [403, 404])
def test_device_token_pending(status: int) -> None:
    assert parse_device_token_response(status, b'{"error":"authorization_pending"}') is None


def test_device_token_granted_and_errors() -> None:
    grant = parse_device_token_response(
        200, body({"authorization_code": "ac", "code_challenge": "ch", "code_verifier": "ve"})
    )
    assert grant == DeviceGrant(authorization_code="ac", code_challenge="ch", code_verifier="ve")
    assert "ac" not in repr(grant).replace("DeviceGrant", "")
    with pytest.raises(DeviceCodeError, match="malformed"):
        parse_device_token_response(200, body({"authorization_code": "ac"}))
    with pytest.raises(DeviceCodeError, match="HTTP 400"):
        parse_device_token_response(400, body({"error": "expired_token"}))


def test_device_urls() -> None:
    assert device_redirect_uri(AUTH) == f"{AUTH}/deviceauth/callback"
    assert device_redirect_uri("https://auth.openai.com") == "https://auth.openai.com/deviceauth/callback"
    assert device_verification_url("https://auth.openai.com/") == "https://auth.openai.com/codex/device"


def test_safe_excerpt_keeps_snake_case_codes() -> None:
    assert safe_excerpt("refresh_token_invalidated account_session_expired") == (
        "refresh_token_invalidated account_session_expired"
    )
    assert safe_excerpt("deadbeefdeadbeefdeadbeef01") == "[redacted]"
