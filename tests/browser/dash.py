"""Helpers of the dashboard's browser tests: users, logging in through the page, the pool's rows,
requests through the openai SDK, and who served them at the fake upstream."""

from __future__ import annotations

from typing import Any

import trio
from playwright.sync_api import expect

from codexgw.store import users
from codexgw.store.sqlite import Store
from tests.conftest import Env, in_thread

PASSWORD = "correct horse battery"


def add_user_now(env: Env, name: str, role: str) -> None:
    users.add_user(Store.open(env.store_dir), name, role, users.new_password_hash(PASSWORD), now=env.clock())


def log_in(page: Any, url: str, user: str = "root") -> None:
    """Log in through the login page and wait for the pool page to be filled and live."""
    page.goto(url + "/dashboard/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + "/dashboard")
    expect(page.locator("body")).to_have_attribute("data-ready", "yes")
    expect(page.locator("#live")).to_have_text("live")


def row(page: Any, name: str) -> Any:
    return page.locator(f'#account-rows tr[data-name="{name}"]')


def served_by(env: Env) -> list[str]:
    """chatgpt_account_ids of the accounts that got /codex/responses calls, in order."""
    return [r.headers.get("chatgpt-account-id", "") for r in env.fake.responses_requests()]


async def chat(env: Env, count: int, **client: Any) -> None:
    """``count`` chat completions, each its own conversation (no affinity between them)."""
    sdk = env.openai(**client)
    for i in range(count):
        messages = [{"role": "user", "content": f"question {i} {trio.current_time()}"}]
        await in_thread(sdk.chat.completions.create, model="gpt-5.5", messages=messages)


def assert_clean(page: Any, url: str) -> None:
    """No script error, no CSP violation, no console error but the login page's expected 401, and
    no request to another origin."""
    assert page.seen.page_errors == []
    errors = [c for c in page.seen.console if "Content Security Policy" in c or c.startswith("error")]
    assert [c for c in errors if "status of 401" not in c] == []
    assert [u for u in page.seen.requests if not u.startswith(url + "/")] == []
