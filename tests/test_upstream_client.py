"""The shared upstream client: connections spread over the sharded pools and reused, proxies honoured.

A small h11 server on loopback records which client connection (peer port) carried each request.
"""

from __future__ import annotations

from functools import partial

import h11
import pytest
import trio

from codexgw.upstream import new_http_client


async def _serve_http(stream: trio.SocketStream, seen: list[tuple[int, bytes]]) -> None:
    """Answer every request on one connection with 200 "ok", recording (peer port, request target)."""
    peer_port = stream.socket.getpeername()[1]
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # the client closed a response it did not read
                return
            if not data:
                return
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            seen.append((peer_port, event.target))
        elif isinstance(event, h11.EndOfMessage):
            body = b"ok"
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=[("content-length", "2")])))
            await stream.send_all(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return


async def _start(nursery: trio.Nursery, seen: list[tuple[int, bytes]]) -> int:
    listeners = await nursery.start(
        partial(trio.serve_tcp, lambda s: _serve_http(s, seen), 0, host="127.0.0.1")
    )
    return listeners[0].socket.getsockname()[1]


async def test_requests_take_the_pools_in_turn_and_each_pool_reuses_its_connection(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[tuple[int, bytes]] = []
    port = await _start(nursery, seen)
    async with new_http_client(shards=3) as http:
        for _ in range(6):
            response = await http.get(f"http://127.0.0.1:{port}/x")
            assert response.text == "ok"
    ports = [peer for peer, _ in seen]
    assert len(set(ports)) == 3, "three pools, three connections"
    assert ports[:3] == ports[3:], "each pool reuses its keep-alive connection on its next turn"


async def test_open_streams_each_hold_a_connection_and_nothing_caps_them(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open responses hold their connection (HTTP/1.1): 8 open at once over 4 pools need 8 connections."""
    for name in ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[tuple[int, bytes]] = []
    port = await _start(nursery, seen)
    async with new_http_client(shards=4) as http:
        responses = [
            await http.send(http.build_request("GET", f"http://127.0.0.1:{port}/{i}"), stream=True)
            for i in range(8)
        ]
        for response in responses:
            await response.aclose()
    assert len({peer for peer, _ in seen}) == 8


async def test_the_proxy_environment_still_wins(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, a request goes to the proxy in absolute form, not to the origin."""
    seen: list[tuple[int, bytes]] = []
    proxy_port = await _start(nursery, seen)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with new_http_client() as http:
        response = await http.get("http://upstream.invalid/backend-api/codex/responses")
    assert response.text == "ok"
    assert [target for _, target in seen] == [b"http://upstream.invalid/backend-api/codex/responses"]
