"""Graceful drain (upstream/drain.py, issue 16), end to end against the fake upstream.

The drain is begun on the running server's own :class:`~codexgw.upstream.drain.Drain` (what the
first SIGTERM does in ``codexgw serve``; the real signals are in ``test_drain_signals.py``). Slow
streams are the fake's paced deltas (``delta_interval_s``, as a real model types them) or a
``Hold``; the grace is scaled down to fractions of a second.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import trio

from tests.conftest import Env
from tests.fakes import Hold, Text
from tests.sse_data import data_events
from tests.wsclient import Rejected, connect

pytestmark = pytest.mark.trio

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "a long answer"}], "stream": True}
RESPONSES = {"model": "gpt-5.5", "input": "a long answer", "stream": True}
LONG = Text("word " * 200, chunks=["word "] * 200)
"""200 deltas: 20 s at the fake's 0.1 s per delta, far longer than any grace here."""




async def stream_then_drain(env: Env, path: str, body: dict[str, Any], *, begin_after: int = 1) -> list[str]:
    """POST a stream, begin the drain once ``begin_after`` data lines arrived, read it to its end
    (httpx raises on an incomplete chunked body: reaching the end means the body ended cleanly)."""
    lines: list[str] = []
    data = 0
    async with httpx.AsyncClient(timeout=30) as client, client.stream("POST", f"{env.url}{path}", json=body) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            lines.append(line)
            if line.startswith("data: "):
                data += 1
                if data == begin_after:
                    assert env.gateway.drain.begin()
    return lines


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
async def test_a_stream_longer_than_the_grace_ends_with_an_in_band_error_and_a_clean_end(
    env: Env, path: str
) -> None:
    """The issue: SIGTERM cut every stream longer than 3 s with an incomplete chunked body. Now the
    stream runs on for the grace, then ends with ``server_shutting_down`` in-band and a whole body;
    then the server stops by itself."""
    env.add_account("alice")
    env.fake.delta_interval_s = 0.1
    env.fake.script(None, LONG)
    await env.start(grace_s=0.5)
    with trio.fail_after(10):
        started = trio.current_time()
        lines = await stream_then_drain(env, path, CHAT if "chat" in path else RESPONSES, begin_after=2)
        elapsed = trio.current_time() - started
        await env.shutdown.wait()  # the drain stopped the server once the cut streams ended
    events = data_events(lines)
    assert elapsed < 5  # the 20 s stream was cut after the 0.5 s grace
    if "chat" in path:
        assert "[DONE]" not in events
        error = events[-1]["error"]
        assert error["code"] == "server_shutting_down" and error["type"] == "server_error"
        assert isinstance(error["message"], str) and "param" in error
        assert any(e.get("choices", [{}])[0].get("delta", {}).get("content") for e in events[:-1])
    else:
        assert events[-1]["type"] == "response.failed"
        assert events[-1]["response"]["error"]["code"] == "server_shutting_down"
        assert lines[-3] == "event: response.failed" or "event: response.failed" in lines
    drain = env.gateway.drain
    assert (drain.finished, drain.cut) == (0, 1)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
async def test_a_stream_shorter_than_the_grace_finishes_whole_after_the_drain_began(
    env: Env, path: str
) -> None:
    env.add_account("alice")
    env.fake.delta_interval_s = 0.05
    env.fake.script(None, Text("w " * 16, chunks=["w "] * 16))
    await env.start(grace_s=20)
    with trio.fail_after(10):
        lines = await stream_then_drain(env, path, CHAT if "chat" in path else RESPONSES)
        await env.shutdown.wait()  # no open work left: the server stops long before the 20 s grace
    events = data_events(lines)
    if "chat" in path:
        assert events[-1] == "[DONE]"
        text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e.get("choices"))
    else:
        assert events[-1]["type"] == "response.completed"
        text = "".join(e.get("delta", "") for e in events if e["type"] == "response.output_text.delta")
    assert text == "w " * 16
    assert (env.gateway.drain.finished, env.gateway.drain.cut) == (1, 0)


