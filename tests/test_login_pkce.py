"""Browser login (codex-protocol.md §1) against the fake issuer: the test plays the browser.

Each test runs ``pkce_login`` on an ephemeral callback port (the fake allows any port when
``redirect_ports`` is None), follows the authorize redirect like a browser, or pastes the redirect
URL instead, and checks the store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio

from codexgw.auth.login import LoginError, LoginResult, pkce_login
from codexgw.oauth.pkce import DEFAULT_SCOPE
from codexgw.store import Store
from tests.conftest import Env
from tests.fakes import CLIENT_ID, FakeAccount


@dataclass
class Run:
    """A login started in the test's nursery."""

    url: str
    said: list[str]
    done: trio.Event = field(default_factory=trio.Event)
    result: LoginResult | None = None
    error: LoginError | None = None

    async def outcome(self) -> LoginResult | LoginError:
        with trio.fail_after(10):
            await self.done.wait()
        return self.result if self.result is not None else self.error  # type: ignore[return-value]


async def start_login(env: Env, store: Store, http: httpx.AsyncClient, **kw: Any) -> Run:
    """Start ``pkce_login`` on an ephemeral port; returns once the authorize URL is printed."""
    env.fake.redirect_ports = None
    run = Run(url="", said=[])
    name = kw.pop("name", None)

    async def go(task_status: trio.TaskStatus[str]) -> None:
        try:
            run.result = await pkce_login(
                http, store, auth_url=env.fake_url, name=name, say=run.said.append,
                port=0, open_browser=False, task_status=task_status, **kw,
            )
        except LoginError as e:
            run.error = e
        finally:
            run.done.set()

    run.url = await env.nursery.start(go)
    return run


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


def secrets_of(account: FakeAccount) -> list[str]:
    return [account.id_token, account.access_token, account.refresh_token]


async def test_browser_login_end_to_end(env: Env, http: httpx.AsyncClient) -> None:
    """authorize URL as §1 → fake logs in → 302 to our listener → exchange → /success → stored."""
    alice = env.fake.add_account(email="alice@example.com", plan_type="pro")
    store = Store.open(env.store_dir)
    run = await start_login(env, store, http, name="work")
    parts = urlsplit(run.url)
    query = parse_qs(parts.query)
    assert parts.path == "/oauth/authorize"
    assert [k for k in (p.split("=")[0] for p in parts.query.split("&"))][:4] == [
        "response_type", "client_id", "redirect_uri", "scope",
    ]
    assert query["client_id"] == [CLIENT_ID] and query["scope"] == [DEFAULT_SCOPE]
    assert query["redirect_uri"][0].startswith("http://localhost:")
    assert query["codex_cli_simplified_flow"] == ["true"] and query["originator"] == ["codex_cli_rs"]
    assert any(run.url in line for line in run.said)

    page = await http.get(run.url, follow_redirects=True)
    assert page.status_code == 200 and "Signed in" in page.text
    assert urlsplit(str(page.url)).path == "/success"
    result = await run.outcome()
    assert isinstance(result, LoginResult) and result.created
    [stored] = store.list_accounts()
    assert (stored.name, stored.email, stored.plan_type) == ("work", "alice@example.com", "pro")
    assert stored.chatgpt_account_id == alice.chatgpt_account_id
    assert stored.refresh_token == alice.refresh_token and stored.status == "active"
    assert stored.api_key is None
    # the listener is closed once the login is decided
    port = int(query["redirect_uri"][0].split(":")[2].split("/")[0])
    with pytest.raises(httpx.ConnectError):
        await http.get(f"http://127.0.0.1:{port}/success")


