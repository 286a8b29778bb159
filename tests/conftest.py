"""Shared fixtures: the fake upstream and a real codexgw server, both on 127.0.0.1 ephemeral ports.

End-to-end tests run both inside the test's trio nursery (design §5: a real hypercorn server, a
real client; ASGI test transports buffer streams). The official ``openai`` SDK is synchronous here
and runs in a worker thread (``trio.to_thread``), like any external client would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import settings as hypothesis_settings

from codexgw.config import Settings
from codexgw.serve import Running, serve
from codexgw.store.importers import load_codex_auth_json
from codexgw.store.sqlite import Store
from tests.fakes import FakeAccount, FakeUpstream, serve_fake

# Timing belongs in bench/, not in unit tests: no per-example deadline, which flakes on a loaded
# 2-core machine (brief: "never in timed unit tests").
hypothesis_settings.register_profile("codexgw", deadline=None)
hypothesis_settings.load_profile("codexgw")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's settings: no ``CODEXGW_*`` variable, no systemd credentials, and
    an empty config directory (``XDG_CONFIG_HOME``), so ``~/.config/codexgw/config.toml`` is never read."""
    import os

    for name in list(os.environ):
        if name.startswith("CODEXGW_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@dataclass
class Clock:
    """A settable epoch clock shared by the fake and codexgw (so tokens expire without sleeping)."""

    now: float = field(default_factory=lambda: __import__("time").time())

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    """A running fake upstream plus a running codexgw in front of it."""

    fake: FakeUpstream
    fake_url: str
    store_dir: Path
    clock: Clock
    nursery: trio.Nursery
    tmp: Path
    running: Running | None = None
    shutdown: trio.Event | None = None

    @property
    def url(self) -> str:
        """codexgw's base URL, e.g. ``http://127.0.0.1:PORT``."""
        assert self.running is not None, "call await env.start() first"
        return self.running.urls[0]

    @property
    def gateway(self) -> Any:
        assert self.running is not None
        return self.running.gateway

    def add_account(self, name: str, **kw: Any) -> FakeAccount:
        """Create an account at the fake and import its Codex auth.json into the store."""
        account = self.fake.add_account(email=f"{name}@example.com", **kw)
        path = self.fake.write_auth_json(account, self.tmp / f"{name}.auth.json")
        Store.open(self.store_dir).upsert_account(load_codex_auth_json(path), name=name)
        return account

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "store_dir": self.store_dir,
            "upstream_url": f"{self.fake_url}/backend-api",
            "auth_url": self.fake_url,
            "port": 0,
            "graceful_timeout_s": 1.0,
            "accounts_poll_s": 0.05,
        }
        base.update(overrides)
        return Settings(**base)

    async def start(self, **overrides: Any) -> Running:
        """Start codexgw with these settings overrides; it stops when the test ends."""
        self.shutdown = trio.Event()
        self.running = await self.nursery.start(
            lambda task_status: serve(
                self.settings(**overrides), shutdown=self.shutdown, clock=self.clock, task_status=task_status
            )
        )
        return self.running

    def openai(self, **kw: Any) -> Any:
        """An official ``openai`` SDK client pointed at codexgw (sync; use it via :func:`in_thread`)."""
        import openai

        kw.setdefault("max_retries", 0)
        kw.setdefault("api_key", "sk-unused")
        return openai.OpenAI(base_url=f"{self.url}/v1", **kw)


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking client call in a worker thread while the servers keep running."""
    return await trio.to_thread.run_sync(lambda: fn(*args, **kwargs))


@pytest.fixture
async def env(nursery: trio.Nursery, tmp_path: Path) -> Env:
    """A fake upstream on an ephemeral port and an empty store; ``await env.start()`` starts codexgw."""
    clock = Clock()
    fake = FakeUpstream(clock=clock)
    fake_url = await nursery.start(serve_fake, fake)
    return Env(
        fake=fake, fake_url=fake_url, store_dir=tmp_path / "store", clock=clock, nursery=nursery, tmp=tmp_path
    )


@pytest.fixture
def body_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every chunk the gateway's streamed answers send through a connection's ``BodyWriter``
    during the test (``codexgw.api.server``: framed by codexgw, no ASGI message per chunk)."""
    from codexgw.api.server import BodyWriter

    chunks: list[bytes] = []
    send = BodyWriter.send

    async def spy(self: BodyWriter, data: bytes) -> None:
        chunks.append(data)
        await send(self, data)

    monkeypatch.setattr(BodyWriter, "send", spy)
    return chunks


@pytest.fixture
def pumps(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``UpstreamStream`` whose body the gateway pushed to its client from the direct read
    loop (``UpstreamStream.pump``, reached through ``Relay.push``), in order."""
    from codexgw.upstream.stream import UpstreamStream

    streams: list[UpstreamStream] = []
    pump = UpstreamStream.pump

    async def spy(self: UpstreamStream, *args: Any, **kwargs: Any) -> None:
        streams.append(self)
        await pump(self, *args, **kwargs)

    monkeypatch.setattr(UpstreamStream, "pump", spy)
    return streams


@pytest.fixture
def direct_readers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``DirectBody`` the gateway attaches to an upstream response during the test, in order
    (``codexgw.client.direct``: the body read straight off its socket)."""
    from codexgw.client.direct import DirectBody

    readers: list[DirectBody] = []
    attach = DirectBody.attach

    def spy(response: Any) -> DirectBody | None:
        reader = attach(response)
        if reader is not None:
            readers.append(reader)
        return reader

    monkeypatch.setattr(DirectBody, "attach", spy)
    return readers
