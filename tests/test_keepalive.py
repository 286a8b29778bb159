"""upstream/keepalive.py on trio's mock clock: when the comments go out, and how the wait ends.

The end-to-end side (real sockets, the fake upstream) is tests/test_e2e_keepalive.py; here the open
is a coroutine that sleeps on the autojump clock, so 40 s of silence take no time.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from codexgw.errors import UsageLimitError
from codexgw.translate.chat_stream import ChatStreamTranslator
from codexgw.translate.passthrough import ResponsesPassthrough
from codexgw.translate.stream_state import Outcome, StreamState
from codexgw.upstream.drain import Drain
from codexgw.upstream.heartbeat import HEARTBEAT
from codexgw.upstream.keepalive import Opening, keep_alive_then_relay, open_or_wait

pytestmark = pytest.mark.trio
NOW = 1_700_000_000.0


def gateway(nursery: trio.Nursery) -> Any:
    return SimpleNamespace(nursery=nursery, settings=SimpleNamespace(heartbeat_s=15.0), drain=Drain(grace_s=30))


def limit_after(seconds: float) -> Any:
    async def opener() -> Any:
        await trio.sleep(seconds)
        raise UsageLimitError(
            "The usage limit has been reached", resets_at=NOW + 3600, plan_type="pro", now=NOW
        )

    return opener


def forever(cancelled: trio.Event) -> Any:
    """An open that never ends; ``cancelled`` is set when it is cancelled."""

    async def opener() -> Any:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    return opener


def translator() -> ChatStreamTranslator:
    return ChatStreamTranslator(completion_id="chatcmpl-1", created=1, model="gpt-5.5")


async def test_an_open_within_the_wait_is_answered_as_before(autojump_clock: Any) -> None:
    """Within the wait the open's own error comes back (an HTTP status, as without keep-alive)."""
    async with trio.open_nursery() as nursery:
        with pytest.raises(UsageLimitError):
            await open_or_wait(gateway(nursery), limit_after(3), wait_s=10)
        assert trio.current_time() == 3


async def test_comments_at_10_25_40_s_then_the_usage_limit_in_band(autojump_clock: Any) -> None:
    """Silent 41 s, then every account at its limit: a comment at 10 s (the commit), 25 s and 40 s,
    then ``data: {"error": …}`` with the usage limit, no ``[DONE]``; the outcome is ``failed``."""
    ends: list[Outcome] = []
    handler = translator()
    async with trio.open_nursery() as nursery:
        gw = gateway(nursery)
        opened = await open_or_wait(gw, limit_after(41), wait_s=10)
        assert isinstance(opened, Opening) and trio.current_time() == 10
        out = []
        events = keep_alive_then_relay(
            gw, opened, handler, on_stream=lambda s: None, on_end=lambda o, u: ends.append(o)
        )
        async for chunk in events:
            out.append((trio.current_time(), chunk))
    assert [t for t, chunk in out if chunk == HEARTBEAT] == [10, 25, 40]
    (at, last) = out[-1]
    assert at == 41 and last.startswith(b"data: ") and b"[DONE]" not in last
    error = json.loads(last[len(b"data: ") :])["error"]
    assert (error["code"], error["resets_at"], error["plan_type"]) == (
        "usage_limit_reached",
        NOW + 3600,
        "pro",
    )
    assert ends == [Outcome.FAILED] and handler.state is StreamState.FAILED


async def test_the_drain_cuts_a_committed_stream_with_server_shutting_down_in_band(autojump_clock: Any) -> None:
    """The drain begins at 12 s with a 30 s grace while failover still waits (the open would take
    an hour): at 42 s the stream ends with ``data: {"error": server_shutting_down}``, no ``[DONE]``."""
    ends: list[Outcome] = []
    handler = translator()
    async with trio.open_nursery() as nursery:
        gw = gateway(nursery)
        opened = await open_or_wait(gw, limit_after(3600), wait_s=10)
        assert isinstance(opened, Opening)
        nursery.start_soon(gw.drain.run, lambda: None)

        async def begin_at_12() -> None:
            await trio.sleep(2)
            gw.drain.begin()

        nursery.start_soon(begin_at_12)
        events = keep_alive_then_relay(
            gw, opened, handler, on_stream=lambda s: None, on_end=lambda o, u: ends.append(o)
        )
        with gw.drain.work():  # what the edge counts (api/hot.py)
            out = [(trio.current_time(), chunk) async for chunk in events]
    (at, last) = out[-1]
    assert at == 42 and json.loads(last[len(b"data: ") :])["error"]["code"] == "server_shutting_down"
    assert ends == [Outcome.FAILED] and (gw.drain.finished, gw.drain.cut) == (0, 1)


