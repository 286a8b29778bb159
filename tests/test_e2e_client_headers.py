"""Client text that reaches upstream headers, and malformed client headers (issue 16 item 6).

Before: a non-ASCII ``prompt_cache_key`` (``"café-session"``) or a high byte in a ``session_id``
header answered 500 (``UnicodeEncodeError`` in httpx), and a WebSocket upgrade on a route that
serves none answered 500 (``Not within a request context``).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
import trio

from codexgw.upstream.headers import header_safe
from tests.conftest import Env
from tests.wsclient import Rejected, connect

pytestmark = pytest.mark.trio

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "gpt-5.5", "input": "hi"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def sent_session_ids(env: Env) -> list[str]:
    return [q.headers.get("session_id", "") for q in env.fake.requests if q.path.endswith("/codex/responses")]


@pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/responses", RESPONSES)])
async def test_a_non_ascii_prompt_cache_key_is_hashed_stably(env: Env, path: str, body: dict) -> None:
    env.add_account("alice")
    await env.start()
    async with httpx.AsyncClient(base_url=env.url, timeout=30) as client:
        for _ in range(2):
            r = await client.post(path, json={**body, "prompt_cache_key": "café-session"})
            assert r.status_code == 200, r.text
        r = await client.post(path, json={**body, "prompt_cache_key": "plain-session"})
        assert r.status_code == 200, r.text
    first, second, plain = sent_session_ids(env)
    assert first == second and UUID.match(first), "stable, and the UUID form Codex sends"
    assert plain == "plain-session", "visible ASCII goes as it is"


async def test_a_high_byte_in_session_and_codex_headers_is_hashed(env: Env) -> None:
    env.add_account("alice")
    await env.start()
    host, port = env.url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(RESPONSES).encode()
    raw = (
        b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"session_id: sess-\xff\xfe\r\nx-codex-turn-metadata: caf\xc3\xa9\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    stream = await trio.open_tcp_stream(host, int(port))
    answer = b""
    async with stream:
        await stream.send_all(raw)
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    [request] = [q for q in env.fake.requests if q.path.endswith("/codex/responses")]
    assert UUID.match(request.headers["session_id"])
    assert request.headers["x-codex-turn-metadata"] == header_safe("cafÃ©")
    assert request.headers["x-codex-turn-metadata"].startswith("sha256-")


async def test_header_safe_keeps_visible_ascii_and_hashes_the_rest() -> None:
    assert header_safe("0195-abc_DEF.1 2") == "0195-abc_DEF.1 2"
    for value in ("café", "a\x00b", "tab\there", " lead", "x" * 513, "\ud800"):
        safe = header_safe(value)
        assert safe.startswith("sha256-") and len(safe) == 39 and safe == header_safe(value)
        assert safe.isascii() and safe.isprintable()
    assert UUID.match(header_safe("café", as_uuid=True))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses/compact", "/v1/models", "/nowhere"])
async def test_a_websocket_on_a_route_without_one_is_a_400(env: Env, path: str) -> None:
    await env.start()
    with trio.fail_after(10), pytest.raises(Rejected) as refused:
        await connect(env.url, path)
    assert refused.value.status == 400
    error = json.loads(refused.value.body)["error"]
    assert error["code"] == "websocket_not_supported" and error["param"] is None
    async with httpx.AsyncClient(base_url=env.url) as client:
        assert (await client.get("/v1/models")).status_code == 200, "the server still serves"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer caf\xc3\xa9-\xff")],
        [(b"authorization", b"\xff\xfe")],
        [(b"x-codexgw-reasoning", b"\xff")],
        [(b"content-encoding", b"\xff")],
        [(b"originator", b"\xff\x01")],
        [(b"openai-beta", b"\xc3\xa9")],
        [(b"cookie", b"codexgw_session=\xff; x=\x01")],
    ],
)
async def test_malformed_client_headers_are_answered_not_crashed(
    env: Env, headers: list[tuple[bytes, bytes]]
) -> None:
    env.add_account("alice")
    await env.start()
    host, port = env.url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(RESPONSES).encode()
    for path in (
        b"/v1/responses",
        b"/v1/chat/completions",
        b"/v1/responses/compact",
        b"/status",
        b"/api/accounts",
    ):
        extra = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        raw = (
            b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra
            + b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip
        stream = await trio.open_tcp_stream(host, int(port))
        answer = b""
        async with stream:
            await stream.send_all(raw)
            with trio.fail_after(10):
                while chunk := await stream.receive_some(65536):
                    answer += chunk
        status = int(answer.split(b" ", 2)[1])
        assert status < 500, (path, answer[:400])
