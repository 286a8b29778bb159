"""Helpers shared by the routes: the gateway handle, response builders, stream cleanup."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
from quart import Response, current_app

if TYPE_CHECKING:
    from ..gateway import Gateway
    from ..relay import UpstreamStream

access_logger = logging.getLogger("codexgw.access")

DROPPED_PARAMS_HEADER = "x-codexgw-dropped-params"
"""Names the request parameters codexgw removed because the ChatGPT backend rejects them."""


def gateway() -> Gateway:
    """The :class:`~codexgw.gateway.Gateway` of the running app."""
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


def sse_response(body: AsyncIterator[bytes], headers: dict[str, str]) -> Response:
    """A streamed ``text/event-stream`` response that never times out (design §5)."""
    response = Response(
        body,
        status=200,
        headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        content_type="text/event-stream; charset=utf-8",
    )
    response.timeout = None
    return response


async def upstream_closed(stream: UpstreamStream) -> None:
    """Close the upstream response even while the route is being cancelled (client went away)."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await stream.aclose()


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
) -> None:
    """Log one line for a finished request (design §3 logging); a stream logs when it ends.

    Args:
        started: ``time.perf_counter()`` at the request's start; the line gives the duration in ms.
        usage: the upstream's Responses ``usage`` (``input_tokens``/``output_tokens``), if known.
        outcome: for streams, how they ended (``completed``, ``failed``, ``client_closed`` …).

    With ``--log-format json`` the same fields are emitted as JSON keys (never a token).
    """
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
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
    usage: dict[str, Any] | None = None
    outcome: str | None = None

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
        )
