"""Function calls of one upstream response as Chat Completions ``tool_calls`` deltas (sans-IO).

codex-protocol.md §7: a call arrives as ``response.output_item.added`` (a ``function_call`` item),
``response.function_call_arguments.delta`` pieces and ``response.output_item.done`` with the whole
arguments. Events name the call by item ``id``, ``output_index`` or ``call_id``; any of them finds it.

Deltas, as OpenAI streams them: ``{"tool_calls": [{index, id, type: "function", function: {name,
arguments}}]}`` to open a call, then ``{"tool_calls": [{index, function: {arguments}}]}`` per piece;
with ``legacy_functions`` (the request used the deprecated ``functions``) ``{"function_call": {name,
arguments}}`` then ``{"function_call": {arguments}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ToolCall", "ToolCalls"]


@dataclass
class ToolCall:
    """One streamed call: its ``index`` in ``tool_calls`` and the characters of arguments sent."""

    index: int
    sent: int


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

    def start(self, item: dict[str, Any], output_index: Any) -> dict[str, Any]:
        """Register the ``function_call`` ``item``; return the delta that opens it (with any
        arguments it already carries)."""
        arguments = item.get("arguments") if isinstance(item.get("arguments"), str) else ""
        tool = ToolCall(len(self.calls), len(arguments))
        self.calls.append(tool)
        for kind, key in (("id", item.get("id")), ("oi", output_index), ("call", item.get("call_id"))):
            if key is not None:
                self.keys[(kind, key)] = tool
        function = {"name": item.get("name") or "", "arguments": arguments}
        if self.legacy_functions:
            return {"function_call": function}
        call = {"index": tool.index, "id": item.get("call_id") or item.get("id") or "", "type": "function"}
        return {"tool_calls": [{**call, "function": function}]}

    def arguments(self, tool: ToolCall, delta: str) -> dict[str, Any]:
        """The delta carrying ``delta``, the next piece of ``tool``'s arguments."""
        tool.sent += len(delta)
        if self.legacy_functions:
            return {"function_call": {"arguments": delta}}
        return {"tool_calls": [{"index": tool.index, "function": {"arguments": delta}}]}
