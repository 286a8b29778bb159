"""codexgw.oauth.jwt: unverified decoding and the claims codexgw reads (codex-protocol.md §4)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from codexgw.oauth.jwt import (
    AUTH_CLAIM,
    PROFILE_CLAIM,
    IdentityClaims,
    InvalidJWTError,
    access_token_expiry,
    decode_jwt_payload,
    fingerprint,
    identity_from_id_token,
    plan_type_from_access_token,
)

HEADER = '{"alg":"none"}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: Any, *, pad: bool = False) -> str:
    """A test JWT: header ``{"alg":"none"}``, base64url payload (unpadded unless ``pad``), dummy sig."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
    if not pad:
        payload = payload.rstrip("=")
    return f"{b64url(HEADER.encode())}.{payload}.c2ln"


def test_decode_jwt_payload_returns_claims_without_padding() -> None:
    claims = {"sub": "x", "n": 1, "nested": {"a": [1, 2]}}
    assert decode_jwt_payload(make_jwt(claims)) == claims


def test_decode_jwt_payload_accepts_padding() -> None:
    claims = {"a": "b"}  # 10 bytes of JSON -> needs padding
    token = make_jwt(claims, pad=True)
    assert "=" in token
    assert decode_jwt_payload(token) == claims


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("onlyone", "three"),
        ("a.b", "three"),
        ("a.b.c.d", "three"),
        ("a..c", "three"),
        (".b.c", "three"),
        ("a.b.", "three"),
        ("a.!!!secret!!!.c", "base64url"),
        ("a.Zm9v.c", "JSON"),  # "foo"
        (f"a.{b64url(b'[1,2]')}.c", "object"),
        (f"a.{b64url(bytes([0xFF, 0xFE, 0x00]))}.c", "JSON"),
        ("a.x.c", "base64url"),  # a single base64 char cannot be decoded
        ("a.eyJhIjoxfQ!!!!.c", "base64url"),  # '{"a":1}' plus junk a lax decoder would skip
        ("a.eyJhIjoxfQ==.c", None),
    ],
)
def test_decode_jwt_payload_rejects_malformed_tokens(token: str, problem: str | None) -> None:
    if problem is None:  # control: the same payload without junk decodes
        assert decode_jwt_payload(token) == {"a": 1}
        return
    with pytest.raises(InvalidJWTError) as info:
        decode_jwt_payload(token)
    message = str(info.value)
    assert problem in message
    assert token not in message
    assert "secret" not in message


def test_invalid_jwt_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_jwt_payload("nope")


def test_identity_from_id_token_reads_auth_namespace() -> None:
    token = make_jwt(
        {
            "email": "alice@example.com",
            AUTH_CLAIM: {
                "chatgpt_plan_type": "plus",
                "chatgpt_account_id": "acct-1",
                "chatgpt_user_id": "user-1",
                "user_id": "user-legacy",
                "chatgpt_account_is_fedramp": True,
                "organization_id": "org-1",
            },
        }
    )
    assert identity_from_id_token(token) == IdentityClaims(
        email="alice@example.com",
        plan_type="plus",
        chatgpt_account_id="acct-1",
        chatgpt_user_id="user-1",
        fedramp=True,
        organization_id="org-1",
    )


def test_identity_from_id_token_fallbacks() -> None:
    """email falls back to the profile claim, chatgpt_user_id to user_id; fedramp needs a real true."""
    token = make_jwt(
        {
            PROFILE_CLAIM: {"email": "bob@example.com"},
            AUTH_CLAIM: {"user_id": "user-2", "chatgpt_account_is_fedramp": "true"},
        }
    )
    claims = identity_from_id_token(token)
    assert claims.email == "bob@example.com"
    assert claims.chatgpt_user_id == "user-2"
    assert claims.fedramp is False
    assert claims.plan_type is None
    assert claims.chatgpt_account_id is None


def test_identity_from_id_token_tolerates_odd_claim_types() -> None:
    token = make_jwt({"email": 5, AUTH_CLAIM: "not-an-object", PROFILE_CLAIM: ["x"]})
    claims = identity_from_id_token(token)
    assert (claims.email, claims.plan_type, claims.chatgpt_account_id) == (None, None, None)


def test_identity_from_id_token_raises_on_garbage() -> None:
    with pytest.raises(InvalidJWTError):
        identity_from_id_token("not-a-jwt")


def test_access_token_expiry() -> None:
    assert access_token_expiry(make_jwt({"exp": 1_700_000_000})) == 1_700_000_000.0
    assert access_token_expiry(make_jwt({"exp": 1.5})) == 1.5
    assert access_token_expiry(make_jwt({"iat": 1})) is None
    assert access_token_expiry(make_jwt({"exp": "soon"})) is None
    assert access_token_expiry(make_jwt({"exp": True})) is None
    assert access_token_expiry("opaque-access-token") is None


def test_plan_type_from_access_token() -> None:
    assert plan_type_from_access_token(make_jwt({AUTH_CLAIM: {"chatgpt_plan_type": "pro"}})) == "pro"
    assert plan_type_from_access_token(make_jwt({"exp": 1})) is None
    assert plan_type_from_access_token("opaque") is None


def test_fingerprint_is_short_stable_and_hides_the_secret() -> None:
    secret = "rt_" + "a" * 40
    fp = fingerprint(secret)
    assert fp == fingerprint(secret)
    assert fp != fingerprint(secret + "b")
    assert len(fp) == 8
    assert all(c in "0123456789abcdef" for c in fp)
    assert fp not in secret
