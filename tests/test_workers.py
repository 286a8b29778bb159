"""``serve --workers 2``: one gateway in several processes (issue 17 "Every core").

Each test runs the fake upstream in its own trio loop and ``codexgw serve --workers 2`` as a real
subprocess (a supervisor and two workers on one port), and reads which worker answered from the
access log lines (``codexgw.access[w0]``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import Env
from tests.fakes import Text, UsageLimit

pytestmark = pytest.mark.trio

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
ROOT = Path(__file__).resolve().parent.parent


class Supervisor:
    """A ``codexgw serve --workers N`` subprocess and its log."""

    def __init__(self, env: Env, *args: str, workers: int = 2) -> None:
        self.log_path = env.tmp / "serve.log"
        self.log = self.log_path.open("wb")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CODEXGW_")}
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "codexgw", "--store", str(env.store_dir), "serve", "--port", "0",
                "--workers", str(workers), "--upstream", f"{env.fake_url}/backend-api",
                "--auth-url", env.fake_url, "--no-dashboard", *args,
            ],
            stdout=subprocess.DEVNULL, stderr=self.log, cwd=ROOT, env=environment,
        )  # fmt: skip
        self.url = ""
        self.pids: list[int] = []
        self.signalled = False

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def started(self, timeout_s: float = 30.0) -> None:
        with trio.fail_after(timeout_s):
            while True:
                found = re.search(r"workers serving on (\S+) \(pids ([\d, ]+)\)", self.text())
                if found:
                    self.url = found.group(1)
                    self.pids = [int(p) for p in found.group(2).split(", ")]
                    return
                assert self.proc.poll() is None, self.text()
                await trio.sleep(0.05)

    def served_by(self, start: int = 0) -> Counter[str]:
        """How many requests each worker answered (access log lines from ``start`` on)."""
        return Counter(re.findall(r"codexgw\.access\[(w\d+)\]", self.text()[start:]))

    def terminate(self) -> None:
        """SIGTERM to the supervisor, once (a second one would cut the workers' streams at once)."""
        if not self.signalled and self.proc.poll() is None:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)

    async def stop(self) -> int:
        self.terminate()
        with trio.fail_after(20):
            while self.proc.poll() is None:
                await trio.sleep(0.05)
        self.log.close()
        return self.proc.returncode


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def fresh_posts(url: str, n: int, body: dict = CHAT) -> list[httpx.Response]:
    """``n`` requests at once, each on its own connection (so SO_REUSEPORT spreads them)."""
    out: list[httpx.Response] = []

    async def one() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            out.append(await client.post(f"{url}/v1/chat/completions", json=body))

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    return out


async def stream_into(url: str, bodies: list[str]) -> None:
    """One streamed chat request on its own connection; its whole body is appended to ``bodies``."""
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("POST", f"{url}/v1/chat/completions", json={**CHAT, "stream": True}) as r,
    ):
        bodies.append("".join([chunk async for chunk in r.aiter_text()]))


@pytest.fixture
async def sup(env: Env):
    made: list[Supervisor] = []

    def start(*args: str, workers: int = 2) -> Supervisor:
        s = Supervisor(env, *args, workers=workers)
        made.append(s)
        return s

    yield start
    for s in made:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        for pid in s.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_streams_spread_over_both_workers(env: Env, sup) -> None:
    env.add_account("alice")
    s = sup()
    await s.started()
    answers = await fresh_posts(s.url, 24)
    assert all(r.status_code == 200 for r in answers)
    counts = s.served_by()
    assert set(counts) == {"w0", "w1"}, counts
    assert await s.stop() == 0


async def test_a_429_learned_by_one_worker_is_honoured_by_the_other_within_a_second(env: Env, sup) -> None:
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    s = sup()
    await s.started()
    env.fake.script(alice, UsageLimit(resets_in_s=600))  # the next request to alice answers 429
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(4):
            assert (await client.post(f"{s.url}/v1/chat/completions", json=CHAT)).status_code == 200
            if alice.chatgpt_account_id in [
                r.headers.get("chatgpt-account-id") for r in env.fake.responses_requests()
            ]:
                break
    await trio.sleep(0.1)
    assert "hit its usage limit" in s.text()
    await trio.sleep(1.0)
    mark = len(s.text())
    before = len(env.fake.responses_requests())
    answers = await fresh_posts(s.url, 16)
    assert all(r.status_code == 200 for r in answers)
    served = [r.headers.get("chatgpt-account-id") for r in env.fake.responses_requests()[before:]]
    assert served == [bob.chatgpt_account_id] * 16  # neither worker sent one to alice
    assert set(s.served_by(mark)) == {"w0", "w1"}  # and both workers answered
    assert await s.stop() == 0


