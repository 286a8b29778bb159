"""The ``serve`` nursery: hypercorn (HTTP/1.1, h2c, TLS+ALPN h2), store watcher, token refresher, prober,
and the notifier (when ``[notify] url`` is set).

One trio run, one nursery (design §1). :func:`serve` is the structured-concurrency entry point
(``await nursery.start(serve, settings)`` reports the bound URLs, as tests use it);
:func:`codexgw.cli.serve.run` is the blocking CLI entry that adds signal handling, logging and the
shutdown watchdog.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from codexgw.config import Settings

if TYPE_CHECKING:
    from codexgw.metrics import Metrics
    from codexgw.policy.limits import Limiter
    from codexgw.upstream.drain import Drain
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.teams import Teams
    from codexgw.upstream.workers_view import WorkersView

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
    """The hypercorn config: bind, TLS with ALPN ``h2``/``http/1.1``, graceful shutdown, quiet logs,
    and the WebSocket limits (message size ``max_body_bytes``, a ping every ``heartbeat_s``)."""
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
    config.websocket_max_message_size = settings.max_body_bytes  # larger: close 1009, message too big
    config.websocket_ping_interval = settings.heartbeat_s  # proxies on the way see traffic
    if settings.worker_index is not None:
        config.workers = settings.workers  # hypercorn sets SO_REUSEPORT when workers > 1
        warnings.filterwarnings("ignore", "The config `workers` has no affect", Warning)  # we are one of them
    if settings.certfile:
        config.certfile = settings.certfile
        config.keyfile = settings.keyfile
        config.alpn_protocols = ["h2", "http/1.1"]
    return config


def startup_line(settings: Settings, gw: Gateway, urls: list[str]) -> str:
    """``codexgw 0.1.0 serving on http://127.0.0.1:8080 · upstream … · strategy round-robin · API key
    required · 3 accounts, 2 usable``: what an operator checks first (no secrets)."""
    from codexgw import __version__

    accounts = list(gw.accounts.values())
    usable = sum(1 for a in accounts if gw.pool.is_usable(a.id, now=gw.clock()))
    key = "API key required" if settings.api_key else "no API key (loopback only)"
    return (
        f"codexgw {__version__} serving on {', '.join(urls)} · upstream {settings.upstream_url} · "
        f"strategy {gw.pool.strategy_name} · {key} · {len(accounts)} account"
        f"{'' if len(accounts) == 1 else 's'}, {usable} usable"
    )


async def serve(
    settings: Settings,
    *,
    shutdown: trio.Event | None = None,
    drain: Drain | None = None,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
    setup_token: str | None = None,
) -> None:
    """Run the gateway until ``shutdown`` is set (or the task is cancelled).

    The composition root: opens the stores, builds every part of the
    :class:`~codexgw.upstream.gateway.Gateway` inside the serve nursery, and starts its background
    tasks (store watcher, token refresher, quota prober, notifier) and hypercorn.

    Args:
        settings: what to serve and where.
        shutdown: set it to stop accepting, let connections close for ``graceful_timeout_s``, and return.
        drain: the process's drain (:mod:`codexgw.upstream.drain`): once begun, new requests get
            503 ``draining``, open ones run on for ``settings.grace_s``, the rest is cut in-band,
            then ``shutdown`` is set. A new one (never begun) when not given.
        clock: epoch-seconds clock for token expiry and cooldowns (tests inject one).
        task_status: receives a :class:`Running` once the sockets are bound.
        setup_token: a worker's (``serve --workers``): the one-time setup token its supervisor drew
            and printed; a single ``serve`` draws and prints its own.

    Raises:
        OSError: the address is in use or cannot be bound (unwrapped from hypercorn's exception group).
        StoreError: the account store or ``responses.db`` cannot be opened, or the store is
            encrypted and ``settings.store_passphrase`` is missing or wrong.
    """
    import httpx

    from codexgw.api.app import create_app
    from codexgw.api.server import serve_http
    from codexgw.auth.refresh import Refresher
    from codexgw.client.sender import UpstreamSender
    from codexgw.client.transport import UPSTREAM_LIMITS, ShardedTransport, new_http_client
    from codexgw.metrics import Metrics
    from codexgw.pool.scheduler import Pool
    from codexgw.store.pool_settings import set_strategy
    from codexgw.store.responses import ResponseStore
    from codexgw.store.settings import read_settings
    from codexgw.store.sqlite import Store
    from codexgw.upstream.accounts import AccountState, nothing_to_serve, pool_rows
    from codexgw.upstream.admin import account_shapes
    from codexgw.upstream.catalog import Catalog
    from codexgw.upstream.drain import Drain
    from codexgw.upstream.events import EventHub
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.manage import apply_stored_settings
    from codexgw.upstream.notifier import Notifier
    from codexgw.upstream.pool_sync import PoolStateSync
    from codexgw.upstream.prober import Prober
    from codexgw.upstream.teams import Teams

    shutdown = trio.Event() if shutdown is None else shutdown
    drain = Drain(grace_s=settings.grace_s) if drain is None else drain
    store = await trio.to_thread.run_sync(
        lambda: Store.open(settings.store_dir, passphrase=settings.store_passphrase)
    )
    if settings.strategy:  # the flag wins over the stored choice, and becomes it
        await trio.to_thread.run_sync(set_strategy, store, settings.strategy)
    for name, value in (await trio.to_thread.run_sync(read_settings, store)).items():
        setattr(settings, name, value)  # set through the admin API: wins over the flags
    responses = await trio.to_thread.run_sync(
        lambda: ResponseStore.open(settings.store_dir, opener=store.opener)
    )
    pool = Pool()
    metrics = Metrics(pool_rows=lambda: pool_rows(pool, clock()))
    sharded = ShardedTransport(limits=UPSTREAM_LIMITS, verify=httpx.create_ssl_context())
    teams: Teams | None = None
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
                events = EventHub(nursery)
                teams = Teams(
                    store,
                    metrics=metrics,
                    events=events,
                    master_key=settings.api_key,
                    flush_s=settings.usage_flush_s,
                    clock=clock,
                    limiter=_shared_limiter(settings),
                )
                accounts.followers.append(teams.reload)
                gw = Gateway(
                    settings,
                    http=http,
                    sender=UpstreamSender(http, sharded),
                    account_state=accounts,
                    metrics=metrics,
                    prober=prober,
                    catalog=catalog,
                    responses=responses,
                    teams=teams,
                    nursery=nursery,
                    clock=clock,
                    workers_view=_workers_view(settings, metrics, clock),
                    drain=drain,
                )
                if gw.workers_view is not None:
                    nursery.start_soon(gw.workers_view.run)
                events.account_rows = lambda: account_shapes(gw)
                metrics.model_names = lambda: catalog.metric_names(gw.settings.model_aliases)  # issue 16
                accounts.followers.append(lambda _accounts: apply_stored_settings(gw))
                app = create_app(gw, blueprints=_dashboard(settings))
                nursery.start_soon(drain.run, shutdown.set)  # idle until the drain begins
                await nursery.start(accounts.watch_store)
                await nursery.start(PoolStateSync(store, pool, clock=clock).run)  # after the accounts
                await nursery.start(teams.flush_loop)
                nursery.start_soon(lambda: accounts.refresh_loop(check_every_s=settings.refresh_check_s))
                nursery.start_soon(prober.run)  # idle while probe_interval_s is 0 (settable at runtime)
                if settings.notify is not None:
                    nursery.start_soon(Notifier(settings.notify, accounts, http, clock=clock).run)

                async def http_server(*, task_status: trio.TaskStatus[list[str]]) -> None:
                    await serve_http(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
                    nursery.cancel_scope.cancel()

                urls = await nursery.start(http_server)
                log.info("%s", startup_line(settings, gw, urls))
                if not any(a.eligible for a in gw.accounts.values()):
                    log.warning("%s", nothing_to_serve(gw.accounts.values()))
                if settings.worker_index is None:
                    token = teams.setup_token()
                    if token is not None:
                        print_setup_token(token, urls, dashboard=settings.dashboard)
                elif setup_token is not None:
                    teams.adopt_setup_token(setup_token)
                task_status.started(Running(urls=urls, gateway=gw))
        except* OSError as group:
            raise group.exceptions[0] from None
        finally:
            if teams is not None:
                with trio.CancelScope(shield=True):  # the counters of the last seconds (drained requests)
                    await teams.flush()


def print_setup_token(token: str, urls: list[str], *, dashboard: bool = True) -> None:
    """Print the one-time token for ``POST /api/setup`` (15 minutes) on stderr, outside the logs (it
    is a secret meant for the person starting the server); with the dashboard, as the link to its
    setup page."""
    url = urls[0] if urls else ""
    if dashboard:
        print(
            "codexgw: no user exists yet. Within 15 minutes, create the first admin at this one-time link\n"
            f"(or POST {url}/api/setup with its token, or run `codexgw users add NAME --role admin`):\n"
            f"  {url}/dashboard/setup?token={token}",
            file=sys.stderr,
            flush=True,
        )
        return
    print(
        "codexgw: no user exists yet. Within 15 minutes, create the first admin with this one-time\n"
        f"setup token (POST {url}/api/setup), or run `codexgw users add NAME --role admin`:\n"
        f"  {token}",
        file=sys.stderr,
        flush=True,
    )


def _workers_view(settings: Settings, metrics: Metrics, clock: Callable[[], float]) -> WorkersView | None:
    """A worker's publisher of its metrics and summary (``serve --workers``); ``None`` otherwise."""
    if settings.worker_index is None:
        return None
    from codexgw.upstream.workers_view import WorkersView, summary_of

    started_at = clock()
    return WorkersView(
        settings.store_dir / "workers",
        settings.worker_index,
        metrics,
        lambda: summary_of(metrics, started_at),
        clock=clock,
    )


def _shared_limiter(settings: Settings) -> Limiter | None:
    """A worker's (``serve --workers``) rate-limit counters, shared with the other workers; ``None``
    (the in-memory ones) for a single ``serve``."""
    if settings.worker_index is None:
        return None
    from codexgw.store.shared_limits import SharedLimiter

    return SharedLimiter.open(settings.store_dir, settings.worker_index)


def _dashboard(settings: Settings) -> list[object]:
    """The dashboard's blueprint, unless ``serve --no-dashboard``."""
    if not settings.dashboard:
        return []
    from codexgw.dashboard.pages import bp

    return [bp]


__all__ = ["Running", "hypercorn_config", "serve", "startup_line"]
