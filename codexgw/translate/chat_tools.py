"""Tool calls of one upstream response as Chat Completions ``tool_calls`` deltas (sans-IO).

codex-protocol.md §7: a call arrives as ``response.output_item.added`` (a ``function_call`` item, or
a ``custom_tool_call`` for a freeform tool), its pieces (``response.function_call_arguments.delta``,
``response.custom_tool_call_input.delta``) and ``response.output_item.done`` with the whole
arguments (``input``). Events name the call by item ``id``, ``output_index`` or ``call_id``; any of
them finds it.

Deltas, as OpenAI streams them: ``{"tool_calls": [{index, id, type: "function", function: {name,
arguments}}]}`` to open a call, then ``{"tool_calls": [{index, function: {arguments}}]}`` per piece;
a custom tool's call ``{"tool_calls": [{index, id, type: "custom", custom: {name, input}}]}`` then
``{"tool_calls": [{index, custom: {input}}]}``; with ``legacy_functions`` (the request used the
deprecated ``functions``) ``{"function_call": {name, arguments}}`` then ``{"function_call":
{arguments}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CALL_FIELDS", "ToolCall", "ToolCalls"]

CALL_FIELDS = {"function_call": "arguments", "custom_tool_call": "input"}
"""Upstream call item types and the string field holding what the model sends to the tool."""


@dataclass
class ToolCall:
    """One streamed call: its ``index`` in ``tool_calls``, the characters of arguments (or custom
    ``input``) sent, and whether it calls a ``custom`` tool."""

    index: int
    sent: int
    custom: bool = False


@dataclass
class ToolCalls:
    """The calls of one response so far, and the deltas that stream them."""

    legacy_functions: bool = False
    calls: list[ToolCall] = field(default_factory=list)
    keys: dict[tuple[str, Any], ToolCall] = field(default_factory=dict)

    def find(self, item_id: Any, output_index: Any, call_id: Any) -> ToolCall | None:
        """The call an event names by item id, output index or call id, or ``None``."""
        keys = self.keys
        return keys.get(("id", item_id)) or keys.get(("oi", output_index)) or keys.get(("call", call_id))

    def accepts(self) -> bool:
        """Whether another call may be streamed (the legacy format holds one)."""
        return not (self.legacy_functions and self.calls)

    def accepts_item(self, item: dict[str, Any]) -> bool:
        """Whether ``item`` (an upstream output item) may be streamed as a call: a ``function_call``,
        or a ``custom_tool_call`` unless the answer is in the legacy format (functions only)."""
        kind = item.get("type")
        return self.accepts() and (
            kind == "function_call" or (kind == "custom_tool_call" and not self.legacy_functions)
        )

    def start(self, item: dict[str, Any], output_index: Any) -> dict[str, Any]:
        """Register the call ``item`` (see :data:`CALL_FIELDS`); return the delta that opens it
        (with any arguments or input it already carries)."""
        custom = item.get("type") == "custom_tool_call"
        field_name = "input" if custom else "arguments"
        arguments = item.get(field_name) if isinstance(item.get(field_name), str) else ""
        tool = ToolCall(len(self.calls), len(arguments), custom)
        self.calls.append(tool)
        for kind, key in (("id", item.get("id")), ("oi", output_index), ("call", item.get("call_id"))):
            if key is not None:
                self.keys[(kind, key)] = tool
        name = item.get("name") or ""
        if self.legacy_functions:
            return {"function_call": {"name": name, "arguments": arguments}}
        call = {"index": tool.index, "id": item.get("call_id") or item.get("id") or ""}
        if custom:
            return {"tool_calls": [{**call, "type": "custom", "custom": {"name": name, "input": arguments}}]}
        return {
            "tool_calls": [{**call, "type": "function", "function": {"name": name, "arguments": arguments}}]
        }

    def arguments(self, tool: ToolCall, delta: str) -> dict[str, Any]:
        """The delta carrying ``delta``, the next piece of ``tool``'s arguments (or custom input)."""
        tool.sent += len(delta)
        if self.legacy_functions:
            return {"function_call": {"arguments": delta}}
        if tool.custom:
            return {"tool_calls": [{"index": tool.index, "custom": {"input": delta}}]}
        return {"tool_calls": [{"index": tool.index, "function": {"arguments": delta}}]}
