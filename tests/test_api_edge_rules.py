"""The cross-site rules of :mod:`codexgw.api.edge` (Host, Origin, Content-Type), with no server."""

from __future__ import annotations

import pytest

from codexgw.api.edge import EdgeRules, check, cors_headers, cross_origin_allowed, preflight_headers

OPEN = EdgeRules.of()
JSON = "application/json"


def refusal(
    rules: EdgeRules, host: str, origin: str | None = None, ctype: str | None = JSON, **kw: object
) -> str | None:
    method = str(kw.get("method", "POST"))
    error = check(rules, method, host, origin, ctype, has_body=bool(kw.get("has_body", True)))
    return None if error is None else f"{error.status} {error.code}"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "127.0.0.2:80", "10.1.2.3:8080",
     "[fe80::1]", "app.localhost:3000", "localhost.:8080"],
)  # fmt: skip
def test_loopback_names_and_ip_literals_are_served(host: str) -> None:
    assert refusal(OPEN, host) is None


@pytest.mark.parametrize(
    "host", ["evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example", "", "[::1", "a:b:c"]
)
def test_other_names_are_refused_dns_rebinding(host: str) -> None:
    assert refusal(OPEN, host) == "403 host_not_allowed"


def test_server_names_exact_subdomains_and_any() -> None:
    rules = EdgeRules.of(["GW.example.com", ".corp.example"])
    assert refusal(rules, "gw.example.com:443") is None
    assert refusal(rules, "a.corp.example") is None and refusal(rules, "corp.example") is None
    assert refusal(rules, "other.example.com") == "403 host_not_allowed"
    assert refusal(rules, "xcorp.example") == "403 host_not_allowed"
    assert refusal(EdgeRules.of(["*"]), "anything.example") is None


def test_same_origin_passes_the_dashboard() -> None:
    assert refusal(OPEN, "127.0.0.1:8080", "http://127.0.0.1:8080") is None
    assert refusal(OPEN, "localhost:8080", "http://localhost:8080") is None
    rules = EdgeRules.of(["gw.example.com"])
    assert refusal(rules, "gw.example.com", "https://gw.example.com") is None
    assert refusal(rules, "gw.example.com:443", "https://gw.example.com:443") is None


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://127.0.0.1:3000", "http://localhost:8081", "null", "garbage"]
)
def test_a_foreign_origin_is_refused(origin: str) -> None:
    assert refusal(OPEN, "127.0.0.1:8080", origin) == "403 origin_not_allowed"
    assert refusal(OPEN, "127.0.0.1:8080", origin, method="GET", has_body=False) == "403 origin_not_allowed"


def test_allowed_origins_pass_and_get_cors() -> None:
    rules = EdgeRules.of(allow_origins=["https://Chat.Example.com:443", "http://localhost:3000"])
    assert refusal(rules, "127.0.0.1:8080", "https://chat.example.com") is None
    assert refusal(rules, "127.0.0.1:8080", "http://localhost:3000") is None
    assert refusal(rules, "127.0.0.1:8080", "http://localhost:3001") == "403 origin_not_allowed"
    assert cross_origin_allowed(rules, "https://chat.example.com")
    assert not cross_origin_allowed(EdgeRules.of(allow_origins=["*"]), "null")
    assert cross_origin_allowed(EdgeRules.of(allow_origins=["*"]), "https://any.example")
    assert (b"access-control-allow-origin", b"https://chat.example.com") in cors_headers(
        "https://chat.example.com"
    )


def test_a_preflight_names_the_requested_headers_that_are_names() -> None:
    headers = dict(
        preflight_headers("https://a.example", "Authorization, content-type, bad header, x-stainless-os")
    )
    assert headers[b"access-control-allow-headers"] == b"Authorization, content-type, x-stainless-os"
    assert headers[b"access-control-allow-origin"] == b"https://a.example"
    assert b"POST" in headers[b"access-control-allow-methods"]


@pytest.mark.parametrize(
    ("ctype", "refused"),
    [(JSON, False), ("application/json; charset=utf-8", False), ("Application/JSON", False),
     ("application/merge-patch+json", False), ("text/plain", True), ("text/plain;charset=UTF-8", True),
     ("application/x-www-form-urlencoded", True), ("multipart/form-data; boundary=x", True), (None, True),
     ("", True), ("text/json-ish", True)],
)  # fmt: skip
def test_a_body_must_be_json(ctype: str | None, refused: bool) -> None:
    got = refusal(OPEN, "127.0.0.1:8080", None, ctype)
    assert got == ("415 unsupported_media_type" if refused else None)


def test_no_body_needs_no_content_type() -> None:
    assert refusal(OPEN, "127.0.0.1:8080", None, None, has_body=False) is None
    assert refusal(OPEN, "127.0.0.1:8080", None, "text/plain", method="GET") is None


def test_refusals_are_openai_shaped_and_name_the_flag() -> None:
    error = check(OPEN, "POST", "evil.example", None, JSON, has_body=True)
    assert error is not None and "--server-name" in error.message
    body = error.to_body()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["param"] is None
    error = check(OPEN, "POST", "127.0.0.1", "https://evil.example", JSON, has_body=True)
    assert error is not None and "--allow-origin" in error.message
