"""The shared upstream client: connections spread over the sharded pools and reused, proxies honoured.

A small h11 server on loopback records which client connection (peer port) carried each request.
"""

from __future__ import annotations

from functools import partial

import h11
import httpx
import pytest
import trio

from codexgw.upstream import ShardedTransport, new_http_client


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


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxy_env")
async def test_light_traffic_keeps_reusing_one_warm_connection(nursery: trio.Nursery) -> None:
    seen: list[tuple[int, bytes]] = []
    port = await _start(nursery, seen)
    async with new_http_client() as http:
        for _ in range(6):
            assert (await http.get(f"http://127.0.0.1:{port}/x")).text == "ok"
    assert len({peer for peer, _ in seen}) == 1


@pytest.mark.usefixtures("no_proxy_env")
async def test_pools_join_the_turn_as_streams_pile_up(nursery: trio.Nursery) -> None:
    """Open responses hold their connection (HTTP/1.1) and count as in flight until closed."""
    seen: list[tuple[int, bytes]] = []
    port = await _start(nursery, seen)
    transport = ShardedTransport(shards=3, per_pool=2, limits=httpx.Limits(max_connections=None))
    async with httpx.AsyncClient(transport=transport) as http:

        async def open_one(i: int) -> httpx.Response:
            return await http.send(http.build_request("GET", f"http://127.0.0.1:{port}/{i}"), stream=True)

        responses = [await open_one(i) for i in range(2)]
        assert transport.in_flight == [2, 0, 0], "up to per_pool in flight: the first pool only"
        responses.append(await open_one(2))
        assert transport.in_flight == [2, 1, 0]
        responses += [await open_one(i) for i in range(3, 7)]
        assert transport.in_flight == [4, 2, 1], "with 6 in flight all 3 pools take turns"
        await responses[2].aclose()
        await responses[2].aclose()  # a second close counts nothing
        assert transport.in_flight == [4, 1, 1]
        for response in responses:
            await response.aclose()
        assert transport.in_flight == [0, 0, 0]
        assert len({peer for peer, _ in seen}) == 7, "nothing caps the pools: one connection per stream"

        with pytest.raises(httpx.ConnectError):
            await http.get("http://127.0.0.1:1/unreachable")
        assert transport.in_flight == [0, 0, 0], "a failed request is not left in flight"


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
