"""The heartbeat pump: items pass through, silences become ``None``, errors and closes propagate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from codexgw.heartbeat import with_heartbeat


async def paced(items: list[tuple[float, str]]) -> AsyncIterator[str]:
    for delay, item in items:
        await trio.sleep(delay)
        yield item


async def collect(source: AsyncIterator[str], nursery: trio.Nursery, interval_s: float) -> list[str | None]:
    return [item async for item in with_heartbeat(source, nursery=nursery, interval_s=interval_s)]


async def test_silence_longer_than_the_interval_yields_heartbeats(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    got = await collect(paced([(1, "a"), (40, "b"), (1, "c")]), nursery, 15)
    assert got == ["a", None, None, "b", "c"]
    assert trio.current_time() - start == pytest.approx(42)


async def test_no_heartbeat_while_items_flow(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    got = await collect(paced([(10, str(i)) for i in range(10)]), nursery, 15)
    assert got == [str(i) for i in range(10)]


async def test_source_errors_reach_the_consumer(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    async def broken() -> AsyncIterator[str]:
        yield "a"
        await trio.sleep(20)
        raise ValueError("upstream broke")

    got: list[str | None] = []
    with pytest.raises(ValueError, match="upstream broke"):
        async for item in with_heartbeat(broken(), nursery=nursery, interval_s=15):
            got.append(item)
    assert got == ["a", None]


async def test_closing_the_consumer_stops_the_pump(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    stopped = trio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                await trio.sleep(1)
                yield "x"
        finally:
            stopped.set()

    stream = with_heartbeat(endless(), nursery=nursery, interval_s=15)
    assert await stream.__anext__() == "x"
    await stream.aclose()
    with trio.fail_after(1):
        await stopped.wait()


async def test_disabled_without_a_nursery() -> None:
    got = [item async for item in with_heartbeat(paced([(0, "a"), (0, "b")]), nursery=None, interval_s=15)]
    assert got == ["a", "b"]
