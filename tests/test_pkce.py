"""PKCE values, the authorize URL and callback parsing (codexgw.auth.pkce; codex-protocol.md §1)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from codexgw.oauth.pkce import (
    DEFAULT_SCOPE,
    LEGACY_SCOPE,
    REDIRECT_URI,
    CallbackResult,
    build_authorize_url,
    code_challenge_s256,
    generate_code_verifier,
    generate_state,
    parse_callback,
)

B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def test_verifier_is_86_base64url_chars_and_random() -> None:
    verifiers = {generate_code_verifier() for _ in range(20)}
    assert len(verifiers) == 20
    for verifier in verifiers:
        assert len(verifier) == 86 and B64URL.match(verifier)


def test_state_is_43_base64url_chars_and_random() -> None:
    states = {generate_state() for _ in range(20)}
    assert len(states) == 20
    assert all(len(s) == 43 and B64URL.match(s) for s in states)


def test_challenge_matches_rfc7636_appendix_b() -> None:
    assert code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_authorize_url_exact_order_and_encoding() -> None:
    url = build_authorize_url(
        "https://auth.openai.com/", redirect_uri=REDIRECT_URI, code_challenge="CH_-1", state="ST-2"
    )
    assert url == (
        "https://auth.openai.com/oauth/authorize?response_type=code"
        "&client_id=app_EMoamEEZ73f0CkXaXp7hrann"
        "&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback"
        "&scope=openid%20profile%20email%20offline_access%20api.connectors.read%20api.connectors.invoke"
        "&code_challenge=CH_-1&code_challenge_method=S256&id_token_add_organizations=true"
        "&codex_cli_simplified_flow=true&state=ST-2&originator=codex_cli_rs"
    )


def test_authorize_url_options() -> None:
    url = build_authorize_url(
        "https://a.test",
        redirect_uri="http://localhost:1457/auth/callback",
        code_challenge="c",
        state="s",
        originator="codex gw",
        scope=LEGACY_SCOPE,
        allowed_workspace_id="ws/1",
    )
    query = urlsplit(url).query
    assert [k for k, _ in parse_qsl(query)][-3:] == ["state", "originator", "allowed_workspace_id"]
    assert query.endswith("&originator=codex%20gw&allowed_workspace_id=ws%2F1")
    assert "scope=openid%20profile%20email%20offline_access&" in query
    assert "+" not in query
    assert dict(parse_qsl(query))["scope"] == LEGACY_SCOPE != DEFAULT_SCOPE


def test_callback_with_code() -> None:
    result = parse_callback("?code=abc&state=xyz&scope=openid", "xyz")
    assert result == CallbackResult(kind="code", code="abc")
    assert result.message is None
    assert "abc" not in repr(result)


@pytest.mark.parametrize("query", ["code=abc&state=nope", "code=abc", "code=abc&state=", "state=XYZ&code=a"])
def test_callback_state_mismatch_checked_first(query: str) -> None:
    result = parse_callback(query, "xyz")
    assert result.kind == "state_mismatch"
    assert result.code is None and result.message == "State mismatch"


def test_callback_error_even_with_code() -> None:
    result = parse_callback("error=access_denied&error_description=User%20said%20no&code=a&state=s", "s")
    assert (result.kind, result.error, result.error_description) == ("error", "access_denied", "User said no")
    assert result.code is None
    assert result.message == "Sign-in failed (access_denied): User said no"


def test_callback_missing_codex_entitlement() -> None:
    result = parse_callback("state=s&error=access_denied&error_description=missing_codex_entitlement", "s")
    assert result.message is not None and "Codex is not enabled for your workspace" in result.message


@pytest.mark.parametrize("query", ["state=s", "state=s&code="])
def test_callback_missing_code(query: str) -> None:
    result = parse_callback(query, "s")
    assert (result.kind, result.error) == ("error", "missing_authorization_code")
    assert result.message is not None and "authorization code" in result.message


def test_callback_empty_expected_state_never_matches() -> None:
    assert parse_callback("code=a&state=", "").kind == "state_mismatch"
