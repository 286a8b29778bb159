"""Helpers shared by the routes: the gateway handle, response builders, stream cleanup."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quart import Response, current_app, has_request_context, request

from codexgw.errors import AuthenticationError, CodexgwError

if TYPE_CHECKING:
    from codexgw.metrics import Metrics
    from codexgw.translate.stream_state import Outcome
    from codexgw.upstream.gateway import Gateway
    from codexgw.upstream.stream import UpstreamStream

access_logger = logging.getLogger("codexgw.access")

DROPPED_PARAMS_HEADER = "x-codexgw-dropped-params"
"""Names the request parameters codexgw removed because the ChatGPT backend rejects them."""


def gateway() -> Gateway:
    """The :class:`~codexgw.upstream.gateway.Gateway` of the running app."""
    return current_app.extensions["codexgw"]


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response."""
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        headers=headers or {},
        content_type="application/json",
    )


def response_headers(stream: UpstreamStream, dropped: list[str]) -> dict[str, str]:
    """Headers for a relayed answer: the upstream's relayed headers plus the dropped-params list."""
    headers = dict(stream.headers)
    if dropped:
        headers[DROPPED_PARAMS_HEADER] = ", ".join(dropped)
    return headers


SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # nginx and friends: do not buffer the stream
}
"""The headers of every streamed answer."""

OPEN_PATHS = frozenset({"/health"})
"""Paths served without the gateway API key."""


def api_key_error(api_key: str | None, path: str, headers: Mapping[str, str]) -> AuthenticationError | None:
    """The error for a request without the gateway's API key, or ``None`` when it may pass.

    The key travels as ``Authorization: Bearer <key>`` or ``x-api-key``; it is compared in constant
    time. ``headers``: lower-case names.
    """
    if api_key is None or path in OPEN_PATHS:
        return None
    given = headers.get("authorization", "")
    token = given[7:].strip() if given[:7].lower() == "bearer " else headers.get("x-api-key", "")
    if hmac.compare_digest(token.encode(), api_key.encode()):
        return None
    return AuthenticationError("Invalid or missing API key: send 'Authorization: Bearer <key>'")


def error_reply(exc: CodexgwError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """``(status, headers, body)`` of the answer to ``exc``, in OpenAI's error shape.

    A 429 whose ``Retry-After`` is over two minutes also says ``x-should-retry: false``, so the
    openai SDKs give up at once instead of sleeping through their retries.
    """
    headers = dict(exc.headers)
    if exc.status == 429 and "Retry-After" in headers and int(headers["Retry-After"]) > 120:
        headers["x-should-retry"] = "false"
    return exc.status, headers, exc.to_body()


def _request_metrics() -> tuple[Metrics | None, str | None]:
    """``(the app's Metrics, the matched route rule)`` inside a request; ``(None, None)`` outside."""
    if not has_request_context():
        return None, None
    gw = current_app.extensions.get("codexgw")
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    return getattr(gw, "metrics", None), rule


def access_log(
    method: str,
    path: str,
    status: int,
    started: float,
    *,
    account: str | None = None,
    model: str | None = None,
    usage: dict[str, Any] | None = None,
    outcome: str | None = None,
    route: str | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Log one line for a finished request (design §3 logging) and count it in the metrics.

    A stream logs when it ends (:class:`StreamLog`).

    Args:
        started: ``time.perf_counter()`` at the request's start; the line gives the duration in ms.
        usage: the upstream's Responses ``usage`` (``input_tokens``/``output_tokens``), if known.
        outcome: for streams, how they ended (``completed``, ``failed``, ``client_closed`` …).
        route, metrics: the route rule (metrics label) and the app's metrics; taken from the request
            context when omitted (outside one, e.g. at a stream's end, pass them or nothing is counted).

    With ``--log-format json`` the same fields are emitted as JSON keys (never a token).
    """
    duration_s = time.perf_counter() - started
    if metrics is None:
        metrics, context_route = _request_metrics()
        route = route or context_route
    if metrics is not None:
        metrics.observe_request(
            route=route or path,
            status=status,
            duration_s=duration_s,
            model=model,
            account=account,
            usage=usage,
        )
    duration_ms = round(duration_s * 1000, 1)
    tokens_in = (usage or {}).get("input_tokens")
    tokens_out = (usage or {}).get("output_tokens")
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "account": account,
        "model": model,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "duration_ms": duration_ms,
        "outcome": outcome,
    }
    text = " ".join(
        f"{k}={v}" for k, v in fields.items() if v is not None and k not in ("method", "path", "status")
    )
    access_logger.info("%s %s %d %s", method, path, status, text, extra={"fields": fields})


@dataclass
class StreamLog:
    """The access-log line of a streamed answer, written when the stream ends (not at its headers)."""

    method: str
    path: str
    started: float
    account: str | None
    model: str | None
    route: str
    metrics: Metrics
    usage: dict[str, Any] | None = None
    outcome: str | None = None

    def end(self, outcome: Outcome, usage: dict[str, Any] | None) -> None:
        """The stream ended (:data:`codexgw.upstream.relay.StreamEnd`): write the line."""
        self.outcome, self.usage = outcome.value, usage
        self.emit()

    def emit(self) -> None:
        """Write the line (status 200: the headers went out before the stream began)."""
        access_log(
            self.method,
            self.path,
            200,
            self.started,
            account=self.account,
            model=self.model,
            usage=self.usage,
            outcome=self.outcome,
            route=self.route,
            metrics=self.metrics,
        )