async def test_state_mismatch_is_400_and_login_keeps_waiting(env: Env, http: httpx.AsyncClient) -> None:
    env.fake.add_account()
    store = Store.open(env.store_dir)
    run = await start_login(env, store, http)
    redirect = (await http.get(run.url)).headers["location"]
    tampered = redirect.replace("state=", "state=x")
    answer = await http.get(tampered)
    assert (answer.status_code, answer.text) == (400, "State mismatch")
    assert store.list_accounts() == [] and not run.done.is_set()
    assert (await http.get(redirect, follow_redirects=True)).status_code == 200
    assert isinstance(await run.outcome(), LoginResult)


async def test_issuer_error_fails_the_login(env: Env, http: httpx.AsyncClient) -> None:
    env.fake.add_account()
    env.fake.authorize_error = "access_denied"
    store = Store.open(env.store_dir)
    run = await start_login(env, store, http)
    page = await http.get(run.url, follow_redirects=True)
    assert "Sign-in failed" in page.text
    error = await run.outcome()
    assert isinstance(error, LoginError) and "access_denied" in str(error)
    assert store.list_accounts() == []


async def test_missing_code_fails_the_login(env: Env, http: httpx.AsyncClient) -> None:
    env.fake.add_account()
    store = Store.open(env.store_dir)
    run = await start_login(env, store, http)
    redirect = (await http.get(run.url)).headers["location"]
    state = parse_qs(urlsplit(redirect).query)["state"][0]
    base = redirect.split("?")[0]
    page = await http.get(base, params={"state": state})
    assert "Missing authorization code" in page.text
    error = await run.outcome()
    assert isinstance(error, LoginError) and "Missing authorization code" in str(error)


async def test_pasted_redirect_url_completes_the_login(env: Env, http: httpx.AsyncClient) -> None:
    """Headless: the browser's final URL is pasted on stdin; a foreign URL is refused first."""
    env.fake.add_account()
    store = Store.open(env.store_dir)
    send, receive = trio.open_memory_channel[str | None](4)

    async def read_paste() -> str | None:
        return await receive.receive()

    run = await start_login(env, store, http, read_paste=read_paste)
    redirect = (await http.get(run.url)).headers["location"]
    await send.send("   ")
    await send.send(redirect.replace("state=", "state=zz"))
    await send.send(f"  {redirect}  ")
    result = await run.outcome()
    assert isinstance(result, LoginResult)
    assert any("state mismatch" in line for line in run.said)
    assert len(store.list_accounts()) == 1


async def test_busy_port_names_the_likely_cause(env: Env, http: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LoginError, match=f"port {port} .*in use.*codex login"):
            await pkce_login(
                http, Store.open(env.store_dir), auth_url=env.fake_url, name=None, say=lambda _: None, port=port
            )


async def test_relogin_updates_the_account_and_clears_needs_login(env: Env, http: httpx.AsyncClient) -> None:
    env.fake.add_account()
    store = Store.open(env.store_dir)
    for attempt in range(2):
        run = await start_login(env, store, http, name="alice")
        await http.get(run.url, follow_redirects=True)
        result = await run.outcome()
        assert isinstance(result, LoginResult) and result.created == (attempt == 0)
        if attempt == 0:
            store.set_status(result.account.id, "needs_login", "refresh failed: refresh_token_reused")
    [stored] = store.list_accounts()
    assert (stored.status, stored.status_reason, stored.name) == ("active", None, "alice")


