"""Notifications: the sans-IO core (codexgw.pool.notices) on status documents and a given `now`, and
the serve-nursery shell (codexgw.upstream.notifier) posting to a local HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
import trio

from codexgw.config import NotifySettings
from codexgw.pool.notices import Kind, Notices, Thresholds
from codexgw.upstream.notifier import wire_format
from tests.conftest import Env, in_thread
from tests.fakes import UsageLimit

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}


def row(name: str, *, status: str = "active", enabled: bool = True, usable: bool | None = None, used: float | None = None, limit: bool = False) -> dict[str, Any]:  # fmt: skip
    quota = None
    if used is not None or limit:
        quota = {
            "limit_reached": limit,
            "primary": {"used_percent": used or 0.0},
            "secondary": {"used_percent": 1.0},
        }
    return {
        "name": name,
        "enabled": enabled,
        "status": status,
        "status_reason": "refresh_token_expired" if status == "needs_login" else None,
        "plan_type": "plus",
        "usable": (status == "active" and enabled) if usable is None else usable,
        "quota": quota,
    }


def doc(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"accounts": list(rows)}


def kinds(notices: list[Any]) -> list[tuple[str, str | None]]:
    return [(str(n.kind), n.account) for n in notices]


def test_each_condition_gives_its_notice_once() -> None:
    core = Notices(Thresholds(low_percent=20, critical_percent=5, interval_s=3600))
    first = core.observe(
        doc(
            row("a", status="needs_login"),
            row("b", status="suspended"),
            row("c", status="plan_unsupported"),
            row("d", used=85),
            row("e", used=96),
            row("f", limit=True),
            row("g", used=50),
            row("h", status="needs_login", enabled=False),  # disabled: the user took it out
        ),
        now=1000,
    )
    assert kinds(first) == [
        ("needs_login", "a"),
        ("suspended", "b"),
        ("plan_unsupported", "c"),
        ("quota_low", "d"),
        ("quota_critical", "e"),
        ("quota_critical", "f"),
    ]
    needs_login = first[0]
    assert needs_login.priority == "high" and "codexgw login device --name a" in needs_login.message
    assert "refresh_token_expired" in needs_login.message
    assert first[3].priority == "default" and "15% of a usage window left" in first[3].message
    assert needs_login.as_json()["kind"] == "needs_login" and needs_login.as_json()["time"] == 1000
    assert (
        core.observe(doc(row("a", status="needs_login"), row("d", used=85)), now=1010) == []
    )  # lasting: quiet


def test_pool_exhausted_only_with_enabled_accounts_and_none_usable() -> None:
    core = Notices()
    assert kinds(core.observe(doc(row("a", usable=False), row("b", status="needs_login")), now=0)) == [
        ("needs_login", "b"),
        ("pool_exhausted", None),
    ]
    assert core.observe(doc(row("a", enabled=False)), now=10) == []
    assert Notices().observe(doc(), now=0) == []
    urgent = Notices().observe(doc(row("a", usable=False)), now=0)
    assert kinds(urgent) == [("pool_exhausted", None)] and urgent[0].priority == "urgent"


def test_at_most_one_per_kind_and_account_per_interval() -> None:
    core = Notices(Thresholds(interval_s=600))
    bad, good = doc(row("a", status="needs_login"), row("z")), doc(row("a"), row("z"))
    assert kinds(core.observe(bad, now=0)) == [("needs_login", "a")]
    assert core.observe(good, now=60) == []
    assert core.observe(bad, now=120) == []  # started again inside the interval: held back
    assert core.observe(bad, now=500) == []
    assert kinds(core.observe(bad, now=600)) == [("needs_login", "a")]  # still holds: sent now
    assert core.observe(bad, now=700) == []
    core.observe(good, now=800)
    assert core.observe(good, now=1300) == [] and kinds(core.observe(bad, now=1300)) == [("needs_login", "a")]
    other = Notices(Thresholds(interval_s=600))
    other.observe(bad, now=0)
    other.observe(good, now=10)
    other.observe(bad, now=20)
    assert other.observe(good, now=700) == []  # held back, then over before the interval ended


def test_quota_low_then_critical_then_reset() -> None:
    core = Notices(Thresholds(low_percent=20, critical_percent=5, interval_s=0))
    assert kinds(core.observe(doc(row("a", used=81)), now=0)) == [("quota_low", "a")]
    assert kinds(core.observe(doc(row("a", used=99)), now=1)) == [("quota_critical", "a")]
    assert core.observe(doc(row("a", used=3)), now=2) == []
    assert Kind.QUOTA_LOW == "quota_low"


def test_wire_format() -> None:
    assert wire_format(NotifySettings(url="https://ntfy.sh/topic")) == "ntfy"
    assert wire_format(NotifySettings(url="https://ntfy.example.org/topic")) == "ntfy"
    assert wire_format(NotifySettings(url="https://hooks.example.com/x")) == "json"
    assert wire_format(NotifySettings(url="https://hooks.example.com/x", format="ntfy")) == "ntfy"


# -- the shell, against a local receiver --------------------------------------------------------------


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server on 127.0.0.1 that keeps every request it gets and answers ``status``."""

    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _changed: trio.Event = field(default_factory=trio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            body += await stream.receive_some(65536)
        method, path, _ = lines[0].split(" ", 2)
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        self._changed.set()
        self._changed = trio.Event()
        await stream.send_all(
            f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await stream.aclose()

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        with trio.fail_after(10):
            while len(self.requests) < count:
                await self._changed.wait()
        return self.requests

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(json.loads(r["body"])["kind"], json.loads(r["body"])["account"]) for r in self.requests]


async def receiver(nursery: trio.Nursery, status: int = 200) -> Receiver:
    got = Receiver(status=status)
    listeners = await nursery.start(functools.partial(trio.serve_tcp, got.handle, 0, host="127.0.0.1"))
    got.port = listeners[0].socket.getsockname()[1]
    return got


def notify(url: str, **kw: Any) -> NotifySettings:
    return NotifySettings(url=url, poll_s=0.02, **kw)


async def test_notifications_reach_a_json_webhook(env: Env, nursery: trio.Nursery) -> None:
    """needs_login, quota_critical and pool_exhausted arrive as JSON, each once."""
    got = await receiver(nursery)
    alice = env.add_account("alice")
    bob = env.add_account("bob")
    await env.start(notify=notify(f"{got.url}/hook", format="json"), probe_interval_s=0)
    client = env.openai()
    env.fake.expire_access_token(alice)
    env.fake.fail_next_refresh(401, {"error": {"code": "refresh_token_expired", "message": "expired"}})
    bob.primary_used_percent = 97.0
    await in_thread(client.chat.completions.create, **CHAT)  # alice: needs_login; bob serves at 97 %
    await got.wait_for(2)
    assert sorted(got.kinds()) == [("needs_login", "alice"), ("quota_critical", "bob")]
    first = json.loads(got.requests[0]["body"])
    assert first["source"] == "codexgw" and first["title"].startswith("codexgw: ")
    assert (
        got.requests[0]["path"] == "/hook"
        and got.requests[0]["headers"]["content-type"] == "application/json"
    )
    env.fake.script(bob, UsageLimit(resets_in_s=600))
    with pytest.raises(openai.RateLimitError):  # 429 usage_limit_reached: no account left
        await in_thread(client.chat.completions.create, **CHAT)
    await got.wait_for(3)
    assert got.kinds()[2] == ("pool_exhausted", None)
    await trio.sleep(0.2)  # many more rounds: nothing repeats
    assert len(got.requests) == 3
    for request in got.requests:
        assert alice.refresh_token.encode() not in request["body"] and b"eyJ" not in request["body"]


async def test_ntfy_format(env: Env, nursery: trio.Nursery) -> None:
    got = await receiver(nursery)
    alice = env.add_account("alice")
    alice.primary_used_percent = 90.0
    await env.start(notify=notify(f"{got.url}/my-topic", format="ntfy", low_percent=25), probe_interval_s=0)
    await in_thread(env.openai().chat.completions.create, **CHAT)
    [request] = await got.wait_for(1)
    assert request["path"] == "/my-topic"
    assert request["headers"]["title"] == "codexgw: alice quota low"
    assert request["headers"]["priority"] == "default" and request["headers"]["tags"] == "hourglass"
    assert request["body"].decode() == "Account alice has 10% of a usage window left."


async def test_a_failing_receiver_is_logged_never_fatal(
    env: Env, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = await receiver(nursery, status=500)
    alice = env.add_account("alice")
    alice.primary_used_percent = 99.0
    caplog.set_level(logging.WARNING, logger="codexgw.notify")
    await env.start(notify=notify(f"{refusing.url}/secret-topic-name"), probe_interval_s=0)
    completion = await in_thread(env.openai().chat.completions.create, **CHAT)
    await refusing.wait_for(1)
    with trio.fail_after(5):
        while not any("answered HTTP 500" in r.getMessage() for r in caplog.records):
            await trio.sleep(0.02)
    assert completion.choices[0].message.content
    assert all("secret-topic-name" not in r.getMessage() for r in caplog.records)
    assert (await in_thread(env.openai().chat.completions.create, **CHAT)).choices[0].message.content


async def test_an_unreachable_receiver_is_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    with trio.socket.socket() as sock:  # a port nothing listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env.add_account("alice").primary_used_percent = 99.0
    caplog.set_level(logging.WARNING, logger="codexgw.notify")
    await env.start(notify=notify(f"http://127.0.0.1:{port}/t"), probe_interval_s=0)
    await in_thread(env.openai().chat.completions.create, **CHAT)
    with trio.fail_after(5):
        while not any("could not be reached (ConnectError)" in r.getMessage() for r in caplog.records):
            await trio.sleep(0.02)
    assert (await in_thread(env.openai().chat.completions.create, **CHAT)).choices[0].message.content


def test_login_expiring_gives_a_notice_while_the_account_still_serves() -> None:
    """Issue 16: a spent refresh token with a valid access token (``login_expiring``) is told at once,
    before the account becomes ``needs_login``; the account is usable meanwhile (no pool notice)."""
    core = Notices(Thresholds(interval_s=3600))
    notices = core.observe(doc(row("a", status="login_expiring", usable=True)), now=1000)
    assert kinds(notices) == [("login_expiring", "a")]
    assert "Run: codexgw login device --name a" in notices[0].message and notices[0].priority == "high"
    later = core.observe(doc(row("a", status="needs_login", usable=False)), now=1060)
    assert ("needs_login", "a") in kinds(later)
