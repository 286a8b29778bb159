"""The fake Codex backend under ``/backend-api`` (codex-protocol.md §6-§8).

Every endpoint requires a live bearer access token and a matching ``ChatGPT-Account-ID``.
``POST /codex/responses`` validates the body (:mod:`tests.fakes.validate`), then plays the next
scripted behaviour of that account: an SSE stream, a pre-stream HTTP error, or a cut connection.
"""

from __future__ import annotations

import json
import math
from typing import Any

import trio

from . import jwt, models, sse
from .behaviours import (
    DEFAULT_TEXT,
    Behaviour,
    CustomToolCall,
    DropMidStream,
    Failed,
    Forbidden,
    Hold,
    Incomplete,
    Refusal,
    ServerError,
    Text,
    ToolCall,
    Unauthorized,
    UsageLimit,
    UsageNotIncluded,
)
from .http import Request, Responder
from .state import (
    PRIMARY_WINDOW_MINUTES,
    SECONDARY_WINDOW_MINUTES,
    FakeAccount,
    FakeUpstream,
    RecordedRequest,
)
from .validate import check_responses_body, detail


def _auth_error(message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}


def authenticate(fake: FakeUpstream, request: Request) -> tuple[FakeAccount | None, dict[str, Any]]:
    """Check ``Authorization: Bearer`` and ``ChatGPT-Account-ID`` (codex-protocol.md §6.2).

    Returns (account, {}) or (None, 401 body).
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, _auth_error("Missing bearer or basic authentication in header", None)
    account, why = fake.account_for_access_token(token.strip())
    if account is None:
        if why == "expired":
            return None, _auth_error(
                "Provided authentication token is expired. Please try signing in again.", "token_expired"
            )
        return None, _auth_error(
            "Could not parse your authentication token. Please try signing in again.", "invalid_token"
        )
    header = request.headers.get("chatgpt-account-id")
    if header != account.chatgpt_account_id:
        return None, _auth_error(
            "The ChatGPT-Account-ID header is missing or does not match the authenticated account.",
            "account_mismatch",
        )
    return account, {}


def rate_limit_headers(fake: FakeAccount, now: float) -> list[tuple[str, str]]:
    """``x-codex-*`` rate-limit and credit headers for an account (codex-protocol.md §8.1)."""
    headers: list[tuple[str, str]] = []
    for name, minutes, used in (
        ("primary", PRIMARY_WINDOW_MINUTES, fake.primary_used_percent),
        ("secondary", SECONDARY_WINDOW_MINUTES, fake.secondary_used_percent),
    ):
        reset_at = _window_reset_at(now, minutes)
        if name == "primary" and fake.limited_until is not None:
            reset_at = int(fake.limited_until)
        headers += [
            (f"x-codex-{name}-used-percent", f"{used:g}"),
            (f"x-codex-{name}-window-minutes", str(minutes)),
            (f"x-codex-{name}-reset-at", str(reset_at)),
            (f"x-codex-{name}-reset-after-seconds", str(max(0, reset_at - int(now)))),
        ]
    headers += [
        ("x-codex-primary-over-secondary-limit-percent", "0"),
        ("x-codex-credits-has-credits", "false"),
        ("x-codex-credits-unlimited", "false"),
        ("x-codex-credits-balance", "0"),
    ]
    return headers


def _window_reset_at(now: float, minutes: int) -> int:
    window_s = minutes * 60
    return (int(now) // window_s + 1) * window_s


class Backend:
    """Request handlers for ``/backend-api/...``; ``handle`` returns False for an unknown path."""

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake

    async def handle(self, request: Request, record: RecordedRequest, resp: Responder) -> bool:
        routes = {
            "/backend-api/codex/responses": ("POST", self.responses),
            "/backend-api/codex/responses/compact": ("POST", self.compact),
            "/backend-api/codex/models": ("GET", self.models),
            "/backend-api/wham/usage": ("GET", self.usage),
        }
        route = routes.get(request.path.rstrip("/"))
        if route is None:
            return False
        method, handler = route
        if request.method != method:
            await resp.json(405, {"detail": "Method Not Allowed"})
            return True
        if request.path.endswith("/codex/responses") and self.fake.responses_gate is not None:
            await self.fake.responses_gate.wait()
        account, error = authenticate(self.fake, request)
        if account is None:
            await resp.json(401, error)
            return True
        record.account_id = account.chatgpt_account_id
        await handler(request, record, resp, account)
        return True

    # ------------------------------------------------------------------ simple endpoints

    async def models(
        self, request: Request, record: RecordedRequest, resp: Responder, account: FakeAccount
    ) -> None:
        """``GET /codex/models?client_version=X`` (codex-protocol.md §6.1)."""
        if not request.query.get("client_version"):
            await resp.json(400, {"detail": "client_version is required"})
            return
        await resp.json(200, models.catalogue(), [("etag", models.etag())])

    async def usage(
        self, request: Request, record: RecordedRequest, resp: Responder, account: FakeAccount
    ) -> None:
        """``GET /wham/usage``: the account's windows and credits (codex-protocol.md §6.1)."""
        now = self.fake.clock()
        limited = self.fake.usage_limited(account) or account.limited_until is not None
        windows = {}
        for name, minutes, used in (
            ("primary_window", PRIMARY_WINDOW_MINUTES, account.primary_used_percent),
            ("secondary_window", SECONDARY_WINDOW_MINUTES, account.secondary_used_percent),
        ):
            reset_at = _window_reset_at(now, minutes)
            if name == "primary_window" and account.limited_until is not None:
                reset_at = int(account.limited_until)
            windows[name] = {
                "used_percent": math.ceil(used),
                "limit_window_seconds": minutes * 60,
                "reset_after_seconds": max(0, reset_at - int(now)),
                "reset_at": reset_at,
            }
        body: dict[str, Any] = {
            "plan_type": account.plan_type,
            "rate_limit": {"allowed": not limited, "limit_reached": limited, **windows},
            "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
        }
        if limited:
            body["rate_limit_reached_type"] = {"type": "rate_limit_reached"}
        await resp.json(200, body)

    async def compact(
        self, request: Request, record: RecordedRequest, resp: Responder, account: FakeAccount
    ) -> None:
        """``POST /codex/responses/compact``: ``{"output": [summary message]}`` (§6.1).

        A usage-limited account answers 429; a queued pre-stream failure (``UsageLimit``,
        ``ServerError``, ``Unauthorized``) at the head of the account's script is played here too.
        """
        if self.fake.usage_limited(account):
            await self._usage_limit(request, resp, account, UsageLimit(resets_in_s=0))
            return
        if account.behaviours and isinstance(account.behaviours[0], UsageLimit | ServerError | Unauthorized):
            await self._play(request, resp, account, account.behaviours.popleft())
            return
        body = record.json
        if not isinstance(body, dict) or body.get("model") not in models.SLUGS:
            model = body.get("model") if isinstance(body, dict) else None
            await resp.json(
                *detail(f"The '{model}' model is not supported when using Codex with a ChatGPT account.")
            )
            return
        if not isinstance(body.get("input"), list):
            await resp.json(*detail("Input must be a list"))
            return
        summary = f"Summary of the conversation so far ({len(body['input'])} items, compacted by the fake)."
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": summary}],
        }
        await resp.json(200, {"output": [item]})

    # ------------------------------------------------------------------ /codex/responses

    async def responses(
        self, request: Request, record: RecordedRequest, resp: Responder, account: FakeAccount
    ) -> None:
        """``POST /codex/responses`` (codex-protocol.md §6.3, §7, §8)."""
        if record.json is None:
            await resp.json(*detail("Request body is not valid JSON"))
            return
        rejection = check_responses_body(record.json)
        if rejection is not None:
            await resp.json(*rejection)
            return
        account.responses_count += 1
        if self.fake.usage_limited(account):
            await self._usage_limit(request, resp, account, UsageLimit(resets_in_s=0))
            return
        await self._play(request, resp, account, self.fake.next_behaviour(account))

    async def _play(
        self, request: Request, resp: Responder, account: FakeAccount, behaviour: Behaviour
    ) -> None:
        if isinstance(behaviour, Hold):
            behaviour.reached.set()
            self.fake.notify()
            then = behaviour.then or Text(DEFAULT_TEXT)
            if not behaviour.after_headers:
                await behaviour.release.wait()
                await self._play(request, resp, account, then)
            else:
                await self._stream(
                    request, resp, account, then, hold=behaviour.release, hold_at=behaviour.after_events
                )
        elif isinstance(behaviour, UsageLimit):
            await self._usage_limit(request, resp, account, behaviour)
        elif isinstance(behaviour, Unauthorized):
            await resp.json(
                401, _auth_error(behaviour.message, behaviour.code), self._common_headers(request)
            )
        elif isinstance(behaviour, ServerError):
            await self._server_error(request, resp, behaviour.status)
        elif isinstance(behaviour, Forbidden | UsageNotIncluded):
            await self._account_refusal(request, resp, account, behaviour)
        else:
            await self._stream(request, resp, account, behaviour)

    def _common_headers(self, request: Request) -> list[tuple[str, str]]:
        return [("x-request-id", jwt.random_id("req_", 16)), ("cf-ray", jwt.random_id("", 8) + "-SJC")]

    async def _usage_limit(
        self, request: Request, resp: Responder, account: FakeAccount, limit: UsageLimit
    ) -> None:
        """HTTP 429 ``usage_limit_reached`` (codex-protocol.md §8.1, §8.2)."""
        now = self.fake.clock()
        if account.limited_until is None or limit.resets_in_s:
            account.limited_until = now + limit.resets_in_s
        account.primary_used_percent = 100.0
        resets_at = math.ceil(account.limited_until)
        body = {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": limit.plan_type or account.plan_type,
                "resets_at": resets_at,
                "resets_in_seconds": max(0, resets_at - int(now)),
            }
        }
        headers = [*rate_limit_headers(account, now), ("x-codex-active-limit", "codex")]
        await resp.json(429, body, [*headers, *self._common_headers(request)])

    async def _account_refusal(
        self, request: Request, resp: Responder, account: FakeAccount, behaviour: Forbidden | UsageNotIncluded
    ) -> None:
        """403 deactivated / 403 Cloudflare page / 429 usage_not_included (codex-protocol.md §8.2-§8.3)."""
        headers = self._common_headers(request)
        if isinstance(behaviour, UsageNotIncluded):
            error = {
                "type": "usage_not_included",
                "message": "Codex is not included in your plan. Upgrade to Plus to continue.",
                "plan_type": behaviour.plan_type,
            }
            await resp.json(429, {"error": error}, headers)
        elif behaviour.kind == "cloudflare":
            page = (
                "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>"
                "<h1>Sorry, you have been blocked</h1><p>You are unable to access chatgpt.com</p>"
                "<span>Performance &amp; security by Cloudflare</span></body></html>"
            )
            await resp.raw(403, page.encode(), "text/html; charset=UTF-8", headers)
        elif behaviour.kind == "deactivated":
            error = {
                "message": "Your OpenAI account has been deactivated, please check your email for more "
                "information. If you feel this is an error, contact us through our help center.",
                "type": "invalid_request_error",
                "param": None,
                "code": "account_deactivated",
            }
            await resp.json(403, {"error": error}, headers)
        else:
            raise ValueError(f"unknown Forbidden kind {behaviour.kind!r}")

    async def _server_error(self, request: Request, resp: Responder, status: int) -> None:
        headers = self._common_headers(request)
        if status in (502, 504):
            title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
            page = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
            page += "<hr><center>cloudflare</center></body></html>"
            await resp.raw(status, page.encode(), "text/html", headers)
            return
        if status == 429:  # a plain rate limit, not a usage limit (codex-protocol.md §8.3)
            error = {
                "message": "Rate limit reached. Please try again in 20s.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
            await resp.json(429, {"error": error}, [*headers, ("retry-after", "20")])
            return
        if status == 503:
            error = {
                "message": "Our servers are currently overloaded. Please try again later.",
                "type": "server_error",
                "param": None,
                "code": "server_is_overloaded",
            }
        else:
            error = {
                "message": "An error occurred while processing your request. You can retry your request, "
                "or contact us through our help center if the error persists.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        await resp.json(status, {"error": error}, headers)

    async def _stream(
        self,
        request: Request,
        resp: Responder,
        account: FakeAccount,
        behaviour: Behaviour,
        *,
        hold: trio.Event | None = None,
        hold_at: int = 2,
    ) -> None:
        """Send a 200 SSE stream for ``behaviour``; cut it (no terminal chunk) for DropMidStream.

        With ``hold``, wait for it before sending event number ``hold_at`` (0-based).
        """
        body: dict[str, Any] = json.loads(request.body)
        model = behaviour.model if isinstance(behaviour, Text) and behaviour.model else body["model"]
        builder = sse.StreamBuilder(body, model=model, created_at=int(self.fake.clock()))
        events, cut_after = self._events(builder, behaviour)
        turn_state = request.headers.get("x-codex-turn-state") or jwt.random_id("ts_", 16)
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("openai-model", getattr(behaviour, "header_model", None) or model),
            ("x-models-etag", models.etag()),
            ("x-codex-turn-state", turn_state),
            *rate_limit_headers(account, self.fake.clock()),
            *self._common_headers(request),
        ]
        if body.get("reasoning"):
            headers.append(("x-reasoning-included", "true"))
        await resp.start(200, headers)
        for index, event in enumerate(events):
            if cut_after is not None and index >= cut_after:
                return  # the app ends mid-body: the server drops the connection, no last chunk
            if hold is not None and index == hold_at:
                await hold.wait()
            if self.fake.delta_interval_s and event.get("type") == "response.output_text.delta":
                await self.fake.sleep(self.fake.delta_interval_s)
            await resp.body(sse.encode(event), more=True)
        await resp.body(b"", more=False)

    def _events(self, builder: sse.StreamBuilder, behaviour: Behaviour) -> tuple[list[sse.Event], int | None]:
        """The SSE events for a streaming behaviour, and where to cut (None: never)."""
        events = builder.start()
        if isinstance(behaviour, Text):
            if behaviour.reasoning_summary:
                events += builder.reasoning(behaviour.reasoning_summary)
            chunks = list(behaviour.chunks) if behaviour.chunks is not None else None
            events += builder.message(behaviour.text, chunks)
            events.append(builder.completed(behaviour.usage))
        elif isinstance(behaviour, Refusal):
            events += builder.refusal(behaviour.text)
            events.append(builder.completed())
        elif isinstance(behaviour, ToolCall):
            if behaviour.text_before:
                events += builder.message(behaviour.text_before)
            events += builder.function_call(behaviour.name, behaviour.arguments, behaviour.call_id)
            events.append(builder.completed())
        elif isinstance(behaviour, CustomToolCall):
            events += builder.custom_tool_call(behaviour.name, behaviour.input, behaviour.call_id)
            events.append(builder.completed())
        elif isinstance(behaviour, DropMidStream):
            events += builder.message(behaviour.text)
            events.append(builder.completed())
            return events, min(behaviour.after_events, len(events) - 1)
        elif isinstance(behaviour, Failed):
            if behaviour.after_output:
                events += builder.message("Partial answer before the failure", partial=True)
            events.append(builder.failed(behaviour.code, behaviour.message))
        elif isinstance(behaviour, Incomplete):
            events += builder.message(behaviour.text, status="incomplete")
            events.append(builder.incomplete(behaviour.reason))
        else:  # a pre-stream behaviour used after headers (Hold(after_headers=True, then=...))
            raise TypeError(f"{type(behaviour).__name__} cannot be streamed")
        return events, None
