"""Logins started through the admin API: device code and browser (PKCE), as tasks of the serve nursery.

``POST /api/logins/device`` starts :func:`codexgw.auth.device.device_login` in the serve nursery and
answers once the user code is known; ``POST /api/logins/pkce`` starts
:func:`codexgw.auth.login.pkce_login`, whose callback listener (``127.0.0.1:1455``,
``Settings.login_callback_port``) is up only while that login waits, and answers with the authorize
URL; ``POST /api/logins/{id}/redirect`` hands it a redirect URL pasted from the browser (for a
gateway on another machine). Either ends by storing the account (``finish_login``); an account
*created* by a member's login is owned by that member (a member's login of an account already
stored keeps that account's owner); an admin's login is unowned unless ``owner`` was given. Each status change is
a ``login`` event; logins are kept in memory (the last :data:`KEEP` of them).

Statuses: ``pending`` → ``approved`` (with ``account``) | ``failed`` (with ``error``) |
``expired`` (the code or the wait ran out).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from codexgw.errors import ConflictError, InvalidRequestError, NotFoundError
from codexgw.policy.access import Principal
from codexgw.policy.fields import FieldError, check_name
from codexgw.store.audit import Audit, record
from codexgw.store.users import get_user, set_account_owner

if TYPE_CHECKING:
    from codexgw.auth.login import LoginResult
    from codexgw.upstream.gateway import Gateway

__all__ = ["KEEP", "PKCE_TIMEOUT_S", "Login", "Logins"]

log = logging.getLogger("codexgw.upstream.logins")

KEEP = 100
"""Logins remembered (finished ones beyond this are forgotten, oldest first)."""
PKCE_TIMEOUT_S = 600.0
"""How long a browser login started through the API waits, seconds."""
PROMPT_TIMEOUT_S = 30.0
"""How long ``POST /api/logins/device`` waits for the OAuth server's user code, seconds."""


