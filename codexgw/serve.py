"""The ``serve`` nursery: hypercorn (HTTP/1.1, h2c, TLS+ALPN h2), store watcher, token refresher, prober.

One trio run, one nursery (design §1). :func:`serve` is the structured-concurrency entry point
(``await nursery.start(serve, settings)`` reports the bound URLs, as tests use it);
:func:`codexgw.cli.serve.run` is the blocking CLI entry that adds signal handling, logging and the
shutdown watchdog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from codexgw.config import Settings

log = logging.getLogger("codexgw.serve")


@dataclass
class Running:
    """What :func:`serve` reports once listening: the bound URLs and the gateway state."""

    urls: list[str]
    gateway: object


def hypercorn_config(settings: Settings) -> object:
    """The hypercorn config: bind, TLS with ALPN ``h2``/``http/1.1``, graceful shutdown, quiet logs."""
    from hypercorn.config import Config

    config = Config()
    host = (
        f"[{settings.host}]" if ":" in settings.host and not settings.host.startswith("[") else settings.host
    )
    config.bind = [f"{host}:{settings.port}"]
    config.graceful_timeout = settings.graceful_timeout_s
    config.accesslog = None
    config.errorlog = logging.getLogger("codexgw.hypercorn")
    config.keep_alive_timeout = 75
    config.h2_max_concurrent_streams = 1000
    config.include_server_header = False
    config.backlog = 2048  # hypercorn's 100 overflows when thousands of clients connect at once
    if settings.certfile:
        config.certfile = settings.certfile
        config.keyfile = settings.keyfile
        config.alpn_protocols = ["h2", "http/1.1"]
    return config


async def serve(
    settings: Settings,
    *,
    shutdown: trio.Event | None = None,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until ``shutdown`` is set (or the task is cancelled).

    Args:
        settings: what to serve and where.
        shutdown: set it to stop accepting, drain open requests for ``graceful_timeout_s``, and return.
        clock: epoch-seconds clock for token expiry and cooldowns (tests inject one).
        task_status: receives a :class:`Running` once the sockets are bound.

    Raises:
        OSError: the address is in use or cannot be bound (unwrapped from hypercorn's exception group).
    """
    import httpx
    import hypercorn.trio

    from codexgw.api.app import create_app
    from codexgw.client.sender import UpstreamSender
    from codexgw.client.transport import UPSTREAM_LIMITS, ShardedTransport, new_http_client
    from codexgw.store.pool_settings import set_strategy
    from codexgw.store.sqlite import Store
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.prober import Prober

    shutdown = trio.Event() if shutdown is None else shutdown
    store = await trio.to_thread.run_sync(Store.open, settings.store_dir)
    if settings.strategy:  # the flag wins over the stored choice, and becomes it
        await trio.to_thread.run_sync(set_strategy, store, settings.strategy)
    sharded = ShardedTransport(limits=UPSTREAM_LIMITS, verify=httpx.create_ssl_context())
    async with new_http_client(sharded=sharded) as http:
        gw = Gateway(settings, store, http, clock=clock, sender=UpstreamSender(http, sharded))
        app = create_app(gw, reasoning_mode=settings.reasoning_mode)
        config = hypercorn_config(settings)
        try:
            async with trio.open_nursery() as nursery:
                gw.nursery = nursery
                await nursery.start(gw.watch_store)
                nursery.start_soon(lambda: gw.refresh_loop(check_every_s=settings.refresh_check_s))
                gw.prober = Prober(gw)
                if settings.probe_interval_s > 0:
                    nursery.start_soon(gw.prober.run)

                async def http_server(*, task_status: trio.TaskStatus[list[str]]) -> None:
                    await hypercorn.trio.serve(
                        app, config, shutdown_trigger=shutdown.wait, task_status=task_status
                    )
                    nursery.cancel_scope.cancel()

                urls = await nursery.start(http_server)
                log.info("codexgw serving on %s (%d accounts)", ", ".join(urls), len(gw.accounts))
                task_status.started(Running(urls=urls, gateway=gw))
        except* OSError as group:
            raise group.exceptions[0] from None


__all__ = ["Running", "hypercorn_config", "serve"]
