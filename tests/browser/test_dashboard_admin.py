"""The admin pages' actions in Chromium against the real API: users (add, role, password, remove),
settings, and a key's edit, rotation and revocation."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from codexgw.policy.passwords import verify_password
from codexgw.store import users
from codexgw.store.keys import get_key
from codexgw.store.settings import read_settings
from codexgw.store.sqlite import Store
from tests.browser import BrowserThread
from tests.browser.dash import PASSWORD, log_in
from tests.conftest import Env
from tests.fakes import FakeAccount


async def test_users_added_promoted_given_a_password_and_removed(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def drive() -> None:
        page.on("dialog", lambda d: d.accept())  # the removal's confirm()
        log_in(page, env.url)
        page.get_by_role("link", name="Users").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_text("Add a user").click()
        page.locator("#user-name").fill("ada")
        page.locator("#user-password").fill(PASSWORD)
        page.get_by_role("button", name="Add user").click()
        expect(page.locator('#user-rows tr[data-name="ada"]')).to_contain_text("ada")
        page.get_by_label("Role of ada").select_option("admin")
        expect(page.locator("#toast")).to_contain_text("ada: admin")
        page.get_by_role("button", name="Reset password of ada").click()
        page.locator("#passwd-value").fill("another password 2")
        page.get_by_role("button", name="Set password", exact=True).click()
        expect(page.locator("#toast")).to_contain_text("password of ada set")

    await browser.run(drive)
    store = Store.open(env.store_dir)
    ada = users.get_user(store, "ada")
    assert ada is not None and ada.role == "admin"
    assert verify_password("another password 2", ada.password)

    await browser.run(lambda: page.get_by_role("button", name="Remove ada").click())
    await browser.run(lambda: expect(page.locator('#user-rows tr[data-name="ada"]')).to_have_count(0))
    assert users.get_user(store, "ada") is None


async def test_settings_saved_from_the_page(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def drive() -> None:
        log_in(page, env.url)
        page.get_by_role("link", name="Settings").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_label("Quota probe interval (seconds, 0 = never)").fill("120")
        page.get_by_label("Reasoning display in Chat Completions (default)").select_option("think")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#toast")).to_contain_text("settings saved")

    await browser.run(drive)
    stored = read_settings(Store.open(env.store_dir))
    assert stored["probe_interval_s"] == 120.0 and stored["reasoning_mode"] == "think"


async def test_a_key_edited_rotated_and_revoked_in_the_page(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def drive() -> tuple[str, str]:
        page.on("dialog", lambda d: d.accept())
        log_in(page, env.url)
        page.get_by_role("link", name="API keys").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_text("Create a key").click()
        page.locator("#key-name").fill("ci")
        page.locator("#key-expires").fill("30d")
        page.get_by_role("button", name="Create key").click()
        first = page.locator("#secret-value").input_value()
        page.get_by_role("button", name="Done").click()
        page.get_by_role("button", name="Edit ci").click()
        page.locator("#edit-rpm").fill("30")
        page.get_by_role("button", name="Save").click()
        expect(page.locator('#key-rows tr[data-name="ci"]')).to_contain_text("30 req/min")
        page.get_by_role("button", name="Rotate ci").click()
        page.locator("#rotate-grace").fill("0")
        page.get_by_role("button", name="Rotate", exact=True).click()
        expect(page.locator("#secret-value")).to_have_value(re.compile(r"^cgw-"))
        second = page.locator("#secret-value").input_value()
        page.get_by_role("button", name="Done").click()
        page.get_by_role("button", name="Revoke ci").click()
        expect(page.locator('#key-rows tr[data-name="ci"] .badge')).to_have_text("revoked")
        return first, second

    first, second = await browser.run(drive)
    assert first != second
    key = get_key(Store.open(env.store_dir), "ci")
    assert key is not None and key.rpm == 30 and key.revoked_at is not None
    assert key.expires_at is not None and key.expires_at > env.clock() + 29 * 86400  # the edit kept it