async def test_the_responses_stream_ends_with_response_failed_carrying_the_reset(autojump_clock: Any) -> None:
    handler = ResponsesPassthrough(keep_items=False, failure_id="resp_x")
    async with trio.open_nursery() as nursery:
        gw = gateway(nursery)
        opened = await open_or_wait(gw, limit_after(12), wait_s=10)
        assert isinstance(opened, Opening)
        chunks = [
            c
            async for c in keep_alive_then_relay(
                gw, opened, handler, on_stream=lambda s: None, on_end=lambda o, u: None
            )
        ]
    assert chunks[0] == HEARTBEAT
    event = json.loads(chunks[-1].split(b"data: ", 1)[1])
    assert event["type"] == "response.failed"
    assert event["response"]["error"] == {
        "message": "The usage limit has been reached",
        "type": "usage_limit_reached",
        "param": None,
        "code": "usage_limit_reached",
        "resets_at": int(NOW + 3600),
        "plan_type": "pro",
    }


async def test_a_client_leaving_during_the_keepalive_cancels_the_open(autojump_clock: Any) -> None:
    cancelled = trio.Event()
    opener = forever(cancelled)
    ends: list[Outcome] = []
    async with trio.open_nursery() as nursery:
        gw = gateway(nursery)
        opened = await open_or_wait(gw, opener, wait_s=10)
        assert isinstance(opened, Opening)
        events = keep_alive_then_relay(
            gw, opened, translator(), on_stream=lambda s: None, on_end=lambda o, u: ends.append(o)
        )
        assert await events.__anext__() == HEARTBEAT
        await events.aclose()  # what the server does when the client goes away
        assert cancelled.is_set() and opened.done
    assert ends == [Outcome.CLIENT_CLOSED]


async def test_a_bug_in_the_open_reaches_the_route_not_the_serve_nursery(autojump_clock: Any) -> None:
    async def opener() -> Any:
        raise KeyError("bug")

    async with trio.open_nursery() as nursery:
        opening = Opening(nursery, opener)
        assert await opening.wait(1)
        with pytest.raises(KeyError):
            opening.result()
        await opening.aclose()


async def test_pushed_the_comments_and_the_in_band_error_are_written_at_the_same_times(
    autojump_clock: Any,
) -> None:
    """``push(write)`` (an HTTP/1.1 client's writer) writes what iterating gives, when it gives
    it: comments at 10, 25 and 40 s, then the usage limit; ``on_end`` once."""
    ends: list[Outcome] = []
    async with trio.open_nursery() as nursery:
        gw = gateway(nursery)
        opened = await open_or_wait(gw, limit_after(41), wait_s=10)
        assert isinstance(opened, Opening)
        out: list = []

        async def write(chunk: bytes) -> None:
            out.append((trio.current_time(), chunk))

        events = keep_alive_then_relay(
            gw, opened, translator(), on_stream=lambda s: None, on_end=lambda o, u: ends.append(o)
        )
        await events.push(write)
    assert [t for t, chunk in out if chunk == HEARTBEAT] == [10, 25, 40]
    assert out[-1][0] == 41 and json.loads(out[-1][1][len(b"data: ") :])["error"]["code"] == "usage_limit_reached"
    assert ends == [Outcome.FAILED]


async def test_a_client_leaving_a_pushed_keepalive_cancels_the_open(autojump_clock: Any) -> None:
    cancelled = trio.Event()
    opener = forever(cancelled)
    ends: list[Outcome] = []
    async with trio.open_nursery() as nursery:
        gw = gateway(nursery)
        opened = await open_or_wait(gw, opener, wait_s=10)
        assert isinstance(opened, Opening)
        events = keep_alive_then_relay(
            gw, opened, translator(), on_stream=lambda s: None, on_end=lambda o, u: ends.append(o)
        )
        written: list[bytes] = []

        async def write(chunk: bytes) -> None:
            written.append(chunk)

        with trio.move_on_after(20):  # the client goes away at 30 s: the server cancels the request
            await events.push(write)
        assert written == [HEARTBEAT, HEARTBEAT] and cancelled.is_set() and opened.done
    assert ends == [Outcome.CLIENT_CLOSED]
