"""The relay pump: batches pass through and coalesce, silences become ``None``, errors and closes propagate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from codexgw.upstream.heartbeat import with_heartbeat


async def paced(items: list[tuple[float, str]]) -> AsyncIterator[list[str]]:
    for delay, item in items:
        await trio.sleep(delay)
        yield [item]


async def collect(source: AsyncIterator[list[str]], nursery: trio.Nursery, interval_s: float) -> list:
    return [batch async for batch in with_heartbeat(source, nursery=nursery, interval_s=interval_s)]


async def test_silence_longer_than_the_interval_yields_heartbeats(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    got = await collect(paced([(1, "a"), (40, "b"), (1, "c")]), nursery, 15)
    assert got == [["a"], None, None, ["b"], ["c"]]
    assert trio.current_time() - start == pytest.approx(42)


async def test_no_heartbeat_while_items_flow(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    got = await collect(paced([(10, str(i)) for i in range(10)]), nursery, 15)
    assert got == [[str(i)] for i in range(10)]


async def test_items_that_arrive_during_a_slow_write_go_out_together(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A consumer busy for 5 s while 5 batches arrive gets them as one merged batch, in order."""
    got: list = []
    async for batch in with_heartbeat(paced([(1, str(i)) for i in range(6)]), nursery=nursery, interval_s=15):
        got.append(batch)
        if len(got) == 1:
            await trio.sleep(5.5)  # the "socket write" of the first batch is slow
    assert got == [["0"], ["1", "2", "3", "4", "5"]]


async def test_pump_pauses_while_max_pending_items_wait(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Backpressure: with nobody reading, the pump stops pulling from the upstream."""
    pulled = 0

    async def fast() -> AsyncIterator[list[int]]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield [i]

    stream = with_heartbeat(fast(), nursery=nursery, interval_s=15, max_pending=10)
    first = await stream.__anext__()
    await trio.testing.wait_all_tasks_blocked()
    assert pulled - len(first) <= 11
    rest = [item async for batch in stream if batch for item in batch]
    assert first + rest == list(range(1000))


async def test_source_errors_reach_the_consumer(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    async def broken() -> AsyncIterator[list[str]]:
        yield ["a"]
        await trio.sleep(20)
        raise ValueError("upstream broke")

    got: list = []
    with pytest.raises(ValueError, match="upstream broke"):
        async for batch in with_heartbeat(broken(), nursery=nursery, interval_s=15):
            got.append(batch)
    assert got == [["a"], None]


async def test_closing_the_consumer_stops_the_pump(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    stopped = trio.Event()

    async def endless() -> AsyncIterator[list[str]]:
        try:
            while True:
                await trio.sleep(1)
                yield ["x"]
        finally:
            stopped.set()

    stream = with_heartbeat(endless(), nursery=nursery, interval_s=15)
    assert await stream.__anext__() == ["x"]
    await stream.aclose()
    with trio.fail_after(1):
        await stopped.wait()


async def test_disabled_without_a_nursery() -> None:
    got = [b async for b in with_heartbeat(paced([(0, "a"), (0, "b")]), nursery=None, interval_s=15)]
    assert got == [["a"], ["b"]]
