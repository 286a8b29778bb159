"""``codexgw serve`` as a real process under SIGTERM (cli/serve.py, upstream/drain.py; issue 16).

The fake upstream runs in the test; the server is a child process pointed at it. Its first SIGTERM
begins the drain (the stream in flight goes on, ``/health`` says ``draining``), a second one cuts
at once: the stream ends with the in-band ``server_shutting_down`` error and a whole chunked body,
the process exits 0 and logs one summary line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import Env
from tests.fakes import Text

pytestmark = pytest.mark.trio

ROOT = Path(__file__).resolve().parents[1]
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "a long answer"}], "stream": True}


async def start_server(env: Env, *flags: str) -> tuple[trio.Process, str, list[str]]:
    """Start ``codexgw serve`` on an ephemeral port; returns the process, its URL and its stderr
    lines (filled as they come by a task of ``env.nursery``)."""
    command = [
        sys.executable, "-m", "codexgw", "--store", str(env.store_dir), "serve", "--port", "0",
        "--upstream", f"{env.fake_url}/backend-api", "--auth-url", env.fake_url, "--no-dashboard", *flags,
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        command, stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    lines: list[str] = []
    url_seen = trio.Event()
    url: list[str] = []

    async def read_stderr() -> None:
        assert process.stderr is not None
        pending = b""
        async for chunk in process.stderr:
            pending += chunk
            *whole, pending = pending.split(b"\n")
            for raw in whole:
                line = raw.decode(errors="replace")
                lines.append(line)
                if (found := re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)) and not url:
                    url.append(found.group(1))
                    url_seen.set()

    env.nursery.start_soon(read_stderr)
    with trio.fail_after(30):
        await url_seen.wait()
    return process, url[0], lines


async def test_sigterm_drains_and_a_second_sigterm_cuts_at_once_with_an_in_band_error(env: Env) -> None:
    """Before issue 16 the first SIGTERM cut this stream after 3 s with an incomplete chunked body
    (httpx: ``RemoteProtocolError``)."""
    env.add_account("alice")
    env.fake.delta_interval_s = 0.1
    env.fake.script(None, Text("word " * 300, chunks=["word "] * 300))  # 30 s of deltas
    process, url, stderr = await start_server(env, "--grace", "30")
    data: list[str] = []
    try:
        with trio.fail_after(20):
            async with (
                httpx.AsyncClient(timeout=30) as client,
                client.stream("POST", f"{url}/v1/chat/completions", json=CHAT) as r,
            ):
                lines = r.aiter_lines()
                async for line in lines:
                    if line.startswith("data: "):
                        data.append(line)
                        if len(data) == 3:
                            break
                process.send_signal(signal.SIGTERM)
                health = await client.get(f"{url}/health")
                while health.status_code == 200:  # until the child process handled the signal
                    health = await client.get(f"{url}/health")
                assert health.status_code == 503 and health.json()["status"] == "draining"
                refused = await client.post(f"{url}/v1/chat/completions", json=CHAT)
                assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
                before = len(data)
                async for line in lines:  # the stream goes on during the grace
                    if line.startswith("data: "):
                        data.append(line)
                        if len(data) == before + 5:
                            break
                cut_at = trio.current_time()
                process.send_signal(signal.SIGTERM)
                async for line in lines:  # to its end: httpx raises on an incomplete body
                    if line.startswith("data: "):
                        data.append(line)
                cut_took = trio.current_time() - cut_at
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
    assert cut_took < 3  # "at once", not after the 30 s grace
    last = json.loads(data[-1][len("data: ") :])
    assert last["error"]["code"] == "server_shutting_down"
    assert "data: [DONE]" not in data
    with trio.fail_after(5):
        while not any("drain: finished" in line for line in stderr):
            await trio.sleep(0.05)
    summary = [line for line in stderr if "drain: finished" in line]
    assert len(summary) == 1 and "drain: finished 0, cut 1 in " in summary[0]
    assert any("received SIGTERM again; cutting 1 open requests now" in line for line in stderr)
