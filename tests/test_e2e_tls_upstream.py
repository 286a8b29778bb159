"""codexgw in front of an HTTPS upstream, as the real backend is (issue 17): the streams' bodies are
read by the direct reader over TLS (``codexgw/client/direct_tls.py``) end to end, each answer
whole, and one upstream connection carries them all.

The tests' fake upstream serves HTTPS with an in-memory self-signed certificate that codexgw trusts
through ``SSL_CERT_FILE`` (httpx's ``create_ssl_context`` reads it), as a deployment behind a TLS
inspecting proxy would.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from codexgw.client.direct import DirectBody
from codexgw.client.direct_tls import TlsReceiver
from tests.conftest import Clock, Env
from tests.fakes import FakeUpstream, serve_fake
from tests.tls_pair import write_pem

pytestmark = pytest.mark.trio


@pytest.fixture(params=["https", "http"])
async def tls_env(
    request: pytest.FixtureRequest, nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Env:
    cert, key = write_pem(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    clock = Clock()
    fake = FakeUpstream(clock=clock)
    tls = {"certfile": str(cert), "keyfile": str(key)} if request.param == "https" else {}
    fake_url = await nursery.start(partial(serve_fake, fake, **tls))
    assert fake_url.startswith(request.param + "://")
    return Env(fake=fake, fake_url=fake_url, store_dir=tmp_path / "store", clock=clock, nursery=nursery, tmp=tmp_path)


async def test_streams_over_an_https_upstream_are_read_directly_on_one_connection(
    tls_env: Env, direct_readers: list[DirectBody], body_writes: list[bytes], pumps: list
) -> None:
    readers = direct_readers
    tls_env.add_account("a")
    await tls_env.start()
    async with httpx.AsyncClient(base_url=tls_env.url, timeout=30) as client:
        for _ in range(3):
            body = {"model": "gpt-5.5", "input": "hello", "stream": True}
            async with client.stream("POST", "/v1/responses", json=body) as response:
                assert response.status_code == 200
                text = "".join([chunk async for chunk in response.aiter_text()])
            events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
            assert events[-1]["type"] == "response.completed"
            assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
            chat = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hello"}], "stream": True}
            async with client.stream("POST", "/v1/chat/completions", json=chat) as response:
                assert response.status_code == 200
                text = "".join([chunk async for chunk in response.aiter_text()])
            assert text.rstrip().endswith("data: [DONE]")
            assert any(json.loads(line[6:])["choices"][0]["delta"].get("content") for line in text.splitlines()
                       if line.startswith("data: {") and json.loads(line[6:])["choices"])  # fmt: skip
    assert len(readers) == 6
    tls = tls_env.fake_url.startswith("https")
    assert all((type(reader._recv) is TlsReceiver) is tls for reader in readers)  # TLS: the plaintext path
    assert all(reader.done for reader in readers)  # every body read to its end
    assert len({id(reader._trio_socket) for reader in readers}) == 1  # one connection, returned and reused
    # the client side: every chunk of the six answers went through the connection's BodyWriter
    written = b"".join(body_writes)
    assert written.count(b"data: [DONE]") == 3 and written.count(b'"type":"response.completed"') == 3
    assert len(pumps) == 6  # each pushed from its direct read loop (Relay.push), not iterated
