"""``POST /v1/responses``: the Responses API, passed through to the Codex backend after fix-ups."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Response, current_app, request

from ..errors import CodexgwError, InvalidRequestError
from ..relay import TERMINAL_EVENTS, UpstreamStream, event_type, open_stream
from ..sse import encode_event
from ..translate.aggregate import ResponseAggregator
from ..translate.params import prepare_responses_request
from .common import gateway, json_response, response_headers, sse_response, upstream_closed

bp = Blueprint("responses", __name__)


@bp.post("/v1/responses")
@bp.post("/responses")
async def create_response() -> Response:
    """Create a model response (streamed when the body says ``stream: true``; codex-protocol.md §12.2)."""
    gw = gateway()
    from .body import read_json_body

    body = await read_json_body(gw.settings.max_body_bytes)
    if isinstance(body, dict) and body.get("previous_response_id") is not None:
        raise InvalidRequestError(
            "previous_response_id is not supported yet: the ChatGPT backend keeps no responses (store=false); "
            "send the whole conversation in 'input'",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    prepared = prepare_responses_request(
        body, default_instructions=current_app.config["DEFAULT_INSTRUCTIONS"]
    )
    stream = await open_stream(gw, prepared.body, request.headers)
    headers = response_headers(stream, prepared.dropped)
    if prepared.stream:
        return sse_response(_relay(stream), headers)
    try:
        return json_response(await _aggregate(stream), headers=headers)
    finally:
        await upstream_closed(stream)


async def _relay(stream: UpstreamStream) -> AsyncIterator[bytes]:
    """Pass the upstream's events through as they come, one write per batch of events."""
    terminal = False
    try:
        async for batch in stream.batches():
            yield b"".join(raw for _event, raw in batch)
            if not terminal:
                terminal = any(event_type(event) in TERMINAL_EVENTS for event, _ in batch)
        if not terminal:
            yield _failed_event("the Codex backend closed the stream before response.completed")
    except CodexgwError as exc:
        yield _failed_event(exc.message)
    finally:
        await upstream_closed(stream)


def _failed_event(message: str) -> bytes:
    """A ``response.failed`` event for an upstream failure after output began (design §3)."""
    response = {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "failed",
        "error": {"code": "server_error", "message": message},
        "output": [],
        "usage": None,
    }
    return encode_event(json.dumps({"type": "response.failed", "response": response}), "response.failed")


async def _aggregate(stream: UpstreamStream) -> dict[str, Any]:
    """Read the whole stream and return the final Response object (``stream: false``)."""
    aggregator = ResponseAggregator()
    async for batch in stream.batches():
        for event, _raw in batch:
            try:
                data = json.loads(event.data)
            except ValueError:
                continue
            if isinstance(data, dict):
                aggregator.feed(data)
    from ..errors import UpstreamError

    if not aggregator.done:
        raise UpstreamError("the Codex backend closed the stream before response.completed")
    return aggregator.response
