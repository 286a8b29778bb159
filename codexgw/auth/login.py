"""Browser login (authorization code + PKCE) and storing any new login (codex-protocol.md §1, §4).

Theory of operation for :func:`pkce_login`: one nursery holds the callback listener
(``auth/callback.py``), an optional reader of a redirect URL pasted on stdin (for SSH sessions with
no port forwarding), and the browser opener. Whichever delivers a code first runs the exchange
(:class:`_Attempt` lets one exchange run at a time and ignores codes after the login is decided); the
nursery is cancelled once the login is decided, after giving the browser up to
:data:`SUCCESS_GRACE_S` to fetch ``/success``. The whole login is bounded by ``timeout_s``.

:func:`finish_login` is shared with the device flow: it reads the identity from the id_token (§4),
optionally exchanges the id_token for an API key (§1), and upserts the account (a login for an
account already stored, same ``chatgpt_account_id``, updates it and clears ``needs_login``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import trio

from codexgw.auth.callback import CallbackServer, PortInUseError, bind_callback
from codexgw.client.calls import request
from codexgw.client.errors import OAUTH_SERVER
from codexgw.errors import UpstreamConnectionError
from codexgw.oauth import pkce
from codexgw.oauth.jwt import InvalidJWTError, identity_from_id_token
from codexgw.oauth.tokens import (
    HttpRequestSpec,
    OAuthError,
    TokenResponse,
    build_api_key_exchange_request,
    build_code_exchange_request,
    build_revoke_request,
    parse_api_key_exchange_response,
    parse_code_exchange_response,
)
from codexgw.store import Account, Store, StoreError, TokenSet

__all__ = ["LoginError", "LoginResult", "browser_available", "finish_login", "pkce_login", "send"]

log = logging.getLogger("codexgw.login")

SUCCESS_GRACE_S = 3.0
"""After a successful exchange, how long the listener stays up for the browser's ``/success``, seconds."""

Say = Callable[[str], None]
"""Prints one line for the user (never a token)."""


class LoginError(Exception):
    """A login failed; ``str(e)`` is one line for the user, never a token. The store is unchanged."""


@dataclass(frozen=True)
class LoginResult:
    """A stored login.

    Attributes:
        account: the account as stored.
        created: True for a new account, False when an existing one (same identity) was updated.
        api_key_stored: the id_token → API-key exchange succeeded and the key was stored.
        renamed_from: the account's name before, when this login (``name``) renamed it.
    """

    account: Account
    created: bool
    api_key_stored: bool = False
    renamed_from: str | None = None


async def send(http: httpx.AsyncClient, spec: HttpRequestSpec, *, what: str) -> httpx.Response:
    """Send ``spec``; an unreachable server becomes a :class:`LoginError` naming ``what``."""
    try:
        return await request(
            http,
            spec.method,
            spec.url,
            peer=OAUTH_SERVER,
            headers=spec.headers,
            json=spec.json,
            content=_form(spec),
        )
    except UpstreamConnectionError as exc:
        raise LoginError(f"{what}: {exc.message}") from None


def _form(spec: HttpRequestSpec) -> bytes | None:
    return spec.body_bytes() if spec.form is not None else None


async def exchange_code(
    http: httpx.AsyncClient, *, auth_url: str, code: str, redirect_uri: str, code_verifier: str
) -> TokenResponse:
    """The authorization-code exchange (§1 "Token exchange", §2 step 4).

    Raises:
        LoginError: unreachable server, non-2xx, or a body without the three tokens.
    """
    spec = build_code_exchange_request(
        auth_url, code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
    )
    response = await send(http, spec, what="token exchange failed")
    try:
        return parse_code_exchange_response(response.status_code, response.content)
    except OAuthError as exc:
        raise LoginError(exc.message) from None