async def test_new_requests_during_the_drain_get_503_draining_and_health_says_draining(env: Env) -> None:
    env.add_account("alice")
    hold = Hold(after_headers=True, then=Text("kept open"))
    env.fake.script(None, hold)
    await env.start(grace_s=60)
    lines: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:

        async def held() -> None:
            async with client.stream("POST", f"{env.url}/v1/chat/completions", json=CHAT) as r:
                lines.extend([line async for line in r.aiter_lines()])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(held)
            await hold.reached.wait()
            assert env.gateway.drain.begin()
            for method, path, body in [
                ("POST", "/v1/chat/completions", CHAT),
                ("POST", "/v1/responses", RESPONSES),
                ("POST", "/v1/chat/completions", {**CHAT, "stream": False}),
                ("GET", "/v1/models", None),
                ("GET", "/api/me", None),
            ]:
                r = await client.request(method, f"{env.url}{path}", json=body)
                assert r.status_code == 503, (path, r.text)
                assert r.json() == {"error": {**r.json()["error"], "code": "draining"}}
                assert set(r.json()["error"]) == {"message", "type", "param", "code"}
                assert int(r.headers["retry-after"]) >= 1
                assert r.headers["connection"] == "close"  # HTTP/1.1: the client reconnects elsewhere
            health = await client.get(f"{env.url}/health")
            assert health.status_code == 503 and health.json()["status"] == "draining"
            assert int(health.headers["retry-after"]) >= 1
            assert (await client.get(f"{env.url}/metrics")).status_code == 200  # operators still see it
            assert (await client.get(f"{env.url}/status")).status_code == 200
            with pytest.raises(Rejected) as refused:
                await connect(env.url)
            assert refused.value.status == 503 and json.loads(refused.value.body)["error"]["code"] == "draining"
            hold.release.set()
    assert data_events(lines)[-1] == "[DONE]"  # the open one finished
    with trio.fail_after(10):
        await env.shutdown.wait()


async def test_a_stream_committed_by_the_keepalive_is_cut_in_band(env: Env) -> None:
    """Headers and comments went out while failover waits (keepalive.py): the cut is in-band."""
    env.add_account("alice")
    hold = Hold()  # before any byte of the answer: the stream is committed by the keep-alive
    env.fake.script(None, hold)
    await env.start(grace_s=0.3, keepalive_after_s=0.1, heartbeat_s=0.2)
    lines: list[str] = []
    with trio.fail_after(10):
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", f"{env.url}/v1/chat/completions", json=CHAT) as r,
        ):
            async for line in r.aiter_lines():
                lines.append(line)
                if line.startswith(":") and not env.gateway.drain.draining:
                    env.gateway.drain.begin()
        await env.shutdown.wait()
    assert r.status_code == 200
    assert data_events(lines) == [
        {"error": {**data_events(lines)[0]["error"], "code": "server_shutting_down"}}
    ]


@pytest.mark.parametrize("stream", [True, False])
async def test_a_request_that_sent_nothing_yet_is_answered_503_server_shutting_down(
    env: Env, stream: bool
) -> None:
    """Still waiting for the first output (before the keep-alive commits), or a ``stream: false``
    answer still being collected: nothing went out, so the cut is an HTTP 503."""
    env.add_account("alice")
    hold = Hold()
    env.fake.script(None, hold)
    await env.start(grace_s=0.3)

    async def begin_when_held() -> None:
        await hold.reached.wait()
        env.gateway.drain.begin()

    with trio.fail_after(10):
        env.nursery.start_soon(begin_when_held)
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(f"{env.url}/v1/chat/completions", json={**CHAT, "stream": stream})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "server_shutting_down"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


async def test_a_websocket_turn_longer_than_the_grace_gets_response_failed_then_the_close(env: Env) -> None:
    env.add_account("alice")
    env.fake.delta_interval_s = 0.1
    env.fake.script(None, LONG)
    await env.start(grace_s=0.3)
    with trio.fail_after(10):
        ws = await connect(env.url)
        await ws.send_json(
            {"type": "response.create", "model": "gpt-5.5", "stream": True, "store": False, "input": "hi"}
        )
        await ws.recv_until("response.output_text.delta")
        env.gateway.drain.begin()
        events = await ws.recv_until("response.failed", skip=("response.output_text.delta",))
        closed = await ws.wait_closed()
    assert events[-1]["response"]["error"]["code"] == "server_shutting_down"
    assert closed is not None and closed.code == 1001


async def test_the_drain_logs_one_summary_line(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    """Two streams open when the drain begins: one finishes within the grace, one is cut."""
    env.add_account("alice")
    finishing = Hold(after_headers=True, then=Text("finished in time"))
    endless = Hold(after_headers=True, then=Text("never finished"))
    env.fake.script(None, finishing, endless)
    await env.start(grace_s=1.0)
    caplog.set_level(logging.INFO, logger="codexgw.serve")
    async with httpx.AsyncClient(timeout=30) as client:

        async def read() -> None:
            async with client.stream("POST", f"{env.url}/v1/chat/completions", json=CHAT) as r:
                async for _line in r.aiter_lines():
                    pass

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                nursery.start_soon(read)
                await finishing.reached.wait()
                await endless.reached.wait()
                env.gateway.drain.begin()
                finishing.release.set()
            await env.shutdown.wait()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drain:")]
    assert len(lines) == 1 and lines[0].startswith("drain: finished 1, cut 1 in ")
