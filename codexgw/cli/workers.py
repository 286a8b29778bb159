"""``serve --workers N``: a supervisor process and N worker processes serving one port.

The supervisor does what must happen once (the API-key rule and the store's migrations already ran
in the command; here: reserve the port, open ``responses.db`` once so its switch to WAL never races,
draw the one-time setup token), then starts N workers. Each worker is a full ``serve`` process
(:func:`codexgw.cli.serve.run`) that binds the same port with ``SO_REUSEPORT``, so the kernel
spreads connections over them; they behave as one gateway through the store (``upstream/pool_sync``).

Lifetimes:

* SIGTERM or SIGINT to the supervisor is forwarded once to every worker (each drains as a single
  ``serve`` does); a second signal is forwarded too (the workers cut at once). The supervisor waits
  for them :func:`stop_wait_s`, kills what is left, and exits.
* A worker that dies is started again after a backoff (0.5 s doubling to 30 s, back to 0.5 s after
  a worker ran 60 s), with a log line each time.
* Workers never outlive the supervisor: each asks the kernel for SIGTERM when its parent dies
  (``PR_SET_PDEATHSIG``, Linux) and also watches its stdin, a pipe only the supervisor holds: EOF
  means the supervisor is gone, and the worker drains and exits (any OS).

Workers run in their own session (``start_new_session``), so a terminal's Ctrl-C reaches the
supervisor alone, which forwards it once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from codexgw.config import Settings

__all__ = ["STOP_MARGIN_S", "supervise", "worker_setup"]

log = logging.getLogger("codexgw.supervisor")

STOP_MARGIN_S = 5.0
"""Seconds the supervisor waits past a worker's own stop time (:func:`stop_wait_s`) before it kills it."""
READY_TIMEOUT_S = 60.0
"""Seconds a worker may take to listen at the first start before the supervisor gives up."""
BACKOFF_S = (0.5, 30.0)
"""First and largest pause before a crashed worker is started again, seconds (doubling)."""
STABLE_S = 60.0
"""A worker that ran this long resets the backoff, seconds."""

_BOOT = (
    "import json,sys;sys.path[:0]=json.loads(sys.stdin.buffer.readline());"
    "from codexgw.cli.serve import worker_main;worker_main()"
)
"""A worker's ``python -c``: the supervisor's import path comes first on its stdin (a zipapp's too)."""


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff_s: float = BACKOFF_S[0]
    restart_at: float | None = None


def stop_wait_s(settings: Settings) -> float:
    """How long the supervisor waits for its workers to stop, seconds: the drain's grace (``--grace``,
    when this codexgw has one), hypercorn's close, and :data:`STOP_MARGIN_S`."""
    return float(getattr(settings, "grace_s", 0.0)) + settings.graceful_timeout_s + STOP_MARGIN_S


def reserve_port(settings: Settings) -> socket.socket:
    """Bind (not listen) ``settings.host:port`` with ``SO_REUSEPORT``, so the port is ours while the
    workers come and go, and port 0 becomes a real one. The workers bind it too.

    Raises:
        OSError: the port is in use (by a process without ``SO_REUSEPORT``) or cannot be bound.
    """
    host = settings.host.strip("[]")
    infos = socket.getaddrinfo(host, settings.port, type=socket.SOCK_STREAM)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def supervise(settings: Settings) -> int:
    """Run N workers until SIGTERM/SIGINT (blocking); returns the exit status.

    Raises:
        OSError: the port cannot be reserved (the caller words it, :mod:`codexgw.cli.startup`).
        StoreError: ``responses.db`` cannot be opened.
    """
    from codexgw.store.responses import ResponseStore
    from codexgw.store.shared_limits import create_table
    from codexgw.store.sqlite import Store
    from codexgw.store.users import count_users

    reserve = reserve_port(settings)
    port = reserve.getsockname()[1]
    store = Store.open(settings.store_dir, passphrase=settings.store_passphrase)
    ResponseStore.open(settings.store_dir, opener=store.opener)  # the switch to WAL, once
    create_table(settings.store_dir)  # the rate-limit counters the workers share
    token = secrets.token_urlsafe(24) if count_users(store) == 0 else None
    base = replace(settings, port=port)
    workers = [_Worker(i) for i in range(settings.workers)]
    stopping: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ready_r, ready_w = os.pipe()
    try:
        for w in workers:
            _start(w, base, token, ready_w)
        ready = _wait_ready(workers, ready_r, stopping)
        if stopping:  # a signal while the workers started: they have it too
            _wait_stopped(workers, stop_wait_s(settings))
            return 0
        if not ready:
            log.error("a worker could not start; stopping the others")
            on_signal(signal.SIGTERM, None)
            _wait_stopped(workers, stop_wait_s(settings))
            return 2
        scheme = "https" if settings.certfile else "http"
        host = f"[{base.host}]" if ":" in base.host and not base.host.startswith("[") else base.host
        log.info(
            "supervisor pid %d: %d workers serving on %s://%s:%d (pids %s)",
            os.getpid(),
            len(workers),
            scheme,
            host,
            port,
            ", ".join(str(w.proc.pid) for w in workers if w.proc),
        )
        if token is not None:
            from codexgw.serve import print_setup_token

            print_setup_token(token, [f"{scheme}://{host}:{port}"], dashboard=settings.dashboard)
        while not stopping:
            _keep_alive(workers, base, token, ready_w)
            time.sleep(0.1)
        log.info(
            "received %s; stopping %d workers (waiting up to %.0f s)",
            signal.Signals(stopping[0]).name,
            len(workers),
            stop_wait_s(settings),
        )
        _wait_stopped(workers, stop_wait_s(settings))
        return 0
    finally:
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.kill()
        os.close(ready_r)
        os.close(ready_w)
        reserve.close()


