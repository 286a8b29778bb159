"""Fixtures of the browser tests: one Chromium per session, a fresh context per test, screenshots.

Without Debian's chromium the tests skip, except under ``CI`` (where a skip would hide a missing
install step in ``.ci/run``): there they fail.

Screenshots go to ``$CODEXGW_SCREENSHOTS`` when set (``make screenshots`` sets it to
``docs/screenshots``), else to a pytest temporary directory whose path is printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, BrowserThread
from tests.browser.dash import add_user_now
from tests.conftest import Env
from tests.fakes import FakeAccount

VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserThread]:
    """One Chromium for the session; each test gets its own context (:func:`page`)."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is not installed (.ci/run must apt-get install chromium)")
        pytest.skip("Debian chromium is not installed (apt-get install --no-install-recommends chromium)")
    bt = BrowserThread()
    bt.start()
    yield bt
    bt.stop()


@dataclass
class Seen:
    """What a page did: console lines, and every URL it requested."""

    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def new_page(browser: BrowserThread, viewport: dict[str, int] = VIEWPORT) -> Any:
    """A page in a fresh context (own cookies), fixed viewport, locale and time zone; ``page.seen``
    collects its console lines, requests and uncaught errors. Call on the Playwright thread."""
    ctx = browser.browser.new_context(
        viewport=viewport,
        locale="en-US",
        timezone_id="UTC",
        device_scale_factor=1,
        reduced_motion="reduce",
    )
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    seen = Seen()
    page.seen = seen
    page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}"))
    page.on("request", lambda r: seen.requests.append(r.url))
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    return page


@pytest.fixture
def page(browser: BrowserThread) -> Iterator[Any]:
    """A fresh page at 1280×800 (see :func:`new_page`)."""
    p = browser.call(new_page, browser)
    yield p
    browser.call(lambda: p.context.close())


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go (printed once)."""
    env = os.environ.get("CODEXGW_SCREENSHOTS")
    path = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\n[dashboard screenshots in {path}]")
    return path


def screenshot(page: Any, shots: Path, name: str, *, full_page: bool = True) -> Path:
    """Save ``NAME.png`` (animations off, no caret); call on the Playwright thread."""
    path = shots / f"{name}.png"
    page.evaluate("() => { const t = document.getElementById('toast'); if (t) t.hidden = true; }")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path


@pytest.fixture
async def three(env: Env) -> dict[str, FakeAccount]:
    """alice, bob and carol at the fake, each with its own quota numbers; the admin ``root``."""
    accounts = {
        "alice": env.add_account("alice"),
        "bob": env.add_account("bob"),
        "carol": env.add_account("carol"),
    }
    for account, (primary, secondary) in zip(accounts.values(), [(23, 41), (67, 88), (5, 9)], strict=True):
        account.primary_used_percent, account.secondary_used_percent = primary, secondary
    add_user_now(env, "root", "admin")
    await env.start(probe_interval_s=0)
    return accounts
