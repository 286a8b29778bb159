"""ASGI app and hypercorn runner for the fake upstream.

One app serves both hosts of the real service on one port: the issuer (``/oauth/...``,
``/api/accounts/deviceauth/...``) and the ChatGPT backend (``/backend-api/...``). Each request is
recorded, then handled while a watcher notices the client disconnecting (the app is raw ASGI, so it
must watch ``receive()`` itself).
"""

from __future__ import annotations

import json
import logging
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from .backend import Backend
from .http import BodyError, Receive, Responder, Scope, Send, read_request
from .oauth import OAuth
from .state import FakeUpstream, RecordedRequest


class FakeApp:
    """The raw ASGI application over a :class:`FakeUpstream`."""

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.oauth = OAuth(fake)
        self.backend = Backend(fake)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            # codex-protocol.md §11.4: answering 426 makes Codex fall back to HTTP SSE.
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 426,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b'{"detail":"Upgrade Required"}'})
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        resp = Responder(receive, send)
        try:
            request = await read_request(scope, receive)
        except BodyError as exc:
            await resp.json(exc.status, {"detail": exc.detail})
            return
        try:
            parsed = json.loads(request.body) if request.body else None
        except ValueError:
            parsed = None
        record = RecordedRequest(request.method, request.path, request.query, request.headers, parsed)
        self.fake.record(record)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(resp.watch_disconnect, nursery.cancel_scope)
            handled = await self.oauth.handle(request, resp) or await self.backend.handle(
                request, record, resp
            )
            if not handled:
                await resp.json(404, {"detail": "Not Found"})
            nursery.cancel_scope.cancel()
        if resp.client_gone:
            self.fake.client_disconnects += 1
            self.fake.notify()


def hypercorn_config(host: str, port: int) -> Config:
    """A quiet hypercorn config bound to ``host:port`` (port 0 = any free port)."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tests.fakes.hypercorn")
    config.errorlog.setLevel(logging.ERROR)  # startup chatter off, app crashes still shown
    config.graceful_timeout = 0.5
    config.keep_alive_timeout = 30
    return config


async def serve_fake(
    fake: FakeUpstream,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: str | None = None,
    keyfile: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``fake`` with hypercorn's trio worker until cancelled.

    Reports ``http://HOST:PORT`` (the real bound port) through ``task_status``; point codexgw at
    ``upstream = base_url + "/backend-api"`` and ``auth_url = base_url``. With ``certfile`` and
    ``keyfile`` (PEM paths) it serves HTTPS, as the real backend does (``https://HOST:PORT``).
    """
    config = hypercorn_config(host, port)
    config.certfile, config.keyfile = certfile, keyfile
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(serve, FakeApp(fake), config, mode="asgi"))
        task_status.started(binds[0])
