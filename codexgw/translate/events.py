"""Facts about upstream Responses events (codex-protocol.md §7): which come before output, which end a response, how to read one (sans-IO)."""

from __future__ import annotations

import json
from typing import Any

from codexgw.translate.sse import SSEEvent

PRE_OUTPUT_EVENTS = frozenset(
    {"response.created", "response.in_progress", "response.queued", "codex.rate_limits", "response.metadata"}
)
"""Events that may precede output; failover is still possible while only these were seen."""


TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


Batch = list[tuple[SSEEvent, bytes]]


def event_json(event: SSEEvent) -> dict[str, Any] | None:
    """The event's ``data`` parsed as a JSON object, or ``None`` when it is not one (such events are
    skipped, as codex-rs skips lines that fail to parse: codex-protocol.md §7)."""
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def event_type(event: SSEEvent) -> str | None:
    """The event's ``type``: the ``event:`` field when present, else the ``type`` of its JSON data."""
    if event.event:
        return event.event
    data = event_json(event)
    return data.get("type") if data is not None else None
