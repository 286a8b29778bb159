"""Every dashboard page in Chromium against a stand-in admin API (:mod:`tests.browser.stub_api`):
the pages render their data, keep to their own origin and CSP, work by keyboard and on a phone's
width, and each leaves a screenshot."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import expect
from quart_trio import QuartTrio

from codexgw.dashboard.pages import bp as dashboard_bp
from tests.browser import BrowserThread
from tests.browser.conftest import PHONE, new_page, screenshot
from tests.browser.stub_api import Stub


async def serve_stub(nursery: trio.Nursery) -> tuple[str, Stub]:
    """The dashboard blueprint and the stub API on 127.0.0.1:<ephemeral>."""
    import hypercorn.trio
    from hypercorn.config import Config

    stub = Stub()
    app = QuartTrio("stub")
    app.config["RESPONSE_TIMEOUT"] = None
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(stub.bp)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("stub.hypercorn")
    config.graceful_timeout = 0.2
    urls = await nursery.start(lambda task_status: hypercorn.trio.serve(app, config, task_status=task_status))
    return urls[0], stub


def log_in(page: Any, url: str) -> None:
    page.goto(url + "/dashboard/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + "/dashboard")
    expect(page.locator("body")).to_have_attribute("data-ready", "yes")


def assert_clean(page: Any, url: str) -> None:
    """No script error, no CSP violation, no request to another origin."""
    assert page.seen.page_errors == []
    errors = [c for c in page.seen.console if "Content Security Policy" in c or c.startswith("error")]
    assert [c for c in errors if "status of 401" not in c] == []  # 401: the login page asks first
    assert [u for u in page.seen.requests if not u.startswith(url + "/")] == []


PAGES = ["", "add", "keys", "usage", "log", "settings", "users"]


async def test_every_page_renders_its_data_within_the_csp_screenshots(
    nursery: trio.Nursery, browser: BrowserThread, page: Any, shots: Path
) -> None:
    url, _stub = await serve_stub(nursery)

    def drive() -> None:
        page.goto(url + "/dashboard/login")
        screenshot(page, shots, "stub-" + "login")
        log_in(page, url)
        rows = page.locator("#account-rows tr")
        expect(rows).to_have_count(3)
        alice = page.locator('#account-rows tr[data-name="alice"]')
        expect(alice.locator(".quota.primary meter")).to_have_js_property("value", 23)
        expect(alice.locator(".quota.secondary meter")).to_have_js_property("value", 41)
        expect(alice.locator(".quota.primary .reset")).to_contain_text("resets in 2h")
        expect(page.locator('#account-rows tr[data-name="carol"] .cooldown')).to_contain_text("left")
        expect(page.locator("#whoami")).to_have_text("admin (admin)")
        expect(page.locator("#live")).to_have_text("live")
        screenshot(page, shots, "stub-" + "pool")
        for slug in PAGES[1:]:
            page.goto(f"{url}/dashboard/{slug}")
            expect(page.locator("body")).to_have_attribute("data-ready", "yes")
            screenshot(page, shots, "stub-" + slug)
        assert_clean(page, url)

    await browser.run(drive)


async def test_cooldown_ticks_and_live_events_update_rows(
    nursery: trio.Nursery, browser: BrowserThread, page: Any
) -> None:
    url, stub = await serve_stub(nursery)
    await browser.run(log_in, page, url)
    first = await browser.run(lambda: page.locator('tr[data-name="carol"] .cooldown').text_content())
    await browser.run(
        lambda: expect(page.locator('tr[data-name="carol"] .cooldown')).not_to_have_text(first or "")
    )
    stub.accounts["bob"]["requests"] = 99
    await stub.emit("account", stub.accounts["bob"])
    await browser.run(lambda: expect(page.locator('tr[data-name="bob"] .requests')).to_have_text("99"))


async def test_a_phone_width_shows_rows_as_cards_screenshot(
    nursery: trio.Nursery, browser: BrowserThread, shots: Path
) -> None:
    url, _stub = await serve_stub(nursery)

    def drive() -> dict[str, int]:
        phone = new_page(browser, PHONE)
        try:
            log_in(phone, url)
            expect(phone.locator("#account-rows tr")).to_have_count(3)
            screenshot(phone, shots, "stub-" + "pool-phone")
            widths = {}
            for slug in PAGES:
                phone.goto(f"{url}/dashboard/{slug}")
                expect(phone.locator("body")).to_have_attribute("data-ready", "yes")
                widths[slug] = phone.evaluate("document.documentElement.scrollWidth")
            assert_clean(phone, url)
            return widths
        finally:
            phone.context.close()

    widths = await browser.run(drive)
    assert widths == dict.fromkeys(PAGES, PHONE["width"])  # no page scrolls sideways


async def test_keyboard_reaches_the_navigation_and_every_control_has_a_label(
    nursery: trio.Nursery, browser: BrowserThread, page: Any
) -> None:
    url, _stub = await serve_stub(nursery)

    def drive() -> tuple[list[str], list[str]]:
        log_in(page, url)
        focused = []
        for _ in range(4):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.textContent.trim()"))
        unlabelled = []
        for slug in PAGES:
            page.goto(f"{url}/dashboard/{slug}")
            expect(page.locator("body")).to_have_attribute("data-ready", "yes")
            unlabelled += page.evaluate(UNLABELLED_JS)
        return focused, unlabelled

    focused, unlabelled = await browser.run(drive)
    assert focused == ["Skip to content", "codexgw", "Pool", "Add account"]
    assert unlabelled == []


UNLABELLED_JS = """
[...document.querySelectorAll('input, select, textarea')]
  .filter(c => c.type !== 'hidden' && !c.labels.length && !c.getAttribute('aria-label'))
  .map(c => location.pathname + ' ' + (c.id || c.name || c.outerHTML))
