"""End to end at the HTTP layer: bad input, routing errors, API keys, h2c, body encodings."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import Env
from tests.fakes.behaviours import Hold, Text

pytestmark = pytest.mark.trio


def assert_openai_error(r: httpx.Response, status: int, *, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("path", "content", "param"),
    [
        ("/v1/chat/completions", b"{not json", None),
        ("/v1/chat/completions", b"[1, 2]", None),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        ("/v1/chat/completions", b'{"model": "gpt-5.5"}', "messages"),
        ("/v1/chat/completions", b'{"model": "gpt-5.5", "messages": "hi"}', "messages"),
        ("/v1/chat/completions", b'{"model": 5, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        ("/v1/chat/completions", b'{"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], '
         b'"stream": "yes"}', "stream"),
        ("/v1/responses", b'{"model": "gpt-5.5"}', "input"),
        ("/v1/responses", b"", None),
    ],
)  # fmt: skip
async def test_bad_bodies_get_400_in_openai_shape(
    env: Env, path: str, content: bytes, param: str | None
) -> None:
    env.add_account("alice")
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{env.url}{path}", content=content, headers={"content-type": "application/json"}
        )
    error = assert_openai_error(r, 400, param=param)
    assert error["type"] == "invalid_request_error"
    assert env.fake.responses_requests() == []


async def test_unknown_route_wrong_method_and_oversized_body(env: Env) -> None:
    env.add_account("alice")
    await env.start(max_body_bytes=1000)
    async with httpx.AsyncClient(timeout=30) as client:
        assert_openai_error(await client.get(f"{env.url}/v1/nope"), 404)
        assert_openai_error(await client.get(f"{env.url}/v1/chat/completions"), 405)
        big = json.dumps({"model": "gpt-5.5", "input": "x" * 5000}).encode()
        json_type = {"content-type": "application/json"}
        assert_openai_error(await client.post(f"{env.url}/v1/responses", content=big, headers=json_type), 413)
        bomb = gzip.compress(big)
        assert len(bomb) < 1000
        r = await client.post(
            f"{env.url}/v1/responses", content=bomb, headers={"content-encoding": "gzip", **json_type}
        )
        assert_openai_error(r, 413)


async def test_gzip_request_body_is_decoded(env: Env) -> None:
    env.add_account("alice")
    await env.start()
    body = gzip.compress(json.dumps({"model": "gpt-5.5", "input": "hi"}).encode())
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{env.url}/v1/responses",
            content=body,
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"


async def test_api_key_required_when_configured(env: Env) -> None:
    env.add_account("alice")
    await env.start(api_key="s3cret-key")
    chat = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=30) as client:
        assert_openai_error(await client.post(f"{env.url}/v1/chat/completions", json=chat), 401)
        wrong = {"authorization": "Bearer nope"}
        assert_openai_error(
            await client.post(f"{env.url}/v1/chat/completions", json=chat, headers=wrong), 401
        )
        ok = await client.post(
            f"{env.url}/v1/chat/completions", json=chat, headers={"authorization": "Bearer s3cret-key"}
        )
        assert ok.status_code == 200
        assert (await client.get(f"{env.url}/health")).status_code == 200
        # the key is checked before the method, on the hot routes as on the Quart ones
        assert_openai_error(await client.get(f"{env.url}/v1/responses"), 401)
        assert_openai_error(await client.get(f"{env.url}/v1/models"), 401)
        key = {"x-api-key": "s3cret-key"}
        assert_openai_error(await client.get(f"{env.url}/v1/responses", headers=key), 405)
        assert (await client.get(f"{env.url}/v1/models", headers=key)).status_code == 200
        with_key = await client.post(
            f"{env.url}/v1/responses", json={"model": "gpt-5.5", "input": "hi"}, headers=key
        )
        assert with_key.status_code == 200, with_key.text


async def test_chat_streams_over_h2c(env: Env) -> None:
    """HTTP/2 with prior knowledge on the plain port: a chat answer streams over one h2 connection."""
    env.add_account("alice")
    await env.start()
    body = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        httpx.AsyncClient(http1=False, http2=True, timeout=30) as client,
        client.stream("POST", f"{env.url}/v1/chat/completions", json=body) as r,
    ):
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200
        lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    text = "".join(
        (json.loads(line[6:])["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
        for line in lines[:-1]
    )
    assert text == "Hello from the fake Codex backend."


async def test_upstream_400_is_relayed_not_failed_over(env: Env) -> None:
    """A request the backend itself rejects is the client's problem: relayed, no other account tried."""
    env.add_account("alice")
    env.add_account("bob")
    await env.start()
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{env.url}/v1/responses", json={"model": "no-such-model", "input": "hi"})
    assert 400 <= r.status_code < 500
    assert "error" in r.json()
    assert len(env.fake.responses_requests()) == 1


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[str, str]:
    """A throwaway certificate for 127.0.0.1 (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


async def test_tls_negotiates_h2_with_alpn(env: Env, self_signed: tuple[str, str]) -> None:
    """With --certfile/--keyfile the server speaks TLS and picks HTTP/2 through ALPN."""
    cert, key = self_signed
    env.add_account("alice")
    await env.start(certfile=cert, keyfile=key)
    assert env.url.startswith("https://")
    context = ssl.create_default_context(cafile=cert)
    body = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        httpx.AsyncClient(http2=True, verify=context, timeout=30) as client,
        client.stream("POST", f"{env.url}/v1/chat/completions", json=body) as r,
    ):
        assert r.http_version == "HTTP/2"
        lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
    ("/v1/responses", {"model": "gpt-5.5", "stream": True, "input": "hi"}),
])  # fmt: skip
async def test_a_client_that_leaves_mid_stream_closes_the_upstream(
    env: Env, path: str, body: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """The upstream generation is aborted, not left running, and the access line says so."""
    caplog.set_level(logging.INFO, logger="codexgw.access")
    env.add_account("alice")
    hold = Hold(after_headers=True, after_events=5, then=Text("never sent"))  # up to the first delta
    env.fake.script(None, hold)
    await env.start()
    with trio.fail_after(10):
        async with httpx.AsyncClient() as client, client.stream("POST", f"{env.url}{path}", json=body) as r:
            assert r.status_code == 200
            async for _chunk in r.aiter_raw():
                break  # the first events arrived; now hang up
        await env.fake.wait_for(lambda: env.fake.client_disconnects >= 1)
        while not any("outcome=client_closed" in m for m in caplog.messages):
            await trio.sleep(0.01)
    assert not hold.release.is_set()


async def test_a_client_that_leaves_before_the_answer_closes_the_upstream(env: Env) -> None:
    """``stream: false``: hanging up while the backend still generates cancels the request."""
    env.add_account("alice")
    hold = Hold(after_headers=True, after_events=4, then=Text("never sent"))
    env.fake.script(None, hold)
    await env.start()
    body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def ask() -> None:
                async with httpx.AsyncClient() as client:
                    await client.post(f"{env.url}/v1/chat/completions", json=body)

            nursery.start_soon(ask)
            await hold.reached.wait()
            nursery.cancel_scope.cancel()  # the client goes away
        await env.fake.wait_for(lambda: env.fake.client_disconnects >= 1)
