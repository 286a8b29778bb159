"""``python -m tests.fakes``: run the fake upstream standalone (for ``make demo`` and zipapp tests).

Creates N accounts, writes each one's Codex ``auth.json`` (codex-protocol.md §5) to
``DIR/account<i>.json``, writes the base URL to ``--url-file`` once listening, prints it, and runs
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from functools import partial
from pathlib import Path

import trio

from . import FakeUpstream, serve_fake


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
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    fake = FakeUpstream()
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
