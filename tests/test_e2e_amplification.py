"""A small body that would decode or parse into something huge costs a fixed budget (issue 16 item 4).

Before: one 65 KB gzip body decoding to 64 MiB of ``[],`` took the server from 55 MiB to 1.75 GB
and held ``/health`` for 9.8 s (``json.loads`` on the event loop); JSON nested past the recursion
limit answered 500. Here ``codexgw serve`` runs as its own process (its memory is its own: the
peak, ``VmHWM`` of ``/proc/PID/status``, against the RSS before), a task polls ``/health`` while
the bodies go in, and the worst gap between two answers is the event loop's longest stall.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import Env

pytestmark = [
    pytest.mark.trio,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status"),
]

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
RSS_BUDGET = 256 * MIB
"""Most a request may add to the server's peak memory."""
WORST_GAP_S = 0.5
"""Longest pause of ``/health`` accepted (polled every 20 ms; the stall before was 9.8 s)."""


def memory(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of ``pid``, bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def lists_body(decoded_bytes: int) -> bytes:
    """A valid chat body whose ``messages`` is ``[[],[],…]``, about ``decoded_bytes`` long."""
    head, tail = b'{"model":"gpt-5.5","messages":[', b"[]]}"
    return head + b"[]," * ((decoded_bytes - len(head) - len(tail)) // 3) + tail


async def serve_process(env: Env) -> tuple[subprocess.Popen[str], str]:
    """``codexgw serve`` in a subprocess against the test's fake; ``(process, base URL)``."""
    env.add_account("alice")
    command = [
        sys.executable, "-m", "codexgw", "--store", str(env.store_dir), "serve", "--port", "0",
        "--upstream", f"{env.fake_url}/backend-api", "--auth-url", env.fake_url, "--probe-interval", "0",
        "--no-dashboard",
    ]  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CODEXGW_")}
    process = subprocess.Popen(command, cwd=ROOT, env=environ, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    with trio.fail_after(30):
        while True:
            line = await trio.to_thread.run_sync(process.stderr.readline)
            assert line, "the server exited before listening"
            if " serving on " in line:
                url = line.split(" serving on ", 1)[1].split()[0].rstrip(",")
                return process, url


async def test_amplified_bodies_cost_a_fixed_budget_and_never_stall_the_loop(env: Env) -> None:
    process, url = await serve_process(env)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            assert (await client.get("/health")).status_code == 200
            before = memory(process.pid)["VmRSS"]
            bomb = gzip.compress(lists_body(64 * MIB - 16), 9)  # under the old 64 MiB limit
            within = gzip.compress(lists_body(15 * MIB), 9)  # under the new 16 MiB limit
            deep = b'{"model":"gpt-5.5","messages":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
            assert len(bomb) < 100_000
            gaps: list[float] = []
            answers: list[tuple[str, int, dict]] = []
            done = trio.Event()

            async def poll_health() -> None:
                async with httpx.AsyncClient(base_url=url, timeout=30) as poller:
                    last = trio.current_time()
                    while not done.is_set():
                        assert (await poller.get("/health")).status_code == 200
                        now = trio.current_time()
                        gaps.append(now - last)
                        last = now
                        await trio.sleep(0.02)

            async def send(name: str, path: str, body: bytes, encoding: str | None) -> None:
                headers = {"content-type": "application/json"}
                if encoding:
                    headers["content-encoding"] = encoding
                r = await client.post(path, content=body, headers=headers)
                answers.append((name, r.status_code, r.json()["error"]))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(poll_health)
                await trio.sleep(0.2)
                for path in ("/v1/chat/completions", "/v1/responses/compact"):
                    await send(f"bomb {path}", path, bomb, "gzip")
                    await send(f"within {path}", path, within, "gzip")
                    await send(f"deep {path}", path, deep, None)
                await trio.sleep(0.2)
                done.set()
            after = memory(process.pid)
        growth = after["VmHWM"] - before
        print(
            f"RSS before {before / MIB:.0f} MiB, peak {after['VmHWM'] / MIB:.0f} MiB, worst /health gap {max(gaps) * 1000:.0f} ms"
        )
        for name, status, error in answers:
            assert set(error) == {"message", "type", "param", "code"} and error["param"] is None, name
            if name.startswith("bomb"):
                assert status == 413 and "16777216 bytes" in error["message"], (name, error)
            elif name.startswith("within"):
                assert (status, error["code"]) == (400, "json_too_large"), (name, error)
                assert "500000 arrays and objects" in error["message"]
            else:
                assert (status, error["code"]) == (400, "json_too_deep"), (name, error)
                assert "128 levels" in error["message"]
        assert growth < RSS_BUDGET, f"peak grew by {growth / MIB:.0f} MiB"
        assert max(gaps) < WORST_GAP_S, f"/health stalled {max(gaps):.2f} s"
    finally:
        process.terminate()
        await trio.to_thread.run_sync(process.wait)


async def test_json_nested_past_the_recursion_limit_is_a_400_on_every_parser(env: Env) -> None:
    """The in-process server, for the routes the process test does not cover: the admin API and a
    WebSocket frame (the frame gets an ``error`` event; the socket stays open)."""
    from tests.wsclient import connect

    env.add_account("alice")
    await env.start()
    deep = "[" * 100_000 + "]" * 100_000
    async with httpx.AsyncClient(base_url=env.url, timeout=30) as client:
        r = await client.post("/api/session", content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep", r.text
    socket = await connect(env.url)
    try:
        await socket.send_text(json.dumps({"type": "response.create"})[:-1] + ', "x": ' + deep + "}")
        event = await socket.recv()
        assert event["type"] == "error" and event["error"]["code"] == "json_too_deep", event
    finally:
        await socket.drop()
