"""The browser (PKCE) login in the page, with the pasted redirect URL for a gateway whose
127.0.0.1:1455 callback the user's browser cannot reach (the device-code flow is in
``test_dashboard_live``)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser import BrowserThread
from tests.browser.dash import add_user_now, log_in
from tests.conftest import Env


async def test_a_pkce_login_finished_with_the_pasted_redirect_url(
    env: Env, browser: BrowserThread, page: Any
) -> None:
    env.add_account("alice")
    env.fake.redirect_ports = None  # the fake sends the browser to any callback port
    add_user_now(env, "root", "admin")
    await env.start(login_callback_port=0, probe_interval_s=0)
    env.fake.authorize_account = env.fake.add_account(email="erin@example.com")

    def start() -> str:
        log_in(page, env.url)
        page.get_by_role("link", name="Add account").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.locator("#pkce-name").fill("erin")
        page.get_by_role("button", name="Start browser login").click()
        link = page.get_by_role("link", name="Open the login page")
        expect(link).to_have_attribute("href", re.compile(r"/oauth/authorize\?"))
        expect(page.locator("#pkce-countdown")).to_have_text(re.compile(r"\d+m \d\ds"))
        return link.get_attribute("href") or ""

    authorize_url = await browser.run(start)
    async with httpx.AsyncClient() as elsewhere:  # the user's browser on another machine
        redirect = (await elsewhere.get(authorize_url)).headers["location"]
    assert "/auth/callback?" in redirect and "code=" in redirect

    def paste() -> None:
        page.get_by_label("Redirect URL").fill(redirect)
        page.get_by_role("button", name="Finish login").click()
        expect(page.locator("#pkce-status")).to_contain_text("account erin added")
        expect(page.locator('#added-accounts li[data-name="erin"]')).to_contain_text("erin@example.com")

    await browser.run(paste)
    assert "erin@example.com" in [a.email for a in env.gateway.accounts.values()]