"""


@pytest.mark.parametrize("path", ["/dashboard/nope"])
async def test_unknown_page_is_404_with_the_frame(nursery: trio.Nursery, path: str) -> None:
    import httpx

    url, _stub = await serve_stub(nursery)
    async with httpx.AsyncClient() as client:
        resp = await client.get(url + path)
    assert resp.status_code == 404
    assert "Not found" in resp.text and "default-src 'none'" in resp.headers["content-security-policy"]


async def test_key_secret_shown_once_and_device_login_row_appears(
    nursery: trio.Nursery, browser: BrowserThread, page: Any
) -> None:
    url, stub = await serve_stub(nursery)

    def create_key() -> str:
        log_in(page, url)
        page.goto(url + "/dashboard/keys")
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_text("Create a key").click()
        form = page.locator("#key-form")
        form.get_by_label("Name", exact=True).fill("ci")
        form.get_by_label("Requests per minute").fill("60")
        page.get_by_role("button", name="Create key").click()
        secret = page.locator("#secret-value")
        expect(secret).to_have_value(re.compile(r"^cgw-"))
        value = secret.input_value()
        page.get_by_role("button", name="Done").click()
        expect(page.locator('#key-rows tr[data-name="ci"]')).to_contain_text("60 req/min")
        expect(secret).to_have_value("")  # gone from the page once the dialog closes
        page.goto(url + "/dashboard/add")
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_role("button", name="Start device login").click()
        expect(page.locator("#device-code")).to_have_text("ABCD-1234")
        expect(page.locator("#device-countdown")).to_contain_text("14m")
        return value

    secret = await browser.run(create_key)
    assert stub.keys["ci"]["prefix"] == secret[:12] and stub.keys["ci"]["rpm"] == 60
    [login_id] = stub.logins
    await stub.approve(login_id, "dave")

    def approved() -> None:
        expect(page.locator("#device-status")).to_contain_text("account dave added")
        expect(page.locator('#added-accounts li[data-name="dave"]')).to_have_class("new")

    await browser.run(approved)