async def test_one_refresh_across_workers(env: Env, sup) -> None:
    """Both workers find the token about to expire at start; the store lease lets one refresh."""
    alice = env.add_account("alice", access_ttl_s=120)  # inside the 300 s refresh margin
    alice.access_ttl_s = 3600  # the refreshed token is not: one refresh is all it takes
    s = sup()
    await s.started()
    with trio.fail_after(10):
        while alice.refresh_count < 1:
            await trio.sleep(0.05)
    await trio.sleep(2.0)  # both background loops have looked by now
    assert alice.refresh_count == 1
    answers = await fresh_posts(s.url, 8)
    assert all(r.status_code == 200 for r in answers)
    assert alice.refresh_count == 1
    assert "refresh_token_reused" not in s.text()
    assert await s.stop() == 0


async def test_sigterm_drains_every_worker(env: Env, sup) -> None:
    env.add_account("alice")
    env.fake.delta_interval_s = 0.1
    s = sup()
    await s.started()
    words = [f"w{i} " for i in range(12)]  # about 1.2 s each
    bodies: list[str] = []

    for _ in range(8):
        env.fake.script(None, Text("".join(words), chunks=words))
    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(stream_into, s.url, bodies)
        with trio.fail_after(10):
            while len(env.fake.responses_requests()) < 8:
                await trio.sleep(0.02)
        await trio.sleep(0.2)
        assert set(s.served_by()) <= {"w0", "w1"}
        s.terminate()
    assert len(bodies) == 8 and all(b.rstrip().endswith("data: [DONE]") for b in bodies), bodies
    assert await s.stop() == 0
    assert s.text().count("received SIGTERM") == 3  # the supervisor, and each worker once
    assert not any(alive(p) for p in s.pids)


async def test_streams_longer_than_the_grace_end_in_band_in_every_worker(env: Env, sup) -> None:
    """SIGTERM with ``--grace 1``: streams of ~10 s in both workers end with ``server_shutting_down``
    in-band and a whole body (issue 16's drain, run by each worker), and the supervisor exits 0."""
    env.add_account("alice")
    env.fake.delta_interval_s = 0.25
    s = sup("--grace", "1")
    await s.started()
    words = [f"w{i} " for i in range(40)]
    bodies: list[str] = []

    for _ in range(6):
        env.fake.script(None, Text("".join(words), chunks=words))
    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(stream_into, s.url, bodies)
        with trio.fail_after(10):
            while len(env.fake.responses_requests()) < 6:
                await trio.sleep(0.02)
        await trio.sleep(0.3)
        started = time.monotonic()
        s.terminate()
    assert len(bodies) == 6 and all("server_shutting_down" in b for b in bodies), bodies
    for body in bodies:  # a whole body whose last event is the in-band error (no [DONE] after a cut)
        last = [line for line in body.splitlines() if line.startswith("data: ")][-1]
        assert json.loads(last[6:])["error"]["code"] == "server_shutting_down", body
    assert await s.stop() == 0
    assert time.monotonic() - started < 8
    assert len(re.findall(r"drain: finished \d+, cut \d+", s.text())) == 2, s.text()[-2000:]
    assert not any(alive(p) for p in s.pids)


async def test_a_killed_worker_is_started_again(env: Env, sup) -> None:
    env.add_account("alice")
    s = sup()
    await s.started()
    os.kill(s.pids[0], signal.SIGKILL)
    with trio.fail_after(15):
        while (
            "worker 0 started again" not in s.text()
            or "[w0]: codexgw" not in s.text().split("started again")[-1]
        ):
            await trio.sleep(0.05)
    assert "exited with signal 9" in s.text()
    answers = await fresh_posts(s.url, 16)
    assert all(r.status_code == 200 for r in answers)
    assert await s.stop() == 0


async def test_workers_exit_when_the_supervisor_is_killed(env: Env, sup) -> None:
    env.add_account("alice")
    s = sup()
    await s.started()
    assert all(alive(p) for p in s.pids)
    s.proc.kill()
    s.proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in s.pids) and time.monotonic() < deadline:
        await trio.sleep(0.1)
    assert not any(alive(p) for p in s.pids)


async def test_the_liveness_watch_is_a_task_that_drains_on_the_pipes_end() -> None:
    """The worker's watch on its supervisor's pipe (stdin) runs in the nursery, not a thread: data
    is ignored, EOF sends this process SIGTERM (the drain), and the watch ends."""
    from codexgw.cli.workers import _watch_supervisor

    read_fd, write_fd = os.pipe()
    try:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_supervisor, read_fd)
                os.write(write_fd, b"still here")
                await trio.sleep(0.05)
                os.close(write_fd)
                write_fd = -1
                with trio.fail_after(5):
                    assert await signals.__anext__() == signal.SIGTERM
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


