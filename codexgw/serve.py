"""The ``serve`` nursery: hypercorn (HTTP/1.1, h2c, TLS+ALPN h2), store watcher, token refresher, prober.

One trio run, one nursery (design §1). :func:`serve` is the structured-concurrency entry point
(``await nursery.start(serve, settings)`` reports the bound URLs, as tests use it); :func:`run` is
the blocking CLI entry that adds signal handling, logging and the shutdown watchdog.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from codexgw.config import Settings

if TYPE_CHECKING:
    from codexgw.upstream.gateway import Gateway

log = logging.getLogger("codexgw.serve")


@dataclass
class Running:
    """What :func:`serve` reports once listening: the bound URLs and the gateway state.

    Attributes:
        urls: the bound URLs (``http://127.0.0.1:PORT`` …).
        gateway: the running :class:`~codexgw.upstream.gateway.Gateway`.
    """

    urls: list[str]
    gateway: Gateway


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

    The composition root: opens the stores, builds every part of the
    :class:`~codexgw.upstream.gateway.Gateway` inside the serve nursery, and starts its background
    tasks (store watcher, token refresher, quota prober) and hypercorn.

    Args:
        settings: what to serve and where.
        shutdown: set it to stop accepting, drain open requests for ``graceful_timeout_s``, and return.
        clock: epoch-seconds clock for token expiry and cooldowns (tests inject one).
        task_status: receives a :class:`Running` once the sockets are bound.

    Raises:
        OSError: the address is in use or cannot be bound (unwrapped from hypercorn's exception group).
        StoreError: the account store or ``responses.db`` cannot be opened.
    """
    import httpx
    import hypercorn.trio

    from codexgw.api.app import create_app
    from codexgw.auth.refresh import Refresher
    from codexgw.client.sender import UpstreamSender
    from codexgw.client.transport import UPSTREAM_LIMITS, ShardedTransport, new_http_client
    from codexgw.metrics import Metrics
    from codexgw.pool.scheduler import Pool
    from codexgw.store.pool_settings import set_strategy
    from codexgw.store.responses import ResponseStore
    from codexgw.store.sqlite import Store
    from codexgw.upstream.accounts import AccountState, pool_rows
    from codexgw.upstream.catalog import Catalog
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.prober import Prober

    shutdown = trio.Event() if shutdown is None else shutdown
    store = await trio.to_thread.run_sync(Store.open, settings.store_dir)
    if settings.strategy:  # the flag wins over the stored choice, and becomes it
        await trio.to_thread.run_sync(set_strategy, store, settings.strategy)
    responses = await trio.to_thread.run_sync(ResponseStore.open, settings.store_dir)
    pool = Pool()
    metrics = Metrics(pool_rows=lambda: pool_rows(pool, clock()))
    sharded = ShardedTransport(limits=UPSTREAM_LIMITS, verify=httpx.create_ssl_context())
    async with new_http_client(sharded=sharded) as http:
        refresher = Refresher(store, http, auth_url=settings.auth_url, clock=clock)
        config = hypercorn_config(settings)
        try:
            async with trio.open_nursery() as nursery:
                accounts = AccountState(
                    store,
                    pool,
                    refresher,
                    metrics,
                    nursery,
                    poll_s=settings.accounts_poll_s,
                    refresh_margin_s=settings.refresh_margin_s,
                    clock=clock,
                )
                prober = Prober(
                    accounts,
                    http,
                    metrics,
                    upstream_url=settings.upstream_url,
                    interval_s=settings.probe_interval_s,
                    clock=clock,
                )
                catalog = Catalog(
                    accounts,
                    http,
                    upstream_url=settings.upstream_url,
                    ttl_s=settings.models_ttl_s,
                    clock=clock,
                )
                gw = Gateway(
                    settings,
                    http=http,
                    sender=UpstreamSender(http, sharded),
                    account_state=accounts,
                    metrics=metrics,
                    prober=prober,
                    catalog=catalog,
                    responses=responses,
                    nursery=nursery,
                    clock=clock,
                )
                app = create_app(gw, reasoning_mode=settings.reasoning_mode)
                await nursery.start(accounts.watch_store)
                nursery.start_soon(lambda: accounts.refresh_loop(check_every_s=settings.refresh_check_s))
                if settings.probe_interval_s > 0:
                    nursery.start_soon(prober.run)

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


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM (blocking; the ``codexgw serve`` command).

    Raises:
        OSError: the address cannot be bound.
    """
    _setup_logging(settings.log_format)
    _raise_nofile_limit()
    import hypercorn.trio  # noqa: F401  (what serve() imports, loaded first so that _tune_gc freezes it)


    _tune_gc()
    trio.run(_run_with_signals, settings)


async def _run_with_signals(settings: Settings) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:

        async def on_signal() -> None:
            # A backgrounded process inherits SIGINT ignored; listen explicitly (design §5).
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info(
                        "received %s; draining for %.0f s",
                        signal.Signals(signum).name,
                        settings.graceful_timeout_s,
                    )
                    shutdown.set()
                    # hypercorn's shielded sends can block on a client that stopped reading (design §5).
                    await trio.sleep(settings.graceful_timeout_s + 2.0)
                    log.warning("shutdown did not finish in time; exiting")
                    os._exit(1)

        nursery.start_soon(on_signal)
        await serve(settings, shutdown=shutdown)
        nursery.cancel_scope.cancel()


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry)


def _setup_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Neither format shows the thread, process or source line, and every request logs a line: skip
    # collecting them (the logging HOWTO's "Optimization" section lists exactly these switches).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]


GC_THRESHOLD = (10_000, 10, 10)
"""Allocations between young collections, and young/middle collections between older ones."""


def _tune_gc() -> None:
    """Freeze what start-up allocated and collect the young generation less often.

    Every full collection walks every tracked object, and after the imports (Quart, httpx, click,
    rich...) those are mostly immortal. ``gc.freeze()`` moves them out of the collector's sight
    (the CPython docs recommend it for exactly this). With the default thresholds (700, 10, 10), a
    streamed request allocates enough for about one young collection each, and each walks every
    in-flight stream's objects. Bench, Responses at concurrency 64 (issue 7): time in the collector
    went from 1.1 s to 0.35 s of 10.6 s of server CPU; memory grows by at most ``GC_THRESHOLD[0]``
    objects of cyclic garbage between collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _raise_nofile_limit() -> None:
    """Raise RLIMIT_NOFILE to the hard limit: 2 fds per proxied stream (design §5)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


__all__ = ["Running", "hypercorn_config", "run", "serve"]
