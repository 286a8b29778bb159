"""The ``data:`` lines of an SSE body, decoded (shared by the stream tests)."""

from __future__ import annotations

import json
from typing import Any


def data_events(lines: list[str]) -> list[Any]:
    """The JSON of every ``data:`` line (``[DONE]`` kept as the string)."""
    out = []
    for line in lines:
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out