async def test_a_keys_rpm_is_shared_by_the_workers(env: Env, sup) -> None:
    """rpm 6 over two workers: 6 requests pass, the next ones are refused whichever worker answers
    (per process, each worker would have let 6 through: 12)."""
    env.add_account("alice")
    created = subprocess.run(
        [sys.executable, "-m", "codexgw", "--store", str(env.store_dir), "keys", "create", "ci", "--rpm", "6"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("cgw-"), created.stdout
    s = sup("--api-key", "m" * 32)
    await s.started()
    statuses: list[int] = []

    async def one() -> None:
        headers = {"authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(timeout=30, headers=headers) as client:
            statuses.append((await client.post(f"{s.url}/v1/chat/completions", json=CHAT)).status_code)

    for _ in range(2):
        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(one)
    assert statuses.count(200) == 6 and statuses.count(429) == 10, statuses
    assert set(s.served_by()) == {"w0", "w1"}
    assert await s.stop() == 0


async def test_metrics_and_status_answer_for_every_worker(env: Env, sup) -> None:
    """/metrics from any worker has every worker's series with a worker label; /status lists them."""
    env.add_account("alice")
    s = sup()
    await s.started()
    assert all(r.status_code == 200 for r in await fresh_posts(s.url, 16))
    await trio.sleep(1.5)  # a publication of each worker
    served = s.served_by()
    async with httpx.AsyncClient(timeout=30) as client:
        text = (await client.get(f"{s.url}/metrics")).text
        status = (await client.get(f"{s.url}/status")).json()
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}  # valid exposition
    per_worker: Counter[str] = Counter()
    for sample in families["codexgw_requests"].samples:
        if sample.labels.get("route") == "/v1/chat/completions":
            per_worker[sample.labels["worker"]] += int(sample.value)
    assert per_worker == Counter({"0": served["w0"], "1": served["w1"]})
    assert status["worker"] in (0, 1)
    assert [w["worker"] for w in status["workers"]] == [0, 1]
    assert sorted(w["pid"] for w in status["workers"]) == sorted(s.pids)
    assert await s.stop() == 0


async def test_a_busy_port_stops_the_supervisor_with_one_line(env: Env) -> None:
    import socket

    env.add_account("alice")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "codexgw", "--store", str(env.store_dir), "serve", "--port", str(port),
             "--workers", "2", "--no-dashboard"],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr


async def test_workers_setting_accepts_auto_and_numbers_only() -> None:
    from codexgw.cli.settings import SettingsError, worker_count

    assert worker_count("3") == 3
    assert 1 <= worker_count("auto") <= 64
    for bad in ("0", "65", "two", "-1"):
        with pytest.raises(SettingsError, match="auto or a whole number from 1 to 64"):
            worker_count(bad)


async def test_a_session_stays_on_its_account_across_workers(env: Env, sup) -> None:
    """Session affinity is shared: each conversation's turns, each on a new connection (so on either
    worker), keep one account. With the random strategy two workers binding on their own would
    disagree for some of the 8 conversations (before the shared bindings: 1 in 256 to pass)."""
    env.add_account("alice")
    env.add_account("bob")
    s = sup("--strategy", "random")
    await s.started()
    served: dict[str, set[str]] = {}  # the upstream session_id (one per conversation) -> accounts

    async def turn(conversation: int, n: int) -> None:
        async with httpx.AsyncClient(timeout=30, headers={"session_id": f"conv-{conversation}"}) as client:
            r = await client.post(f"{s.url}/v1/chat/completions", json=CHAT)
            assert r.status_code == 200

    for n in range(4):
        before = len(env.fake.responses_requests())
        async with trio.open_nursery() as nursery:
            for conversation in range(8):
                nursery.start_soon(turn, conversation, n)
        for r in env.fake.responses_requests()[before:]:
            served.setdefault(r.headers["session_id"], set()).add(r.headers.get("chatgpt-account-id", ""))
        await trio.sleep(0.6)  # the bindings reach the other worker
    assert len(served) == 8
    assert all(len(accounts) == 1 for accounts in served.values()), served
    assert set(s.served_by()) == {"w0", "w1"}
    assert await s.stop() == 0


async def test_a_pin_reaches_every_worker_within_a_second(env: Env, sup) -> None:
    env.add_account("alice")
    bob = env.add_account("bob")
    s = sup()
    await s.started()
    subprocess.run(
        [sys.executable, "-m", "codexgw", "--store", str(env.store_dir), "accounts", "pin", "bob"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    await trio.sleep(1.5)
    before = len(env.fake.responses_requests())
    assert all(r.status_code == 200 for r in await fresh_posts(s.url, 16))
    served = {r.headers.get("chatgpt-account-id") for r in env.fake.responses_requests()[before:]}
    assert served == {bob.chatgpt_account_id}
    assert await s.stop() == 0
