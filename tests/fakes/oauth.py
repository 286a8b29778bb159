"""The fake OpenAI OAuth issuer: ``/oauth/token``, ``/oauth/authorize``, ``/oauth/revoke`` and the
device-code endpoints (codex-protocol.md §1-§3, §11).

Error bodies follow the real issuer: refresh failures use the OpenAI envelope
``{"error": {"message", "type", "param", "code"}}``; code-exchange failures the OAuth form
``{"error": "<code>", "error_description": "..."}`` (clients must read both, §1).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import jwt
from .devices import pkce_challenge
from .http import Request, Responder
from .state import FakeUpstream, TokenRequest

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"

REFRESH_ERRORS = {
    "reused": (
        "Your refresh token has already been used to generate a new access token. "
        "Please try signing in again.",
        "refresh_token_reused",
    ),
    "revoked": (
        "Your refresh token has been invalidated. Please try signing in again.",
        "refresh_token_invalidated",
    ),
    "invalid": (
        "Could not validate your refresh token. Please try signing in again.",
        "invalid_refresh_token",
    ),
}


def _openai_error(message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def _oauth_error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}


class OAuth:
    """Handlers for the issuer paths; ``handle`` returns False for a path it does not own."""

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake

    async def handle(self, request: Request, resp: Responder) -> bool:
        routes = {
            "/oauth/token": ("POST", self.token),
            "/oauth/authorize": ("GET", self.authorize),
            "/oauth/revoke": ("POST", self.revoke),
            "/api/accounts/deviceauth/usercode": ("POST", self.device_usercode),
            "/api/accounts/deviceauth/token": ("POST", self.device_token),
        }
        route = routes.get(request.path)
        if route is None:
            return False
        if request.method != route[0]:
            await resp.json(405, {"detail": "Method Not Allowed"})
        else:
            await route[1](request, resp)
        return True

    # ------------------------------------------------------------------ /oauth/token

    def _params(self, request: Request) -> dict[str, Any] | None:
        """The token request's fields: JSON or form (codex-protocol.md §3), None if neither."""
        if request.content_type == "application/x-www-form-urlencoded":
            return request.form()
        try:
            data = request.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def token(self, request: Request, resp: Responder) -> None:
        """``POST /oauth/token``. A :class:`TokenRequest` is recorded on arrival (outcome
        ``pending``) and completed when the answer is known, so tests can wait for arrivals."""
        params = self._params(request)
        grant = params.get("grant_type") if params else None
        token = params.get("refresh_token") if params and grant == "refresh_token" else None
        entry = TokenRequest(
            grant if isinstance(grant, str) else None, token if isinstance(token, str) else None, "pending", 0
        )
        self.fake.record(entry)
        if params is None or not isinstance(grant, str):
            self.fake.finish_token_request(entry, "bad_request", 400)
            await resp.json(400, _oauth_error("invalid_request", "Missing or malformed grant_type"))
            return
        if grant == "refresh_token":
            await self._refresh(params, resp, entry)
            return
        if request.content_type != "application/x-www-form-urlencoded":
            self.fake.finish_token_request(entry, "bad_request", 400)
            await resp.json(400, _oauth_error("invalid_request", "Expected a form-encoded body"))
            return
        if params.get("client_id") != jwt.CLIENT_ID:
            self.fake.finish_token_request(entry, "bad_client", 401)
            await resp.json(401, _oauth_error("invalid_client", "Client authentication failed"))
            return
        if grant == "authorization_code":
            await self._authorization_code(params, resp, entry)
        elif grant == TOKEN_EXCHANGE:
            await self._token_exchange(params, resp, entry)
        else:
            self.fake.finish_token_request(entry, "bad_request", 400)
            await resp.json(400, _oauth_error("unsupported_grant_type", f"Unsupported grant_type {grant}"))

    async def _refresh(self, params: dict[str, Any], resp: Responder, entry: TokenRequest) -> None:
        """Single-use refresh-token rotation (codex-protocol.md §3)."""
        fake = self.fake
        token = params.get("refresh_token")
        token = token if isinstance(token, str) else None
        if params.get("client_id") != jwt.CLIENT_ID:
            fake.finish_token_request(entry, "bad_client", 401)
            await resp.json(401, _openai_error("Unknown or invalid client_id.", "invalid_client"))
            return
        if not token:
            fake.finish_token_request(entry, "bad_request", 400)
            await resp.json(
                400, _openai_error("Missing required parameter: 'refresh_token'.", "invalid_request")
            )
            return
        if fake.refresh_gate is not None:
            fake.refresh_waiting += 1
            fake.notify()
            try:
                await fake.refresh_gate.wait()
            finally:
                fake.refresh_waiting -= 1
        scripted = fake.pop_refresh_failure()
        if scripted is not None:
            status, body = scripted
            fake.finish_token_request(entry, "scripted", status)
            if isinstance(body, dict | list):
                await resp.json(status, body)
            else:
                data = body.encode() if isinstance(body, str) else bytes(body)
                await resp.raw(status, data, "text/plain; charset=utf-8")
            return
        account, outcome = fake.use_refresh_token(token)
        account_id = account.chatgpt_account_id if account else None
        if outcome != "ok" or account is None:
            fake.finish_token_request(entry, outcome, 401, account_id)
            await resp.json(401, _openai_error(*REFRESH_ERRORS[outcome]))
            return
        fake.finish_token_request(entry, "ok", 200, account_id)
        if fake.refresh_answer_gate is not None:  # rotated: the old refresh token is spent already
            fake.refresh_answering += 1
            fake.notify()
            try:
                await fake.refresh_answer_gate.wait()
            finally:
                fake.refresh_answering -= 1
        await resp.json(
            200,
            {
                "access_token": account.access_token,
                "expires_in": int(account.access_ttl_s),
                "id_token": account.id_token,
                "refresh_token": account.refresh_token,
                "scope": "openid profile email offline_access",
                "token_type": "bearer",
            },
        )

    async def _authorization_code(self, params: dict[str, Any], resp: Responder, entry: TokenRequest) -> None:
        """Code + PKCE exchange (codex-protocol.md §1 "Token exchange", §2 step 4)."""
        fake = self.fake
        scripted = fake.pop_code_failure()
        if scripted is not None:
            status, body = scripted
            fake.finish_token_request(entry, "scripted", status)
            if isinstance(body, dict | list):
                await resp.json(status, body)
            else:
                data = body.encode() if isinstance(body, str) else bytes(body)
                await resp.raw(status, data, "text/plain; charset=utf-8")
            return
        code = fake.auth_codes.get(params.get("code", ""))

        async def reject(why: str) -> None:
            fake.finish_token_request(entry, "invalid", 400)
            await resp.json(400, _oauth_error("invalid_grant", why))

        if code is None or code["used"] or fake.clock() >= code["expires_at"]:
            if code is not None:
                code["used"] = True
            await reject("The authorization code is invalid, expired or was already used.")
            return
        code["used"] = True  # a failed attempt burns the code too
        if params.get("redirect_uri") != code["redirect_uri"]:
            await reject("The redirect_uri does not match the one used in the authorization request.")
            return
        verifier = params.get("code_verifier") or ""
        if not verifier or pkce_challenge(verifier) != code["code_challenge"]:
            await reject("The PKCE code_verifier does not match the code_challenge.")
            return
        account = code["account"]
        fake.mint_tokens(account, family=jwt.random_id("login_"))
        fake.finish_token_request(entry, "ok", 200, account.chatgpt_account_id)
        await resp.json(
            200,
            {
                "access_token": account.access_token,
                "expires_in": int(account.access_ttl_s),
                "id_token": account.id_token,
                "refresh_token": account.refresh_token,
                "scope": code["scope"],
                "token_type": "bearer",
            },
        )

    async def _token_exchange(self, params: dict[str, Any], resp: Responder, entry: TokenRequest) -> None:
        """id_token → API key exchange (codex-protocol.md §1, optional step)."""
        account = self.fake.account_for_id_token(params.get("subject_token", ""))
        ok = (
            account is not None
            and params.get("requested_token") == "openai-api-key"
            and params.get("subject_token_type") == ID_TOKEN_TYPE
        )
        if not ok or account is None:
            self.fake.finish_token_request(entry, "invalid", 400)
            await resp.json(400, _oauth_error("invalid_request", "Invalid token exchange request"))
            return
        self.fake.finish_token_request(entry, "ok", 200, account.chatgpt_account_id)
        await resp.json(200, {"access_token": "sk-fake-" + jwt.b64url(account.chatgpt_account_id.encode())})

    # ------------------------------------------------------------------ /oauth/authorize

    def _redirect_allowed(self, uri: str) -> bool:
        parts = urlsplit(uri)
        try:
            port = parts.port
        except ValueError:
            return False
        ports = self.fake.redirect_ports
        return (
            parts.scheme == "http"
            and parts.hostname == "localhost"
            and parts.path == "/auth/callback"
            and not parts.query
            and port is not None
            and (ports is None or port in ports)
        )

    async def authorize(self, request: Request, resp: Responder) -> None:
        """Validate the §1 query, then "log the user in" and redirect with a code (§1)."""
        q = request.query
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != jwt.CLIENT_ID or not self._redirect_allowed(redirect_uri):
            body = b"<html><body><h1>Invalid authorization request</h1>unknown client or redirect_uri"
            await resp.raw(400, body, "text/html; charset=utf-8")
            return

        async def fail(error: str, description: str) -> None:
            query = {"error": error, "error_description": description}
            if q.get("state"):
                query["state"] = q["state"]
            await resp.redirect(f"{redirect_uri}?{urlencode(query)}")

        scopes = q.get("scope", "").split()
        if q.get("response_type") != "code":
            await fail("unsupported_response_type", "response_type must be 'code'")
        elif not {"openid", "offline_access"} <= set(scopes):
            await fail("invalid_scope", "scope must include openid and offline_access")
        elif not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
            await fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
        elif len(q.get("state", "")) < 8:
            await fail("invalid_state", "The state is missing or does not have enough characters")
        elif self.fake.authorize_error is not None:
            await fail(self.fake.authorize_error, "The user denied the request")
        elif self.fake.authorize_account is None:
            await fail("access_denied", "No account is signed in")
        else:
            scope = " ".join(scopes)
            code = self.fake.issue_auth_code(
                self.fake.authorize_account,
                code_challenge=q["code_challenge"],
                redirect_uri=redirect_uri,
                scope=scope,
            )
            await resp.redirect(
                f"{redirect_uri}?{urlencode({'code': code, 'scope': scope, 'state': q['state']})}"
            )

    # ------------------------------------------------------------------ /oauth/revoke

    async def revoke(self, request: Request, resp: Responder) -> None:
        """Token revocation (codex-protocol.md §3): 200 for any well-formed request (RFC 7009)."""
        try:
            body = request.json()
        except ValueError:
            body = request.form() if request.content_type.endswith("form-urlencoded") else None
        if not isinstance(body, dict) or not isinstance(body.get("token"), str):
            await resp.json(400, _oauth_error("invalid_request", "Missing token"))
            return
        known = self.fake.revoke(body["token"])
        self.fake.revocations.append({**body, "known": known})
        self.fake.notify()
        await resp.json(200, {})

    # ------------------------------------------------------------------ device code (§2)

    async def device_usercode(self, request: Request, resp: Responder) -> None:
        if not self.fake.device_login_enabled:
            await resp.json(404, {"detail": "Not Found"})
            return
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("client_id") != jwt.CLIENT_ID:
            await resp.json(400, _openai_error("Invalid client_id.", "invalid_client"))
            return
        auth = self.fake.devices.create()
        self.fake.notify()
        await resp.json(
            200,
            {
                "device_auth_id": auth.device_auth_id,
                "user_code": auth.user_code,
                "interval": self.fake.device_interval,
            },
        )

    async def device_token(self, request: Request, resp: Responder) -> None:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            await resp.json(400, _openai_error("Expected a JSON body.", "invalid_request"))
            return
        status, payload = self.fake.devices.poll(
            body.get("device_auth_id"), body.get("user_code"), request.origin
        )
        await resp.json(status, payload)
