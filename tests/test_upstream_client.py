"""The shared upstream client: connections spread over the sharded pools and reused, proxies honoured.

A small h11 server on loopback records which client connection (peer port) carried each request.
"""

from __future__ import annotations

from functools import partial

import h11
import httpx
import pytest
import trio

from codexgw.client.sender import UpstreamSender
from codexgw.client.transport import ShardedTransport, new_http_client


async def _serve_http(
    stream: trio.SocketStream,
    seen: list[tuple[int, bytes]],
    headers_seen: list[dict[bytes, bytes]] | None = None,
    set_cookies: tuple[bytes, ...] = (),
    bodies: list[bytes] | None = None,
) -> None:
    """Answer every request on one connection with 200 "ok", recording (peer port, request target)
    and, when given ``headers_seen``, each request's headers; every answer sets ``set_cookies``."""
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
            if headers_seen is not None:
                headers_seen.append(dict(event.headers))
            if bodies is not None:
                bodies.append(b"")
        elif isinstance(event, h11.Data) and bodies is not None:
            bodies[-1] += event.data
        elif isinstance(event, h11.EndOfMessage):
            body = b"ok"
            head = [(b"content-length", b"2"), *((b"set-cookie", c) for c in set_cookies)]
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=head)))
            await stream.send_all(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return


async def _start(nursery: trio.Nursery, seen: list[tuple[int, bytes]], **serve_kw: object) -> int:
    listeners = await nursery.start(
        partial(trio.serve_tcp, lambda s: _serve_http(s, seen, **serve_kw), 0, host="127.0.0.1")  # type: ignore[arg-type]
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


@pytest.fixture
async def proxied(nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bytes]]:
    """``HTTP_PROXY`` points at a loopback server; returns what it saw (peer port, request target)."""
    seen: list[tuple[int, bytes]] = []
    proxy_port = await _start(nursery, seen)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    return seen


async def test_the_proxy_environment_still_wins(proxied: list[tuple[int, bytes]]) -> None:
    """With HTTP_PROXY set, a request goes to the proxy in absolute form, not to the origin."""
    async with new_http_client() as http:
        response = await http.get("http://upstream.invalid/backend-api/codex/responses")
    assert response.text == "ok"
    assert [target for _, target in proxied] == [b"http://upstream.invalid/backend-api/codex/responses"]


@pytest.mark.usefixtures("no_proxy_env")
async def test_the_direct_sender_keeps_only_cloudflare_cookies_and_sends_them_back(
    nursery: trio.Nursery,
) -> None:
    """codex-protocol.md §6.2: the Codex client's jar holds Cloudflare cookies only."""
    seen: list[tuple[int, bytes]] = []
    headers_seen: list[dict[bytes, bytes]] = []
    cookies = [b"__cf_bm=cf1; Path=/; HttpOnly", b"session=secret; Path=/", b"_cfuvid=cf2; Path=/"]
    port = await _start(nursery, seen, headers_seen=headers_seen, set_cookies=tuple(cookies))
    sharded = ShardedTransport(shards=2, limits=httpx.Limits(max_connections=None))
    async with new_http_client(sharded=sharded) as http:
        sender = UpstreamSender(http, sharded)
        assert sender.direct is sharded
        url = httpx.URL(f"http://127.0.0.1:{port}/backend-api/codex/responses")
        for _ in range(2):
            response = await sender.send(url, content=b"{}", headers={"authorization": "Bearer t"})
            assert await response.aread() == b"ok"
            await response.aclose()
        assert sorted(c.name for c in http.cookies.jar) == ["__cf_bm", "_cfuvid"], "one jar for the process"
    assert sharded.in_flight == [0, 0]
    assert b"cookie" not in headers_seen[0]
    sent = headers_seen[1][b"cookie"].decode()
    assert sorted(sent.split("; ")) == ["__cf_bm=cf1", "_cfuvid=cf2"]
    assert headers_seen[1][b"authorization"] == b"Bearer t"
    assert headers_seen[1][b"accept-encoding"], "the client's default headers still apply"


async def test_with_a_proxy_in_the_environment_the_sender_goes_through_the_client(
    proxied: list[tuple[int, bytes]],
) -> None:
    sharded = ShardedTransport(shards=2, limits=httpx.Limits(max_connections=None))
    async with new_http_client(sharded=sharded) as http:
        sender = UpstreamSender(http, sharded)
        assert sender.direct is None
        response = await sender.send(httpx.URL("http://upstream.invalid/r"), content=b"{}", headers={})
        assert await response.aread() == b"ok"
        await response.aclose()
    assert [target for _, target in proxied] == [b"http://upstream.invalid/r"]


@pytest.mark.usefixtures("no_proxy_env")
@pytest.mark.parametrize("direct", [True, False])
async def test_the_request_body_is_sent_whole_then_dropped(nursery: trio.Nursery, direct: bool) -> None:
    """A long answer must not keep the conversation it answers in memory."""
    seen: list[tuple[int, bytes]] = []
    headers_seen: list[dict[bytes, bytes]] = []
    bodies: list[bytes] = []
    port = await _start(nursery, seen, headers_seen=headers_seen, bodies=bodies)
    sharded = ShardedTransport(shards=2, limits=httpx.Limits(max_connections=None))
    content = b'{"input":"' + b"x" * 100_000 + b'"}'
    async with new_http_client(sharded=sharded) as http:
        sender = UpstreamSender(http, sharded if direct else None)
        assert (sender.direct is not None) is direct
        response = await sender.send(httpx.URL(f"http://127.0.0.1:{port}/r"), content=content, headers={})
        assert [chunk async for chunk in response.request.stream] == [], "dropped once sent"
        assert await response.aread() == b"ok"
        await response.aclose()
    assert bodies == [content]
    assert headers_seen[0][b"content-length"] == str(len(content)).encode()
    assert headers_seen[0][b"host"] == f"127.0.0.1:{port}".encode()


@pytest.mark.usefixtures("no_proxy_env")
async def test_the_shared_client_keeps_only_cloudflare_cookies_too(nursery: trio.Nursery) -> None:
    """The refresher, the prober and the models fetch use the client itself: same rule."""
    seen: list[tuple[int, bytes]] = []
    headers_seen: list[dict[bytes, bytes]] = []
    cookies = (b"cf_clearance=cf3; Path=/", b"oai-session=secret; Path=/")
    port = await _start(nursery, seen, headers_seen=headers_seen, set_cookies=cookies)
    async with new_http_client() as http:
        for _ in range(2):
            assert (await http.get(f"http://127.0.0.1:{port}/oauth/token")).text == "ok"
    assert headers_seen[1][b"cookie"] == b"cf_clearance=cf3"
