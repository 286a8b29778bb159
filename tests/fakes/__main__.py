"""``python -m tests.fakes``: run the fake upstream standalone (for ``make demo`` and zipapp tests).

Creates N accounts, writes each one's Codex ``auth.json`` (codex-protocol.md §5) to
``DIR/account<i>.json``, writes the base URL to ``--url-file`` once listening, prints it, and runs
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import sys
import time
from functools import partial
from pathlib import Path

import trio

from . import (
    Behaviour,
    DropMidStream,
    Failed,
    FakeAccount,
    FakeUpstream,
    ServerError,
    Unauthorized,
    UsageLimit,
    serve_fake,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--auth-json-dir", type=Path)
    parser.add_argument("--url-file", type=Path)
    parser.add_argument(
        "--delta-interval-ms", type=float, default=0.0, help="pause between streamed text deltas (ms)"
    )
    parser.add_argument(
        "--failures", type=float, default=0.0,
        help="share of unscripted answers that fail (mixed: 500, drop mid-answer, usage limit, "
        "response.failed, 401); for the soak bench",
    )  # fmt: skip
    return parser.parse_args(argv)


class FailingFake(FakeUpstream):
    """A fake whose unscripted answers fail ``rate`` of the time, in a fixed mix (``bench/soak.py``)."""

    MIX = (
        (0.45, ServerError(500)),
        (0.2, DropMidStream(after_events=6)),
        (0.05, UsageLimit(resets_in_s=1)),
        (0.15, Failed()),
        (0.15, Unauthorized()),
    )

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate
        self.random = random.Random(16)
        self._refused: dict[str, float] = {}
        """When each account last got the 401 (``time.monotonic()``): for :data:`REFUSE_GAP_S` after
        it, the account gets no other 401, so the retry after codexgw's refresh (and a request that
        raced it) is not refused again. A 401 after a refresh means the login is dead (codexgw then
        marks the account ``needs_login``, rightly), which a random mix would otherwise do to every
        account in a long soak, leaving nothing but 503s to measure."""

    REFUSE_GAP_S = 5.0

    def next_behaviour(self, account: FakeAccount) -> Behaviour:
        if account.behaviours or self._shared or self.random.random() >= self.rate:
            return super().next_behaviour(account)
        pick = self.random.random()
        chosen = self.MIX[-1][1]
        for share, behaviour in self.MIX:
            if pick < share:
                chosen = behaviour
                break
            pick -= share
        if isinstance(chosen, Unauthorized):
            now = time.monotonic()
            if now - self._refused.get(account.email, -math.inf) < self.REFUSE_GAP_S:
                return super().next_behaviour(account)
            self._refused[account.email] = now
        return chosen


async def run(args: argparse.Namespace) -> None:
    fake = FailingFake(args.failures) if args.failures > 0 else FakeUpstream()
    fake.delta_interval_s = max(0.0, args.delta_interval_ms) / 1000
    accounts = [fake.add_account(email=f"user{i}@example.com") for i in range(1, max(0, args.accounts) + 1)]
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(partial(serve_fake, fake, host=args.host, port=args.port))
            if args.auth_json_dir is not None:
                for i, account in enumerate(accounts, start=1):
                    fake.write_auth_json(account, args.auth_json_dir / f"account{i}.json")
            if args.url_file is not None:
                tmp = args.url_file.with_name(args.url_file.name + ".tmp")
                tmp.write_text(base_url + "\n")
                os.replace(tmp, args.url_file)
            print(base_url, flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    trio.run(run, parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