async def finish_login(
    http: httpx.AsyncClient,
    store: Store,
    tokens: TokenResponse,
    *,
    auth_url: str,
    name: str | None,
    api_key_exchange: bool = False,
    clock: Callable[[], float] = time.time,
) -> LoginResult:
    """Store the tokens of a completed login (§1 "What is stored", §4).

    Raises:
        LoginError: the id_token is unreadable or names no account, or ``name`` belongs to another
            account. The new refresh token is then revoked (best effort) and the store is unchanged.
    """
    assert tokens.id_token and tokens.access_token and tokens.refresh_token
    try:
        identity = identity_from_id_token(tokens.id_token)
    except InvalidJWTError as e:
        raise LoginError(f"the OAuth server returned an id_token codexgw cannot read ({e})") from None
    if not identity.chatgpt_account_id:
        await _revoke_quietly(http, auth_url, tokens.refresh_token)
        raise LoginError("the login has no ChatGPT account (no chatgpt_account_id claim in the id_token)")
    if name is not None:
        holder = await trio.to_thread.run_sync(store.get_account, name)
        if holder is not None and holder.chatgpt_account_id != identity.chatgpt_account_id:
            await _revoke_quietly(http, auth_url, tokens.refresh_token)
            raise LoginError(
                f"you signed in as {identity.email or identity.chatgpt_account_id}, but name '{name}' is "
                f"already used by another account ({holder.email or holder.chatgpt_account_id}); sign in "
                "as that one to renew it, or pick another --name"
            )
    api_key = None
    if api_key_exchange:
        spec = build_api_key_exchange_request(auth_url, tokens.id_token)
        try:
            response = await request(
                http,
                spec.method,
                spec.url,
                peer=OAUTH_SERVER,
                headers=spec.headers,
                content=spec.body_bytes(),
            )
            api_key = parse_api_key_exchange_response(response.status_code, response.content)
        except UpstreamConnectionError:
            api_key = None
    token_set = TokenSet(
        id_token=tokens.id_token,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        account_id=identity.chatgpt_account_id,
        api_key=api_key,
        last_refresh=clock(),
    )
    names = {a.id: a.name for a in await trio.to_thread.run_sync(store.list_accounts)}
    try:
        account, created = await trio.to_thread.run_sync(
            lambda: store.upsert_account(token_set, name=name, now=clock())
        )
    except StoreError as e:
        await _revoke_quietly(http, auth_url, tokens.refresh_token)
        raise LoginError(str(e)) from None
    before = names.get(account.id)
    return LoginResult(
        account=account,
        created=created,
        api_key_stored=api_key is not None,
        renamed_from=before if before is not None and before != account.name else None,
    )


async def _revoke_quietly(http: httpx.AsyncClient, auth_url: str, refresh_token: str) -> None:
    """Revoke a login we could not store (§3 revoke; failures ignored)."""
    spec = build_revoke_request(auth_url, refresh_token=refresh_token)
    try:
        with trio.move_on_after(10):
            await request(
                http, spec.method, spec.url, peer=OAUTH_SERVER, headers=spec.headers, json=spec.json
            )
    except UpstreamConnectionError:
        pass


def browser_available() -> bool:
    """True when a local browser can plausibly be opened (macOS, Windows, or a graphical session)."""
    if sys.platform in ("darwin", "win32"):
        return True
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