async def test_name_of_another_account_is_refused(env: Env, http: httpx.AsyncClient) -> None:
    bob = env.fake.add_account(email="bob@example.com")
    alice = env.fake.add_account(email="alice@example.com")
    store = Store.open(env.store_dir)
    env.fake.authorize_account = bob
    run = await start_login(env, store, http, name="team")
    await http.get(run.url, follow_redirects=True)
    await run.outcome()
    env.fake.authorize_account = alice
    run = await start_login(env, store, http, name="team")
    await http.get(run.url, follow_redirects=True)
    error = await run.outcome()
    assert isinstance(error, LoginError) and "already used by another account" in str(error)
    assert [a.email for a in store.list_accounts()] == ["bob@example.com"]
    assert env.fake.revocations[-1]["token"] == alice.refresh_token  # the orphan login is revoked


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [(500, "upstream exploded", "HTTP 500"), (200, "<html>garbage", "malformed token response")],
)
async def test_token_endpoint_failure_is_clear_and_stores_nothing(
    env: Env, http: httpx.AsyncClient, status: int, body: str, fragment: str
) -> None:
    env.fake.add_account()
    store = Store.open(env.store_dir)
    before = store.generation()
    env.fake.fail_next_code_exchange(status, body)
    run = await start_login(env, store, http)
    page = await http.get(run.url, follow_redirects=True)
    assert "Sign-in failed" in page.text
    error = await run.outcome()
    assert isinstance(error, LoginError) and fragment in str(error)
    assert store.list_accounts() == [] and store.generation() == before


async def test_api_key_exchange_stores_the_key(env: Env, http: httpx.AsyncClient) -> None:
    env.fake.add_account()
    store = Store.open(env.store_dir)
    run = await start_login(env, store, http, api_key_exchange=True)
    await http.get(run.url, follow_redirects=True)
    result = await run.outcome()
    assert isinstance(result, LoginResult) and result.api_key_stored
    assert (store.list_accounts()[0].api_key or "").startswith("sk-fake-")


async def test_timeout(env: Env, http: httpx.AsyncClient) -> None:
    run = await start_login(env, Store.open(env.store_dir), http, timeout_s=0.05)
    error = await run.outcome()
    assert isinstance(error, LoginError) and "timed out" in str(error)


# -- the real command in a subprocess -----------------------------------------------------------


async def _cli_login(env: Env, http: httpx.AsyncClient, *, paste: bool) -> tuple[str, str]:
    env.fake.redirect_ports = None
    alice = env.fake.add_account()
    cmd = [
        sys.executable, "-m", "codexgw", "--store", str(env.store_dir), "login", "pkce",
        "--auth-url", env.fake_url, "--port", "0", "--no-browser", "--timeout", "30", "--name", "alice",
    ]
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = await trio.lowlevel.open_process(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ
    )
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    out = b""
    with trio.fail_after(20):
        while b"/oauth/authorize?" not in out or not out.endswith(b"\n"):
            chunk = await proc.stdout.receive_some()
            assert chunk, out
            out += chunk
        url = next(w for w in out.decode().split() if "/oauth/authorize?" in w)
        if paste:
            redirect = (await http.get(url)).headers["location"]
            await proc.stdin.send_all(redirect.encode() + b"\n")
        else:
            await http.get(url, follow_redirects=True)
        rest, err = b"", b""
        async with trio.open_nursery() as nursery:

            async def drain(stream: Any, sink: list[bytes]) -> None:
                while chunk := await stream.receive_some():
                    sink.append(chunk)

            outs: list[bytes] = []
            errs: list[bytes] = []
            nursery.start_soon(drain, proc.stdout, outs)
            nursery.start_soon(drain, proc.stderr, errs)
            await proc.wait()
        rest, err = b"".join(outs), b"".join(errs)
    stdout, stderr = (out + rest).decode(), err.decode()
    assert proc.returncode == 0, stderr
    for secret in secrets_of(alice):
        assert secret not in stdout and secret not in stderr
    assert Store.open(env.store_dir).get_account("alice") is not None
    return stdout, stderr


async def test_cli_login_pkce_via_browser(env: Env, http: httpx.AsyncClient) -> None:
    stdout, _ = await _cli_login(env, http, paste=False)
    assert "ssh -L" in stdout and "logged in: added account alice" in stdout


async def test_cli_login_pkce_via_pasted_url(env: Env, http: httpx.AsyncClient) -> None:
    stdout, _ = await _cli_login(env, http, paste=True)
    assert "paste the full" in stdout and "logged in: added account alice" in stdout
