"""A keep-alive connection carries the next request after any error answer (issue 16 item 1).

An answer decided from the headers alone (404, 405, 401, 415 …) used to go out before the request
body arrived; on the Quart routes the connection then hung: the next request on it got no answer.
Each case sends one request on a raw socket, its headers and its body in two writes (as httpx and
the ``openai`` SDK do, so the answer can come in between), then ``GET /v1/models`` on the same
socket, which must be answered at once. A body over the limit may instead close the connection,
but then promptly and cleanly (EOF), never a hang.
"""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.conftest import Env, in_thread

pytestmark = pytest.mark.trio

KEY = "sk-test-connection-reuse-0123456789"
ANSWER_S = 3.0
"""Longest wait for an answer; a hung connection waits forever."""


def request(method: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_answer(stream: trio.SocketStream, buf: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
    """``(status, headers, body, the bytes after it)`` of one answer; EOFError on a closed connection."""
    while b"\r\n\r\n" not in buf:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    size = int(headers.get("content-length", "0"))
    while len(rest) < size:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError
        rest += data
    return int(status_line.split()[1]), headers, rest[:size], rest[size:]


JSON = {"Content-Type": "application/json"}
BODY = json.dumps({"model": "gpt-5.5", "input": "hi " * 200}).encode()

CASES = [
    # (name, method, path, body, headers, expected status); the Quart routes, then the hot ones
    ("quart-404", "POST", "/v1/embeddings", BODY, JSON, 404),
    ("quart-405", "POST", "/v1/models", BODY, JSON, 405),
    ("quart-405-status", "PUT", "/status", BODY, JSON, 405),
    ("quart-400", "POST", "/v1/responses/compact", b"{not json", JSON, 400),
    ("quart-415", "POST", "/v1/responses/compact", BODY, {"Content-Type": "text/plain"}, 415),
    ("quart-403-origin", "POST", "/v1/models", BODY, {**JSON, "Origin": "https://evil.example"}, 403),
    ("quart-401", "POST", "/v1/responses/compact", BODY, {**JSON, "Authorization": "Bearer nope"}, 401),
    ("hot-405", "GET", "/v1/chat/completions", BODY, JSON, 405),
    ("hot-400", "POST", "/v1/responses", b"{not json", JSON, 400),
    ("hot-415", "POST", "/v1/chat/completions", BODY, {"Content-Type": "text/plain"}, 415),
    ("hot-403-origin", "POST", "/v1/responses", BODY, {**JSON, "Origin": "https://evil.example"}, 403),
    ("hot-401", "POST", "/v1/responses", BODY, {**JSON, "Authorization": "Bearer nope"}, 401),
]


async def start(env: Env, **overrides: object) -> int:
    env.add_account("acct")
    await env.start(api_key=KEY, **overrides)
    return int(env.url.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "headers", "status"), CASES, ids=[c[0] for c in CASES]
)
async def test_the_next_request_on_the_connection_is_answered_after_an_error(
    env: Env, name: str, method: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    port = await start(env)
    headers = {"Authorization": f"Bearer {KEY}", **headers}
    first = request(method, path, body, headers)
    head, payload = first.split(b"\r\n\r\n", 1)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head + b"\r\n\r\n")
        await trio.sleep(0.05)  # the answer may be decided before the body is here
        await stream.send_all(payload)
        with trio.fail_after(ANSWER_S):
            got, _headers, answer, rest = await read_answer(stream, b"")
        assert got == status, answer
        error = json.loads(answer)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        await stream.send_all(request("GET", "/v1/models", b"", {"Authorization": f"Bearer {KEY}"}))
        with trio.fail_after(ANSWER_S):
            got, _headers, answer, _rest = await read_answer(stream, rest)
        assert got == 200 and json.loads(answer)["object"] == "list"


@pytest.mark.parametrize("path", ["/v1/responses/compact", "/v1/responses"])
async def test_a_body_over_the_limit_closes_the_connection_promptly(env: Env, path: str) -> None:
    port = await start(env, max_body_bytes=4096)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        body = b'{"input": "' + b"x" * 20000 + b'"}'
        await stream.send_all(request("POST", path, body, {**JSON, "Authorization": f"Bearer {KEY}"}))
        with trio.fail_after(ANSWER_S):
            got, headers, _answer, rest = await read_answer(stream, b"")
            assert got == 413 and headers.get("connection") == "close"
            with pytest.raises((EOFError, trio.BrokenResourceError)):  # closed, not left hanging
                while True:
                    await read_answer(stream, rest)


async def test_the_openai_sdk_reuses_its_connection_after_a_404(env: Env) -> None:
    """The issue's case: ``POST /v1/embeddings`` (404) then ``GET /v1/models``, one client, 30 times."""
    import openai

    await start(env)
    client = env.openai(api_key=KEY, timeout=httpx.Timeout(ANSWER_S))
    try:
        for _ in range(30):
            with pytest.raises(openai.NotFoundError):
                await in_thread(
                    client.embeddings.create, model="text-embedding-3-small", input="hello " * 100
                )
            models = await in_thread(client.models.list)
            assert models.data
    finally:
        client.close()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/v1/models", b""), ("POST", "/v1/responses", BODY), ("POST", "/v1/responses/compact", BODY),
     ("POST", "/v1/embeddings", BODY)],
)  # fmt: skip
async def test_a_clients_connection_close_closes_the_connection(
    env: Env, method: str, path: str, body: bytes
) -> None:
    """An HTTP/1.0-style client that waits for the server to close (the close used to be cancelled)."""
    port = await start(env)
    headers = {**JSON, "Authorization": f"Bearer {KEY}", "Connection": "close"}
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request(method, path, body, headers))
        with trio.fail_after(ANSWER_S):
            _status, _headers, _answer, rest = await read_answer(stream, b"")
            assert rest == b"" and await stream.receive_some(1) == b"", "EOF after the answer"
