"""Every dashboard page in Chromium on a real codexgw (three accounts at the fake upstream): each
renders its data within its CSP and its own origin, countdowns tick, live events update rows, the
keyboard reaches everything, every control has a label, and no page scrolls sideways on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser import BrowserThread
from tests.browser.conftest import PHONE, new_page, screenshot
from tests.browser.dash import assert_clean, chat, log_in, row
from tests.conftest import Env
from tests.fakes import FakeAccount, UsageLimit

PAGES = ["", "add", "keys", "usage", "log", "settings", "users"]


async def test_every_page_renders_within_its_csp_and_origin(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any, shots: Path
) -> None:
    def drive() -> None:
        page.goto(env.url + "/dashboard/login")
        screenshot(page, shots, "login")
        log_in(page, env.url)
        expect(page.locator("#account-rows tr")).to_have_count(3)
        expect(page.locator("#whoami")).to_have_text("root (admin)")
        for slug in PAGES[1:]:
            page.goto(f"{env.url}/dashboard/{slug}")
            expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        assert_clean(page, env.url)

    await browser.run(drive)


async def test_an_inline_script_is_refused_by_the_csp(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def drive() -> tuple[Any, list[str]]:
        log_in(page, env.url)
        page.evaluate(INJECT_JS)  # what an injected <script> would try
        return page.evaluate("window.injected"), page.seen.console

    ran, console = await browser.run(drive)
    assert ran is None
    assert any("Content Security Policy" in line for line in console)


INJECT_JS = """() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';
document.body.append(s); }"""


async def test_a_cooldown_ticks_and_live_events_update_the_rows(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    env.fake.script(three["carol"], UsageLimit(resets_in_s=754))
    await chat(env, 3)  # one of them meets carol's usage limit: she cools down
    await browser.run(log_in, page, env.url)
    first = await browser.run(lambda: row(page, "carol").locator(".cooldown").text_content())
    assert first and "left" in first
    await browser.run(lambda: expect(row(page, "carol").locator(".cooldown")).not_to_have_text(first))
    before = await browser.run(lambda: int(row(page, "alice").locator(".requests").text_content() or 0))
    await chat(env, 3)  # no reload: the counters come by /api/events
    await browser.run(
        lambda: expect(row(page, "alice").locator(".requests")).not_to_have_text(str(before), timeout=5_000)
    )


async def test_no_page_scrolls_sideways_on_a_phone(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread
) -> None:
    def drive() -> dict[str, int]:
        phone = new_page(browser, PHONE)
        try:
            log_in(phone, env.url)
            expect(phone.locator("#account-rows tr")).to_have_count(3)
            widths = {}
            for slug in PAGES:
                phone.goto(f"{env.url}/dashboard/{slug}")
                expect(phone.locator("body")).to_have_attribute("data-ready", "yes")
                widths[slug] = phone.evaluate("document.documentElement.scrollWidth")
            assert_clean(phone, env.url)
            return widths
        finally:
            phone.context.close()

    assert await browser.run(drive) == dict.fromkeys(PAGES, PHONE["width"])


async def test_the_keyboard_reaches_the_menu_and_every_control_has_a_label(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def drive() -> tuple[list[str], list[str]]:
        log_in(page, env.url)
        focused = []
        for _ in range(4):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.textContent.trim()"))
        unlabelled = []
        for slug in PAGES:
            page.goto(f"{env.url}/dashboard/{slug}")
            expect(page.locator("body")).to_have_attribute("data-ready", "yes")
            unlabelled += page.evaluate(UNLABELLED_JS)
        return focused, unlabelled

    focused, unlabelled = await browser.run(drive)
    assert focused == ["Skip to content", "codexgw", "Pool", "Add account"]
    assert unlabelled == []


UNLABELLED_JS = """
[...document.querySelectorAll('input, select, textarea, button')]
  .filter(c => c.type !== 'hidden' && !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
               && !(c.tagName === 'BUTTON' && c.textContent.trim()))
  .map(c => location.pathname + ' ' + (c.id || c.name || c.outerHTML))
"""


async def test_an_unknown_page_is_404_in_the_frame(env: Env, three: dict[str, FakeAccount]) -> None:
    async with httpx.AsyncClient() as client:
        resp = await client.get(env.url + "/dashboard/nope")
    assert resp.status_code == 404
    assert "Not found" in resp.text and "default-src 'none'" in resp.headers["content-security-policy"]