class _Attempt:
    """The outcome of one login: set once, by the first code that exchanges or the first failure."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: LoginResult | None = None
        self.error: str | None = None
        self.via_browser = False
        """The deciding code came through the listener (so the browser will fetch ``/success``)."""
        self.lock = trio.Lock()

    def fail(self, message: str) -> None:
        if not self.done.is_set():
            self.error = message
            self.done.set()


async def pkce_login(
    http: httpx.AsyncClient,
    store: Store,
    *,
    auth_url: str,
    name: str | None,
    say: Say,
    port: int = 1455,
    timeout_s: float = 300.0,
    open_browser: bool = True,
    read_paste: Callable[[], Awaitable[str | None]] | None = None,
    api_key_exchange: bool = False,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> LoginResult:
    """Run the browser login of codex-protocol.md §1 and store the account.

    Args:
        port: the callback port (1455 is the one registered for the Codex client; 0 = any, for tests).
        timeout_s: give up after this many seconds.
        open_browser: try to open a browser (only if :func:`browser_available`).
        read_paste: returns the next line the user pasted, or ``None`` at end of input; ``None``
            disables the paste fallback.
        task_status: reports the authorize URL once the listener is up (tests play the browser).

    Raises:
        LoginError: port busy, timeout, ``error=…`` from the issuer, failed exchange, name clash.
    """
    verifier = pkce.generate_code_verifier()
    state = pkce.generate_state()
    try:
        listeners = await bind_callback(port)
    except PortInUseError as e:
        raise LoginError(e.strerror) from None
    except OSError as e:
        raise LoginError(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}") from None
    bound = listeners[0].socket.getsockname()[1]
    redirect_uri = f"http://localhost:{bound}/auth/callback"
    url = pkce.build_authorize_url(
        auth_url, redirect_uri=redirect_uri, code_challenge=pkce.code_challenge_s256(verifier), state=state
    )
    attempt = _Attempt()

    async def on_code(code: str, *, via_browser: bool = True) -> str | None:
        async with attempt.lock:
            if attempt.done.is_set():
                return attempt.error or None
            attempt.via_browser = via_browser
            try:
                tokens = await exchange_code(
                    http, auth_url=auth_url, code=code, redirect_uri=redirect_uri, code_verifier=verifier
                )
                attempt.result = await finish_login(
                    http,
                    store,
                    tokens,
                    auth_url=auth_url,
                    name=name,
                    api_key_exchange=api_key_exchange,
                    clock=clock,
                )
            except LoginError as e:
                attempt.fail(str(e))
                return str(e)
            attempt.done.set()
            return None

    server = CallbackServer(expected_state=state, on_code=on_code, on_failure=attempt.fail)
    with trio.move_on_after(timeout_s) as timeout:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, listeners)
            say("Sign in to ChatGPT in a browser at this URL:")
            say("")
            say(f"  {url}")
            say("")
            opened = False
            if open_browser and browser_available():
                opened = bool(await trio.to_thread.run_sync(webbrowser.open, url))
            if not opened:
                say(
                    f"No browser opened here. On a remote machine, forward the callback port first "
                    f"(ssh -L {bound}:127.0.0.1:{bound} <this host>), then open the URL locally."
                )
            if read_paste is not None:
                say(
                    "Or, after signing in, paste the full http://localhost:… URL from the browser's "
                    "address bar here (even if the page did not load) and press Enter."
                )
                nursery.start_soon(_paste_loop, read_paste, state, on_code, attempt, say)
            say(f"Waiting up to {timeout_s:.0f} s for the sign-in to finish…")
            task_status.started(url)
            await attempt.done.wait()
            if attempt.result is not None and attempt.via_browser:
                with trio.move_on_after(SUCCESS_GRACE_S):
                    await server.success_served.wait()
            nursery.cancel_scope.cancel()
    if timeout.cancelled_caught and not attempt.done.is_set():
        raise LoginError(f"timed out after {timeout_s:.0f} s waiting for the browser sign-in")
    if attempt.result is None:
        raise LoginError(attempt.error or "login failed")
    return attempt.result


async def _paste_loop(
    read_paste: Callable[[], Awaitable[str | None]],
    state: str,
    on_code: Callable[..., Awaitable[str | None]],
    attempt: _Attempt,
    say: Say,
) -> None:
    """Accept redirect URLs pasted on stdin until one decides the login (or input ends)."""
    while not attempt.done.is_set():
        line = await read_paste()
        if line is None:
            return
        line = line.strip()
        if not line:
            continue
        query = urlsplit(line).query if "://" in line else line.lstrip("?")
        result = pkce.parse_callback(query, state)
        if result.kind == "state_mismatch":
            say("That URL does not belong to this login (state mismatch); paste the URL of this sign-in.")
        elif result.kind == "error":
            attempt.fail(result.message or "sign-in failed")
        else:
            assert result.code is not None
            await on_code(result.code, via_browser=False)
