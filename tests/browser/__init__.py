"""Browser tests of the dashboard: Debian's Chromium driven by Playwright's sync API.

Playwright's sync objects belong to the thread that made them, and the trio loop (with the server
under test in its nursery) must keep running while the browser waits on it. So one single-worker
executor owns Playwright for the whole session and trio code hands it plain callables:
``await browser.run(fn)`` runs ``fn`` there (see research/browser.md of the teams work, and
:mod:`tests.browser.conftest` for the fixtures). Never call a Playwright object on the trio thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import trio

T = TypeVar("T")

CHROMIUM_PATH = "/usr/lib/chromium/chromium"
"""Debian's real binary (``/usr/bin/chromium`` is a sh wrapper adding flags and stderr noise)."""

CHROMIUM = CHROMIUM_PATH if os.access(CHROMIUM_PATH, os.X_OK) else None

FLAGS = [
    "--headless",
    "--no-sandbox",  # root in CI (Playwright adds it too)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # No DNS at all: every name but loopback fails at once (else it looks up accounts.google.com).
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]


class BrowserThread:
    """Owns ``sync_playwright()`` and one Chromium on a single thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._pw: Any = None
        self.browser: Any = None

    def start(self, executable_path: str | None = CHROMIUM) -> None:
        """Start the Playwright driver and launch Chromium (blocking; under a second when quiet)."""

        def launch() -> None:
            from playwright.sync_api import sync_playwright

            self._pw = sync_playwright().start()
            self.browser = self._pw.chromium.launch(
                executable_path=executable_path, headless=True, args=FLAGS, timeout=30_000
            )

        self._pool.submit(launch).result()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking: run ``fn(*args)`` on the Playwright thread (for sync fixtures)."""
        return self._pool.submit(fn, *args).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the Playwright thread while trio goes on; Playwright's own timeouts
        bound the wait (a step in flight cannot be cancelled)."""
        future = self._pool.submit(fn, *args)
        return await trio.to_thread.run_sync(future.result)

    def stop(self) -> None:
        """Close the browser and the driver, then the thread."""

        def close() -> None:
            if self.browser is not None:
                self.browser.close()
            if self._pw is not None:
                self._pw.stop()

        try:
            self._pool.submit(close).result(timeout=30)
        finally:
            self._pool.shutdown(wait=True)
