"""``codexgw serve``: the command, and the blocking process around the server (:func:`run`).

:func:`run` is what a process needs around :func:`codexgw.serve.serve` (the composition root):
logging (text or JSON lines on stderr), the open-files limit, the garbage collector's tuning, and
SIGINT/SIGTERM handling with the shutdown watchdog. The server stack (trio, hypercorn, Quart, httpx)
is imported only once the command runs, so ``codexgw --help`` stays fast.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from codexgw.cli.common import open_store
from codexgw.cli.options import flags_of, serve_options
from codexgw.cli.settings import load_settings, settings_from
from codexgw.config import Settings, api_key_problem

__all__ = ["GC_THRESHOLD", "run", "serve", "worker_main"]

log = logging.getLogger("codexgw.serve")


@click.command("serve")
@serve_options
@click.pass_context
def serve(ctx: click.Context, **flags: Any) -> None:
    """Run the OpenAI-compatible gateway.

    Every option can also come from its environment variable or from the [serve] table of the
    config file (flags > environment > file > defaults; `codexgw config show` tells which won).
    """
    from codexgw.cli.common import CliError
    from codexgw.cli.store_key import StoreKeyError, passphrase_from_environment

    resolved, _file = load_settings(ctx.obj, flags_of(flags))
    try:
        passphrase = passphrase_from_environment()
    except StoreKeyError as e:
        raise CliError(str(e)) from None
    settings = settings_from(resolved, store_dir=ctx.obj["store_dir"], store_passphrase=passphrase)
    problem = api_key_problem(settings.api_key) if settings.api_key is not None else None
    if problem is not None:
        raise click.UsageError(f"{problem}; it came from {_key_source(resolved)}")
    if not settings.is_loopback and not settings.api_key:
        raise click.UsageError(
            f"refusing to listen on {settings.host} without an API key; pass --api-key "
            "(or set CODEXGW_API_KEY, or api_key in the config file's [serve] table)"
        )
    open_store(settings.store_dir)  # a missing store, or an encrypted one without its key: one line
    run(settings)


def _key_source(resolved: Any) -> str:
    source = resolved.sources.get("serve.api_key", "")
    return {"flag": "--api-key", "env": "CODEXGW_API_KEY"}.get(
        source.split(" ")[0], source.removeprefix("file ")
    )


def run(settings: Settings, *, serve_gateway: Callable[..., Awaitable[None]] | None = None) -> None:
    """Serve until SIGINT/SIGTERM (blocking; the ``codexgw serve`` command). With
    ``settings.workers > 1`` (and not a worker itself) this process supervises the workers
    (:mod:`codexgw.cli.workers`); ``serve_gateway`` replaces :func:`codexgw.serve.serve` (a worker's).

    Raises:
        StartupError: the server could not start (busy port, address not here, TLS files …), one
            line saying what to change (:mod:`codexgw.cli.startup`).
    """
    _setup_logging(settings.log_format, settings.log_level, settings.worker_index)
    _raise_nofile_limit()
    if settings.workers > 1 and settings.worker_index is None:
        _supervise(settings)
        return
    import trio

    import codexgw.api.server  # noqa: F401  (hypercorn, what serve() imports, loaded first so that _tune_gc freezes it)
    from codexgw.cli.startup import StartupError, startup_failure

    if serve_gateway is None:
        from codexgw.serve import serve as serve_gateway

    _tune_gc()
    try:
        trio.run(_run_with_signals, settings, serve_gateway)
    except BaseException as exc:
        message = startup_failure(exc, settings)
        if message is None:
            raise
        raise StartupError(message) from None


def worker_main() -> None:
    """A ``serve --workers`` worker process (started by :mod:`codexgw.cli.workers`): serve with the
    settings its supervisor sent; exit 2 with one line when it cannot start."""
    from codexgw.cli.common import CliError
    from codexgw.cli.workers import worker_setup

    settings, serve_gateway = worker_setup()
    try:
        run(settings, serve_gateway=serve_gateway)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)


def _supervise(settings: Settings) -> None:
    """``serve --workers N``: the supervisor (:func:`codexgw.cli.workers.supervise`)."""
    from codexgw.cli.startup import StartupError, startup_failure
    from codexgw.cli.workers import supervise

    try:
        code = supervise(settings)
    except OSError as exc:
        message = startup_failure(exc, settings)
        if message is None:
            raise
        raise StartupError(message) from None
    if code:
        sys.exit(code)


async def _run_with_signals(settings: Settings, serve_gateway: Callable[..., Awaitable[None]]) -> None:
    """Serve, draining on the first SIGINT/SIGTERM and cutting at once on the second
    (:mod:`codexgw.upstream.drain`); a watchdog exits the process if the stop hangs anyway."""
    import trio

    from codexgw.upstream.drain import Drain

    shutdown = trio.Event()
    drain = Drain(grace_s=settings.grace_s)
    async with trio.open_nursery() as nursery:
        watchdog = trio.CancelScope()

        async def exit_after(seconds: float, scope: trio.CancelScope) -> None:
            # hypercorn's shielded sends can block on a client that stopped reading (design §5).
            with scope:
                await trio.sleep(seconds)
                log.warning("shutdown did not finish in time; exiting")
                os._exit(1)

        async def on_signal() -> None:
            nonlocal watchdog
            # A backgrounded process inherits SIGINT ignored; listen explicitly (design §5).
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    close_s = drain.tail_s + settings.graceful_timeout_s + 2.0
                    watchdog.cancel()
                    watchdog = trio.CancelScope()
                    if drain.begin():
                        log.info(
                            "received %s; draining: %d open requests may finish within %.0f s, new ones "
                            "get 503 draining (a second signal cuts at once)",
                            name,
                            drain.open,
                            settings.grace_s,
                        )
                        nursery.start_soon(exit_after, settings.grace_s + close_s, watchdog)
                    else:
                        log.info("received %s again; cutting %d open requests now", name, drain.open)
                        drain.cut_now()
                        nursery.start_soon(exit_after, close_s, watchdog)

        nursery.start_soon(on_signal)
        await serve_gateway(settings, shutdown=shutdown, drain=drain)
        nursery.cancel_scope.cancel()


class _JsonFormatter(logging.Formatter):
    """One JSON object per log line: ``ts`` (epoch s), ``level``, ``logger``, ``message``, then the
    record's ``fields`` (the access log's, for instance)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry)


def _setup_logging(log_format: str, log_level: str = "info", worker: int | None = None) -> None:
    """Log lines on stderr; a worker's (``serve --workers``) name it: ``[w1]`` / ``"worker": 1``."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
        if worker is not None:
            handler.addFilter(lambda record: _tag_worker(record, worker))
    else:
        tag = "" if worker is None else f"[w{worker}]"
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{tag}: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, log_level.upper(), logging.INFO))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Neither format shows the thread, process or source line, and every request logs a line: skip
    # collecting them (the logging HOWTO's "Optimization" section lists exactly these switches).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]


def _tag_worker(record: logging.LogRecord, worker: int) -> bool:
    record.fields = {**getattr(record, "fields", {}), "worker": worker}
    return True


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
