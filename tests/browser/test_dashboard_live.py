"""The dashboard on a real codexgw (admin API of issue 12) in front of the fake upstream with three
accounts, driven in Chromium: the issue's list of browser tests, and a screenshot of every page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openai
import pytest
import trio
from playwright.sync_api import expect

from codexgw.store import users
from codexgw.store.sqlite import Store
from tests.browser import BrowserThread
from tests.browser.conftest import PHONE, new_page, screenshot
from tests.browser.dash import PASSWORD, add_user_now, chat, log_in, row, served_by
from tests.conftest import Env, in_thread
from tests.fakes import FakeAccount, UsageLimit


async def test_log_in_and_the_quota_bars_show_the_fakes_usage(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any, shots: Path
) -> None:
    def drive() -> None:
        page.goto(env.url + "/dashboard")  # not logged in: to the login page, then back
        page.wait_for_url(re.compile(r"/dashboard/login\?next="))
        log_in(page, env.url)
        expect(page.locator("#account-rows tr")).to_have_count(3)
        for name in ("alice", "bob", "carol"):
            row(page, name).get_by_role("button", name=f"Probe usage {name}").click()
        for name, (primary, secondary) in {"alice": (23, 41), "bob": (67, 88), "carol": (5, 9)}.items():
            expect(row(page, name).locator(".quota.primary meter")).to_have_js_property("value", primary)
            expect(row(page, name).locator(".quota.secondary meter")).to_have_js_property("value", secondary)
            expect(row(page, name).locator(".quota.primary .pct")).to_have_text(f"{primary} % used")
            expect(row(page, name).locator(".quota.secondary .reset")).to_contain_text("resets in")
        screenshot(page, shots, "live-pool")

    await browser.run(drive)
    assert {r.path for r in env.fake.requests} >= {"/backend-api/wham/usage"}


async def test_disabling_an_account_takes_it_out_of_rotation(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def disable_alice() -> None:
        log_in(page, env.url)
        page.get_by_label("alice enabled").uncheck()
        expect(row(page, "alice")).to_have_class(re.compile(r"\boff\b"))
        expect(row(page, "alice").locator(".status")).to_have_text(
            "disabled"
        )  # the badge; status stays active

    await browser.run(disable_alice)
    await chat(env, 6)
    served = served_by(env)
    assert len(served) == 6
    assert three["alice"].chatgpt_account_id not in served
    assert {three["bob"].chatgpt_account_id, three["carol"].chatgpt_account_id} == set(served)

    await browser.run(lambda: page.get_by_label("alice enabled").check())
    await browser.run(lambda: expect(row(page, "alice")).not_to_have_class(re.compile(r"\boff\b")))
    await chat(env, 6)
    assert three["alice"].chatgpt_account_id in served_by(env)[6:]


async def test_pin_and_unpin(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def pin_bob() -> None:
        log_in(page, env.url)
        page.get_by_role("button", name="Pin bob").click()
        expect(row(page, "bob")).to_have_class(re.compile(r"\bpinned\b"))
        expect(page.get_by_label("Force mode (pin one account)")).to_have_value("bob")

    await browser.run(pin_bob)
    await chat(env, 4)
    assert served_by(env) == [three["bob"].chatgpt_account_id] * 4

    def unpin() -> None:
        page.get_by_role("button", name="Unpin bob").click()
        expect(row(page, "bob")).not_to_have_class(re.compile(r"\bpinned\b"))
        expect(page.get_by_label("Force mode (pin one account)")).to_have_value("")

    await browser.run(unpin)
    await chat(env, 6)
    assert len(set(served_by(env)[4:])) == 3


async def test_a_key_created_in_the_page_works_with_the_openai_sdk(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any, shots: Path
) -> None:
    def create() -> str:
        log_in(page, env.url)
        page.get_by_role("link", name="API keys").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_text("Create a key").click()
        form = page.locator("#key-form")
        form.get_by_label("Name", exact=True).fill("laptop")
        form.get_by_label("Requests per minute").fill("100")
        form.get_by_role("button", name="Create key").click()
        secret = page.locator("#secret-value")
        expect(secret).to_have_value(re.compile(r"^cgw-[A-Za-z0-9_-]{43}$"))
        screenshot(page, shots, "live-key-secret", full_page=False)
        value = secret.input_value()
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=env.url)
        page.get_by_role("button", name="Copy").click()
        expect(page.locator("body")).to_have_attribute("data-copied", "yes")
        assert page.evaluate("navigator.clipboard.readText()") == value
        page.get_by_role("button", name="Done").click()
        expect(secret).to_have_value("")
        expect(page.locator('#key-rows tr[data-name="laptop"]')).to_contain_text(value[:12])
        return value

    secret = await browser.run(create)
    sdk = env.openai(api_key=secret)
    answer = await in_thread(
        sdk.chat.completions.create, model="gpt-5.5", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):  # a stored key exists: /v1 needs one now
        await chat(env, 1, api_key="sk-wrong")


async def test_a_device_login_end_to_end_in_the_page(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any, shots: Path
) -> None:
    env.fake.device_interval = "0"
    dave = env.fake.add_account(email="dave@example.com")

    def start() -> str:
        log_in(page, env.url)
        page.get_by_role("link", name="Add account").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_label("Account name (optional)").first.fill("dave")
        page.get_by_role("button", name="Start device login").click()
        code = page.locator("#device-code")
        expect(code).to_have_text(re.compile(r"\S+"))
        expect(page.locator("#device-link")).to_have_attribute("href", re.compile(r"/codex/device"))
        expect(page.locator("#device-countdown")).to_have_text(re.compile(r"\d+m \d\ds"))
        screenshot(page, shots, "live-device-login")
        return code.text_content() or ""

    user_code = await browser.run(start)
    env.fake.approve_device(user_code, dave)

    def approved() -> None:
        expect(page.locator("#device-status")).to_contain_text("account dave added", timeout=20_000)
        expect(page.locator('#added-accounts li[data-name="dave"]')).to_have_class(re.compile("new"))

    await browser.run(approved)
    emails = [a.email for a in env.gateway.accounts.values()]
    assert "dave@example.com" in emails


async def test_a_requests_log_line_appears_live(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any, shots: Path
) -> None:
    def open_log() -> None:
        log_in(page, env.url)
        page.get_by_role("link", name="Live log").click()
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator(VISIBLE)).to_have_count(0)

    await browser.run(open_log)
    await chat(env, 1)

    def seen() -> None:
        line = page.locator(VISIBLE).first
        expect(line).to_contain_text("POST /v1/chat/completions")
        expect(line.locator(".status")).to_have_text("200")
        expect(line).to_contain_text("gpt-5.5")
        page.get_by_label("Status").select_option("err")
        expect(page.locator(VISIBLE)).to_have_count(0)
        page.get_by_label("Status").select_option("")
        expect(page.locator(VISIBLE)).to_have_count(1)
        page.get_by_label("Only /v1 requests (hide the dashboard's own)").uncheck()
        page.evaluate("fetch('/api/pool')")  # the dashboard's own request, now shown too
        expect(page.locator(VISIBLE).filter(has_text="GET /api/pool")).to_have_count(1)
        screenshot(page, shots, "live-log")

    await browser.run(seen)


async def test_a_state_change_without_the_csrf_token_is_refused(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any
) -> None:
    def forge() -> dict[str, Any]:
        log_in(page, env.url)
        return page.evaluate(FORGE_JS)

    answer = await browser.run(forge)
    assert answer["status"] == 403
    assert json.loads(answer["body"])["error"]["code"] == "csrf_failed"
    assert all(a.enabled for a in env.gateway.accounts.values())


VISIBLE = "#log-rows tr:not([hidden])"

FORGE_JS = """async () => {
  const r = await fetch('/api/accounts/alice', {method: 'PATCH', headers: {'content-type': 'application/json'},
                                                body: JSON.stringify({enabled: false})});
  return {status: r.status, body: await r.text()};
}"""


async def test_a_member_sees_only_their_own_accounts(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any, shots: Path
) -> None:
    add_user_now(env, "mia", "member")
    add_user_now(env, "max", "member")
    store = Store.open(env.store_dir)
    users.set_account_owner(store, "alice", "mia", now=env.clock())
    users.set_account_owner(store, "bob", "max", now=env.clock())
    await trio.sleep(0.3)  # the server follows the store (accounts_poll_s=0.05 in tests)

    def as_mia() -> tuple[list[str], int]:
        log_in(page, env.url, "mia")
        expect(page.locator("#account-rows tr")).to_have_count(1)
        names = page.locator("#account-rows tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
        expect(page.get_by_role("link", name="Users")).to_be_hidden()
        screenshot(page, shots, "live-member-pool")
        status = page.evaluate("async () => (await fetch('/api/accounts/bob')).status")
        return names, status

    names, status = await browser.run(as_mia)
    assert names == ["alice"]
    assert status in (403, 404)


async def test_every_page_against_the_real_api_screenshots(
    env: Env, three: dict[str, FakeAccount], browser: BrowserThread, page: Any, shots: Path
) -> None:
    """The README's pictures (``make screenshots``): a pool with a cooldown, keys in use, usage,
    a device login waiting, live log lines, users; and no request to another origin."""
    env.fake.script(three["carol"], UsageLimit(resets_in_s=754))
    add_user_now(env, "ada", "member")
    users.set_account_owner(Store.open(env.store_dir), "alice", "ada", now=env.clock())
    await trio.sleep(0.3)  # the server follows the store (accounts_poll_s=0.05 in tests)
    await chat(env, 5)

    def setup() -> list[str]:
        log_in(page, env.url)
        for name in ("alice", "bob", "carol"):
            row(page, name).get_by_role("button", name=f"Probe usage {name}").click()
        expect(row(page, "bob").locator(".quota.primary meter")).to_have_js_property("value", 67)
        expect(row(page, "carol").locator(".cooldown")).to_contain_text("left")
        return page.evaluate(MAKE_KEYS_JS)

    secrets = await browser.run(setup)
    for secret in secrets:
        await chat(env, 2, api_key=secret)

    def pages() -> None:
        page.goto(env.url + "/dashboard")
        expect(page.locator("#account-rows tr")).to_have_count(3)
        screenshot(page, shots, "pool")
        for slug in ("keys", "usage", "settings", "users"):
            page.goto(f"{env.url}/dashboard/{slug}")
            expect(page.locator("body")).to_have_attribute("data-ready", "yes")
            if slug == "keys":
                page.get_by_role("button", name="Usage ci").click()
                expect(page.locator("#key-chart-day")).to_have_attribute("data-points", "7")
            screenshot(page, shots, slug)
        page.goto(env.url + "/dashboard/add")
        expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        page.get_by_role("button", name="Start device login").click()
        expect(page.locator("#device-code")).to_have_text(re.compile(r"\S+"))
        screenshot(page, shots, "add")
        page.goto(env.url + "/dashboard/log")
        expect(page.locator("#live")).to_have_text("live")

    await browser.run(pages)
    await chat(env, 3, api_key=secrets[0])
    await chat(env, 1, api_key=secrets[1])

    def log_and_phone() -> list[str]:
        expect(page.locator("#log-rows tr:not([hidden])")).to_have_count(4)  # /v1 only (the default)
        screenshot(page, shots, "log")
        phone = new_page(browser, PHONE)
        try:
            log_in(phone, env.url)
            screenshot(phone, shots, "pool-phone", full_page=False)  # the first screen: small
        finally:
            phone.context.close()
        return [u for u in page.seen.requests + phone.seen.requests if not u.startswith(env.url + "/")]

    assert await browser.run(log_and_phone) == []


MAKE_KEYS_JS = """async () => {
  const csrf = (await (await fetch('/api/session')).json()).csrf_token;
  const out = [];
  for (const body of [{name: 'ci', rpm: 600, models: ['gpt-5.5']}, {name: 'ada-laptop', owner: 'ada', tokens_per_day: 2000000}]) {
    const r = await fetch('/api/keys', {method: 'POST', body: JSON.stringify(body),
                                        headers: {'content-type': 'application/json', 'x-csrf-token': csrf}});
    out.push((await r.json()).secret);
  }
  return out;
}"""


async def test_the_setup_link_serve_prints_creates_the_first_admin(
    env: Env, browser: BrowserThread, page: Any, capsys: pytest.CaptureFixture[str], shots: Path
) -> None:
    env.add_account("alice")
    await env.start()
    printed = capsys.readouterr().err
    [link] = re.findall(r"http://\S+/dashboard/setup\?token=\S+", printed)
    assert link.startswith(env.url)

    def set_up() -> str:
        page.goto(link)
        expect(page.get_by_label("Setup token")).not_to_have_value("")
        assert "token=" not in page.url  # taken out of the address bar and the history
        page.get_by_label("Admin user name").fill("root")
        page.get_by_label("Password").fill(PASSWORD)
        screenshot(page, shots, "setup")
        page.get_by_role("button", name="Create admin and log in").click()
        page.wait_for_url(env.url + "/dashboard")
        expect(page.locator("#whoami")).to_have_text("root (admin)")
        expect(page.locator("#account-rows tr")).to_have_count(1)
        page.goto(link)  # spent
        page.get_by_label("Admin user name").fill("eve")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create admin and log in").click()
        expect(page.locator("#setup-error")).to_be_visible()
        return page.locator("#setup-error").text_content() or ""

    assert await browser.run(set_up)
    assert [u.name for u in users.list_users(Store.open(env.store_dir))] == ["root"]