def _start(w: _Worker, base: Settings, token: str | None, ready_w: int) -> None:
    """Start worker ``w``: its settings go down its stdin, which stays open as the liveness pipe."""
    settings = replace(base, worker_index=w.index)
    payload = pickle.dumps({"settings": settings, "setup_token": token, "ready_fd": ready_w})
    path = json.dumps([p for p in sys.path if isinstance(p, str)]).encode() + b"\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", _BOOT, f"codexgw-worker-{w.index}"],
        stdin=subprocess.PIPE,
        pass_fds=(ready_w,),
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(path + len(payload).to_bytes(8, "big") + payload)
    proc.stdin.flush()
    w.proc, w.started_at, w.restart_at = proc, time.monotonic(), None


def _wait_ready(workers: list[_Worker], ready_r: int, stopping: list[int]) -> bool:
    """Wait until every worker wrote its ready byte; False when one exited first (or too slow)."""
    import select

    ready = 0
    deadline = time.monotonic() + READY_TIMEOUT_S
    while ready < len(workers):
        if stopping or time.monotonic() > deadline:
            return False
        for w in workers:
            if w.proc is not None and w.proc.poll() is not None:
                return False
        readable, _, _ = select.select([ready_r], [], [], 0.1)
        if readable:
            ready += len(os.read(ready_r, 64))
    return True


def _keep_alive(workers: list[_Worker], base: Settings, token: str | None, ready_w: int) -> None:
    """Start again, after its backoff, every worker that exited."""
    now = time.monotonic()
    for w in workers:
        if w.proc is not None and w.restart_at is None:
            code = w.proc.poll()
            if code is None:
                continue
            ran = now - w.started_at
            if ran >= STABLE_S:
                w.backoff_s = BACKOFF_S[0]
            log.warning(
                "worker %d (pid %d) exited with %s after %.0f s; starting it again in %.1f s",
                w.index,
                w.proc.pid,
                f"signal {-code}" if code < 0 else f"status {code}",
                ran,
                w.backoff_s,
            )
            w.restart_at = now + w.backoff_s
            w.backoff_s = min(BACKOFF_S[1], w.backoff_s * 2)
        if w.restart_at is not None and now >= w.restart_at:
            _start(w, base, token, ready_w)
            log.info("worker %d started again (pid %d)", w.index, w.proc.pid if w.proc else 0)


def _wait_stopped(workers: list[_Worker], timeout_s: float) -> None:
    """Wait for every worker to exit, at most ``timeout_s``; kill the rest (logged)."""
    deadline = time.monotonic() + timeout_s
    for w in workers:
        if w.proc is None:
            continue
        try:
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("worker %d (pid %d) did not stop in time; killing it", w.index, w.proc.pid)
            w.proc.kill()
            w.proc.wait()


# ---------------------------------------------------------------------------------------- worker


def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the supervisor dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere the
    stdin watch alone does it."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1


async def _watch_supervisor(fd: int) -> None:
    """Wait on the liveness pipe (a task in the worker's nursery); EOF: the supervisor is gone,
    drain as on SIGTERM."""
    import trio

    os.set_blocking(fd, False)
    while True:
        await trio.lowlevel.wait_readable(fd)
        try:
            data = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        if not data:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def worker_setup() -> tuple[Settings, Callable[..., Awaitable[None]]]:
    """A worker process's start (:func:`codexgw.cli.serve.worker_main`): die with the supervisor,
    read the settings from stdin, watch stdin for EOF. Returns the settings and the serve function
    that writes the ready byte once listening."""
    supervisor = os.getppid()
    _die_with_parent()
    stdin = sys.stdin.buffer
    size = int.from_bytes(stdin.read(8), "big")
    payload = pickle.loads(stdin.read(size))
    if os.getppid() != supervisor:  # it died before the prctl took effect
        sys.exit(0)
    settings: Settings = payload["settings"]
    ready_fd: int = payload["ready_fd"]
    liveness = stdin.fileno()

    async def serve_and_report(settings: Settings, **kw: Any) -> None:
        import trio

        from codexgw.serve import serve

        async with trio.open_nursery() as outer:
            outer.start_soon(_watch_supervisor, liveness)
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    lambda task_status: serve(
                        settings, task_status=task_status, setup_token=payload["setup_token"], **kw
                    )
                )
                os.write(ready_fd, b"R")
                os.close(ready_fd)
            outer.cancel_scope.cancel()  # served to the end: stop watching

    return settings, serve_and_report