@dataclass(eq=False)
class Login:
    """One login started through the API (its public fields are :meth:`public`)."""

    id: str
    kind: str
    starter: Principal
    name: str | None
    owner: str | None
    created_at: float
    expires_at: float
    status: str = "pending"
    user_code: str | None = None
    verification_uri: str | None = None
    authorize_url: str | None = None
    account: str | None = None
    error: str | None = None
    decided: trio.Event = field(default_factory=trio.Event)
    paste: trio.MemorySendChannel[str] | None = None

    def public(self, now: float) -> dict[str, Any]:
        """``{"id", "kind", "status", "expires_at", "name", "owner", ...}`` plus ``user_code``,
        ``verification_uri``, ``expires_in`` (device), ``authorize_url`` (pkce), ``account``
        (approved), ``error`` (failed, expired)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "expires_at": self.expires_at,
            "name": self.name,
            "owner": self.owner,
        }
        if self.kind == "device":
            out.update(
                user_code=self.user_code,
                verification_uri=self.verification_uri,
                expires_in=max(0, round(self.expires_at - now)),
            )
        else:
            out["authorize_url"] = self.authorize_url
        if self.account is not None:
            out["account"] = self.account
        if self.error is not None:
            out["error"] = self.error
        return out


class Logins:
    """The logins of one ``serve`` (see the module docstring).

    Args:
        gw: the gateway (its HTTP client, store, settings, nursery and events).
        clock: epoch seconds.
    """

    def __init__(self, gw: Gateway, *, clock: Callable[[], float] = time.time) -> None:
        self.gw = gw
        self.clock = clock
        self._logins: dict[str, Login] = {}

    # -- starting -----------------------------------------------------------------------------------

    async def _new(self, principal: Principal, kind: str, body: dict[str, Any], ttl_s: float) -> Login:
        name = body.get("name")
        owner = body.get("owner")
        try:
            if name is not None:
                check_name(name, what="the account name")
            if owner is not None:
                check_name(owner, param="owner", what="owner")
        except FieldError as exc:
            raise InvalidRequestError(str(exc), param=exc.param) from None
        if not principal.is_admin:
            if owner is not None and owner != principal.user:
                raise InvalidRequestError("a member's logins are their own; leave owner out", param="owner")
            owner = principal.user
        elif (
            owner is not None
            and await trio.to_thread.run_sync(lambda: get_user(self.gw.store, owner)) is None
        ):
            raise InvalidRequestError(f"no user named '{owner}'", param="owner")
        now = self.clock()
        login = Login(secrets.token_urlsafe(12), kind, principal, name, owner, now, now + ttl_s)
        self._logins[login.id] = login
        self._forget_old()
        return login

    async def start_device(self, principal: Principal, body: dict[str, Any]) -> Login:
        """Start a device-code login (codex-protocol.md §2); returns once the user code is known.

        Raises:
            InvalidRequestError: a bad ``name`` or ``owner``.
            UpstreamError: the OAuth server gave no user code (device login off, unreachable).
        """
        from codexgw.auth.device import DEVICE_CODE_TTL_S

        login = await self._new(principal, "device", body, DEVICE_CODE_TTL_S)
        prompted = trio.Event()
        self.gw.nursery.start_soon(self._run_device, login, prompted)
        with trio.move_on_after(PROMPT_TIMEOUT_S):
            await prompted.wait()
        if login.status != "pending" and login.user_code is None:
            from codexgw.errors import UpstreamError

            raise UpstreamError(f"the device login could not start: {login.error}")
        return login

    async def start_pkce(self, principal: Principal, body: dict[str, Any]) -> Login:
        """Start a browser login (codex-protocol.md §1); returns with the authorize URL.

        Raises:
            ConflictError: another browser login is waiting (it holds the callback port).
            InvalidRequestError: a bad ``name`` or ``owner``.
        """
        if any(x.kind == "pkce" and x.status == "pending" for x in self._logins.values()):
            raise ConflictError(
                "another browser login is waiting for its sign-in; finish or let it expire first"
            )
        login = await self._new(principal, "pkce", body, PKCE_TIMEOUT_S)
        try:
            login.authorize_url = await self.gw.nursery.start(self._run_pkce, login)
        except Exception as exc:  # the callback port is taken: nothing waits
            while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
                exc = exc.exceptions[0]  # type: ignore[assignment]
            self._decide(login, "failed", error=str(exc))
            raise ConflictError(str(exc)) from None
        return login

    # -- reading and pasting ----------------------------------------------------------------------

    def get(self, principal: Principal, login_id: str) -> Login:
        """The login ``login_id`` if ``principal`` started it (or is an admin); else 404."""
        login = self._logins.get(login_id)
        mine = login is not None and principal.user is not None and login.starter.user == principal.user
        if login is None or not (principal.is_admin or mine):
            raise NotFoundError(f"no login with id '{login_id}'")
        return login

    async def redirect(self, principal: Principal, login_id: str, url: Any) -> Login:
        """Hand a browser login the redirect URL pasted from the address bar; returns once decided
        (or after a few seconds, still pending)."""
        login = self.get(principal, login_id)
        if login.kind != "pkce":
            raise InvalidRequestError("only a browser (pkce) login takes a redirect URL", param="url")
        if not isinstance(url, str) or not url.strip():
            raise InvalidRequestError(
                "url must be the http://localhost:1455/auth/callback?... URL", param="url"
            )
        if login.status == "pending" and login.paste is not None:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                login.paste.send_nowait(url.strip())
            with trio.move_on_after(10):
                await login.decided.wait()
        return login

    # -- the tasks -----------------------------------------------------------------------------------

    async def _run_device(self, login: Login, prompted: trio.Event) -> None:
        from codexgw.auth.device import DevicePrompt, device_login
        from codexgw.auth.login import LoginError, finish_login

        gw = self.gw

        def on_prompt(prompt: DevicePrompt) -> None:
            login.user_code, login.verification_uri = prompt.user_code, prompt.verification_url
            login.expires_at = prompt.expires_at
            prompted.set()

        try:
            tokens = await device_login(
                gw.http, auth_url=gw.settings.auth_url, on_prompt=on_prompt, clock=self.clock
            )
            result = await finish_login(
                gw.http, gw.store, tokens, auth_url=gw.settings.auth_url, name=login.name, clock=self.clock
            )
        except LoginError as exc:
            self._failed(login, str(exc))
            return
        except Exception as exc:  # a bug must not end the serve nursery
            log.exception("device login %s failed", login.id)
            self._failed(login, f"the login failed ({type(exc).__name__})")
            return
        finally:
            prompted.set()
        await self._approved(login, result)

    async def _run_pkce(
        self, login: Login, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        from codexgw.auth.login import LoginError, pkce_login

        gw = self.gw
        send, receive = trio.open_memory_channel[str](4)
        login.paste = send

        async def read_paste() -> str | None:
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                return None

        started = False

        def report(url: str) -> None:
            nonlocal started
            started = True
            task_status.started(url)

        class _Status:
            def started(self, value: str) -> None:
                report(value)

        try:
            result = await pkce_login(
                gw.http,
                gw.store,
                auth_url=gw.settings.auth_url,
                name=login.name,
                say=lambda line: None,
                port=gw.settings.login_callback_port,
                timeout_s=PKCE_TIMEOUT_S,
                open_browser=False,
                read_paste=read_paste,
                clock=self.clock,
                task_status=_Status(),  # type: ignore[arg-type]
            )
        except LoginError as exc:
            if not started:
                raise
            self._failed(login, str(exc))
            return
        except Exception as exc:  # a bug must not end the serve nursery
            if not started:
                raise
            log.exception("browser login %s failed", login.id)
            self._failed(login, f"the login failed ({type(exc).__name__})")
            return
        finally:
            send.close()
        await self._approved(login, result)

    # -- outcomes ------------------------------------------------------------------------------------

    def _decide(
        self, login: Login, status: str, *, account: str | None = None, error: str | None = None
    ) -> None:
        login.status, login.account, login.error = status, account, error
        login.decided.set()
        self.gw.teams.events.publish(
            "login", login.public(self.clock()), owners=(login.starter.user, login.owner)
        )

    def _failed(self, login: Login, message: str) -> None:
        expired = self.clock() >= login.expires_at or "expired" in message or "timed out" in message
        self._decide(login, "expired" if expired else "failed", error=message)

    async def _approved(self, login: Login, result: LoginResult) -> None:
        gw, account = self.gw, result.account
        audit = Audit(
            login.starter.actor,
            "login.approved",
            account.name,
            {"kind": login.kind, "created": result.created, "owner": login.owner},
        )
        try:
            if login.owner is not None and (result.created or login.starter.is_admin):
                await trio.to_thread.run_sync(
                    lambda: set_account_owner(
                        gw.store, account.name, login.owner, now=self.clock(), audit=audit
                    )
                )
            else:
                await trio.to_thread.run_sync(lambda: record(gw.store, audit, now=self.clock()))
            await gw.account_state.reload()
        except Exception as exc:  # the account is stored; only the owner could not be set
            log.warning("login %s: could not finish the account %s: %s", login.id, account.name, exc)
        self._decide(login, "approved", account=account.name)

    def _forget_old(self) -> None:
        if len(self._logins) <= KEEP:
            return
        for login_id, login in list(self._logins.items()):
            if len(self._logins) <= KEEP:
                break
            if login.status != "pending":
                del self._logins[login_id]
