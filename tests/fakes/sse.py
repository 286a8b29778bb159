"""Sans-IO builders for the Codex SSE stream (codex-protocol.md §7).

A :class:`StreamBuilder` produces event dicts in the real backend's order; :func:`encode` turns one
into wire bytes ``event: <type>\\ndata: <json>\\n\\n``. Every event carries a ``sequence_number``.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from . import jwt
from .behaviours import Usage

Event = dict[str, Any]


def encode(event: Event) -> bytes:
    """One SSE frame: an ``event:`` line, one compact ``data:`` line, a blank line."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def split_words(text: str) -> list[str]:
    """Split ``text`` into ~word deltas that concatenate back to it (leading space kept)."""
    parts = re.findall(r"\s*\S+|\s+$", text)
    return parts or [text]


def estimate_tokens(value: Any) -> int:
    """A rough token count (chars/4, at least 1) for non-zero usage."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


class StreamBuilder:
    """Builds the events of one response for a given request body.

    Attributes:
        response_id: ``resp_…``, the same in every event of this response.
        output: the completed output items so far (what ``response.completed`` reports).
    """

    def __init__(self, body: dict[str, Any], *, model: str, created_at: int) -> None:
        self.body = body
        self.model = model
        self.created_at = created_at
        self.response_id = jwt.random_id("resp_", 24)
        self.output: list[dict[str, Any]] = []
        self._seq = 0
        self._output_chars = 0
        self._reasoning_chars = 0

    # ------------------------------------------------------------------ basics

    def event(self, type_: str, **fields: Any) -> Event:
        event = {"type": type_, **fields, "sequence_number": self._seq}
        self._seq += 1
        return event

    def response(self, status: str, **overrides: Any) -> dict[str, Any]:
        """The Response object as the backend embeds it in lifecycle events."""
        body = self.body
        obj: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": None,
            "max_tool_calls": None,
            "model": self.model,
            "output": list(self.output) if status != "in_progress" else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {
                "effort": (body.get("reasoning") or {}).get("effort"),
                "summary": (body.get("reasoning") or {}).get("summary"),
            },
            "safety_identifier": None,
            "service_tier": body.get("service_tier") or "auto",
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": (body.get("text") or {}).get("verbosity")},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_logprobs": 0,
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": {},
        }
        obj.update(overrides)
        return obj

    def start(self) -> list[Event]:
        """``response.created`` then ``response.in_progress``."""
        return [
            self.event("response.created", response=self.response("in_progress")),
            self.event("response.in_progress", response=self.response("in_progress")),
        ]

    def usage(self, override: Usage | dict[str, int] | None = None) -> dict[str, Any]:
        """Usage object: given counts, or estimates from the request and what was streamed."""
        if isinstance(override, dict):
            override = Usage(**override)
        if override is not None:
            inp, out = override.input_tokens, override.output_tokens
            cached, reasoning = override.cached_tokens, override.reasoning_tokens
        else:
            inp = estimate_tokens([self.body.get("instructions"), self.body.get("input")])
            reasoning = self._reasoning_chars // 4 + (8 if self._reasoning_chars else 0)
            out = max(1, self._output_chars // 4) + reasoning
            cached = 0
        return {
            "input_tokens": inp,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": inp + out,
        }

    # ------------------------------------------------------------------ items

    def message(
        self, text: str, chunks: list[str] | None = None, *, partial: bool = False, status: str = "completed"
    ) -> list[Event]:
        """An assistant message item: added, part, deltas, done events (codex-protocol.md §7).

        ``partial`` stops after the deltas (the item never completes, as before a failure);
        ``status`` is the finished item's status (``incomplete`` before ``response.incomplete``).
        """
        index = len(self.output)
        item_id = jwt.random_id("msg_", 24)
        item = {"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        events = [
            self.event("response.output_item.added", output_index=index, item=item),
            self.event(
                "response.content_part.added",
                **where,
                part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
            ),
        ]
        for delta in chunks if chunks is not None else split_words(text):
            events.append(self.event("response.output_text.delta", **where, delta=delta, logprobs=[]))
        self._output_chars += len(text)
        if partial:
            return events
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        done_item = {**item, "status": status, "content": [part]}
        events += [
            self.event("response.output_text.done", **where, text=text, logprobs=[]),
            self.event("response.content_part.done", **where, part=part),
            self.event("response.output_item.done", output_index=index, item=done_item),
        ]
        self.output.append(done_item)
        return events

    def refusal(self, text: str) -> list[Event]:
        """An assistant message holding one ``refusal`` part: added, part, refusal deltas, done."""
        index = len(self.output)
        item_id = jwt.random_id("msg_", 24)
        item = {"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        events = [
            self.event("response.output_item.added", output_index=index, item=item),
            self.event("response.content_part.added", **where, part={"type": "refusal", "refusal": ""}),
        ]
        for delta in split_words(text):
            events.append(self.event("response.refusal.delta", **where, delta=delta))
        part = {"type": "refusal", "refusal": text}
        done_item = {**item, "status": "completed", "content": [part]}
        events += [
            self.event("response.refusal.done", **where, refusal=text),
            self.event("response.content_part.done", **where, part=part),
            self.event("response.output_item.done", output_index=index, item=done_item),
        ]
        self.output.append(done_item)
        self._output_chars += len(text)
        return events

    def reasoning(self, summary: str) -> list[Event]:
        """A reasoning item with one summary part and ``encrypted_content`` (§7)."""
        index = len(self.output)
        item_id = jwt.random_id("rs_", 24)
        encrypted = "gAAAAA" + base64.b64encode(os.urandom(96)).decode()
        item = {"id": item_id, "type": "reasoning", "summary": [], "encrypted_content": encrypted}
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        events = [
            self.event("response.output_item.added", output_index=index, item=item),
            self.event(
                "response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}
            ),
        ]
        for delta in split_words(summary):
            events.append(self.event("response.reasoning_summary_text.delta", **where, delta=delta))
        part = {"type": "summary_text", "text": summary}
        done_item = {**item, "summary": [part]}
        events += [
            self.event("response.reasoning_summary_text.done", **where, text=summary),
            self.event("response.reasoning_summary_part.done", **where, part=part),
            self.event("response.output_item.done", output_index=index, item=done_item),
        ]
        self.output.append(done_item)
        self._reasoning_chars += len(summary)
        return events

    def function_call(self, name: str, arguments: str, call_id: str | None) -> list[Event]:
        """A ``function_call`` item, arguments streamed in pieces (§7)."""
        index = len(self.output)
        item_id = jwt.random_id("fc_", 24)
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call_id or jwt.random_id("call_", 12),
            "name": name,
        }
        where = {"item_id": item_id, "output_index": index}
        events = [self.event("response.output_item.added", output_index=index, item=item)]
        step = max(1, len(arguments) // 4 or 1)
        for start in range(0, len(arguments), step):
            delta = arguments[start : start + step]
            events.append(self.event("response.function_call_arguments.delta", **where, delta=delta))
        done_item = {**item, "status": "completed", "arguments": arguments}
        events += [
            self.event("response.function_call_arguments.done", **where, name=name, arguments=arguments),
            self.event("response.output_item.done", output_index=index, item=done_item),
        ]
        self.output.append(done_item)
        self._output_chars += len(arguments) + len(name)
        return events

    def custom_tool_call(self, name: str, input_: str, call_id: str | None) -> list[Event]:
        """A ``custom_tool_call`` item (freeform tool), its input streamed in pieces (§7)."""
        index = len(self.output)
        item_id = jwt.random_id("ctc_", 24)
        item = {
            "id": item_id,
            "type": "custom_tool_call",
            "status": "in_progress",
            "call_id": call_id or jwt.random_id("call_", 12),
            "name": name,
            "input": "",
        }
        where = {"item_id": item_id, "output_index": index}
        events = [self.event("response.output_item.added", output_index=index, item=item)]
        step = max(1, len(input_) // 4 or 1)
        for start in range(0, len(input_), step):
            delta = input_[start : start + step]
            events.append(self.event("response.custom_tool_call_input.delta", **where, delta=delta))
        done_item = {**item, "status": "completed", "input": input_}
        events += [
            self.event("response.custom_tool_call_input.done", **where, input=input_),
            self.event("response.output_item.done", output_index=index, item=done_item),
        ]
        self.output.append(done_item)
        self._output_chars += len(input_) + len(name)
        return events

    # ------------------------------------------------------------------ terminal events

    def completed(self, usage: Usage | dict[str, int] | None = None) -> Event:
        return self.event("response.completed", response=self.response("completed", usage=self.usage(usage)))

    def failed(self, code: str, message: str) -> Event:
        """``response.failed`` with ``response.error.{code,message}`` (codex-protocol.md §7, §8.3)."""
        error = {"code": code, "message": message}
        return self.event("response.failed", response=self.response("failed", error=error, usage=None))

    def incomplete(self, reason: str) -> Event:
        return self.event(
            "response.incomplete",
            response=self.response("incomplete", incomplete_details={"reason": reason}, usage=self.usage()),
        )
