"""The soak (issue 16), ``python -m bench --only soak --minutes 30``.

Processes: the fake upstream of the tests (``python -m tests.fakes --failures 0.1``: one answer in
ten fails, mixed: 500, a drop mid-answer, a usage limit, ``response.failed``, 401) with five
accounts, one codexgw server over them, and this process as the load: ``CONCURRENCY`` clients
sending a mix of chat and Responses requests, streamed and not, for the whole run.

Reported: the server's RSS sampled over time, its open file descriptors at the end (after the
load stopped and idle connections closed), request outcomes by status, in-band stream errors,
client-side transport errors, and 5xx answers (failover should hide most upstream failures).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .env import ROOT, free_port, stop, wait_port
from .procstat import rss_bytes

CONCURRENCY = 8
ACCOUNTS = 5
FAILURES = 0.1


def open_fds(pid: int) -> int | None:
    """Open file descriptors of ``pid`` (``/proc/<pid>/fd``), ``None`` if unreadable."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def start(work: Path) -> tuple[subprocess.Popen, subprocess.Popen, int]:
    """The failing fake, the store with its accounts, and codexgw on a free port."""
    url_file, auth_dir, store = work / "fake.url", work / "auth", work / "store"
    auth_dir.mkdir()
    fake_log = open(work / "fake.log", "wb")  # noqa: SIM115
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "--accounts", str(ACCOUNTS), "--auth-json-dir", str(auth_dir),
         "--url-file", str(url_file), "--failures", str(FAILURES), "--delta-interval-ms", "5"],
        cwd=ROOT, stdout=fake_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not url_file.exists():
        if time.monotonic() > deadline or fake.poll() is not None:
            raise RuntimeError("the fake upstream did not start")
        time.sleep(0.05)
    fake_url = url_file.read_text().strip()
    for path in sorted(auth_dir.glob("*.json")):
        subprocess.run(
            [sys.executable, "-m", "codexgw", "--store", str(store), "accounts", "import", str(path)],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
    port = free_port()
    server_log = open(work / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "codexgw", "--store", str(store), "serve", "--port", str(port),
         "--upstream", f"{fake_url}/backend-api", "--auth-url", fake_url, "--probe-interval", "0",
         "--no-dashboard", "--log-level", "warning"],
        cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_port(port, 30, server)
    return fake, server, port


def request_body(kind: str, stream: bool, n: int) -> dict[str, Any]:
    text = f"soak request {n}: say something short"
    if kind == "chat":
        return {"model": "gpt-5.5", "messages": [{"role": "user", "content": text}], "stream": stream}
    return {"model": "gpt-5.5", "input": text, "stream": stream, "store": False}


async def load(port: int, seconds: float, server_pid: int, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the mixed load for ``seconds``; sample the server's RSS every ``seconds / 20`` (≥ 5 s)."""
    import httpx
    import trio

    counts: dict[str, int] = {}
    in_band = transport = total = 0
    rng = random.Random(16)
    end = trio.current_time() + seconds
    started = time.monotonic()

    def count(key: str) -> None:
        counts[key] = counts.get(key, 0) + 1

    async def one(client: httpx.AsyncClient, n: int) -> None:
        nonlocal in_band, transport, total
        kind, stream = rng.choice(("chat", "responses")), rng.random() < 0.6
        path = "/v1/chat/completions" if kind == "chat" else "/v1/responses"
        total += 1
        try:
            if not stream:
                r = await client.post(path, json=request_body(kind, False, n))
                count(str(r.status_code))
                return
            async with client.stream("POST", path, json=request_body(kind, True, n)) as r:
                count(str(r.status_code))
                async for line in r.aiter_lines():
                    if line.startswith('data: {"error"') or '"type":"response.failed"' in line:
                        in_band += 1
        except httpx.HTTPError:
            transport += 1

    async def worker(i: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            n = i
            while trio.current_time() < end:
                await one(client, n)
                n += CONCURRENCY

    async def sampler() -> None:
        every = max(5.0, seconds / 20)
        while trio.current_time() < end:
            samples.append({"t_s": round(time.monotonic() - started, 1), "rss_mib": _mib(rss_bytes(server_pid))})
            await trio.sleep(every)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sampler)
        for i in range(CONCURRENCY):
            nursery.start_soon(worker, i)
    elapsed = time.monotonic() - started
    server_errors = sum(v for k, v in counts.items() if k.startswith("5"))
    return {
        "requests": total,
        "rps": round(total / elapsed, 1),
        "status": dict(sorted(counts.items())),
        "in_band_errors": in_band,
        "transport_errors": transport,
        "server_5xx": server_errors,
    }


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def run(work: Path, minutes: float) -> dict[str, Any]:
    """The soak for ``minutes``; the result dict (also written to ``work/soak.json``)."""
    import trio

    fake, server, port = start(work)
    samples: list[dict[str, Any]] = []
    try:
        fds_before = open_fds(server.pid)
        result = trio.run(load, port, minutes * 60, server.pid, samples)
        time.sleep(3)  # idle client connections close; the upstream pool keeps its warm ones
        result.update(
            minutes=minutes,
            concurrency=CONCURRENCY,
            failure_rate=FAILURES,
            rss_mib=samples,
            rss_end_mib=_mib(rss_bytes(server.pid)),
            fds_start=fds_before,
            fds_end=open_fds(server.pid),
            server_alive=server.poll() is None,
        )
    finally:
        stop(server)
        stop(fake)
    (work / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
