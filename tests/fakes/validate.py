"""Request-body rules of ``POST /backend-api/codex/responses`` (codex-protocol.md §6.3).

The ChatGPT backend is stricter than the public Responses API. This module is deliberately at least
as strict as the real one: a body it accepts carries only the fields codex-rs itself sends.
:func:`check_responses_body` returns None for a good body, else ``(status, json_body)``.
"""

from __future__ import annotations

from typing import Any

from .models import EFFORTS, SLUGS

Rejection = tuple[int, dict[str, Any]]

ALLOWED_FIELDS = frozenset(
    {
        "model",
        "instructions",
        "input",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "stream",
        "include",
        "service_tier",
        "prompt_cache_key",
        "text",
        "client_metadata",
    }
)
"""Exactly the fields codex-rs serializes (§6.3); anything else is an unsupported parameter."""

ALL_EFFORTS = frozenset({"none", "minimal", *EFFORTS})
INPUT_PART_TYPES = {
    "user": {"input_text", "input_image", "input_file"},
    "developer": {"input_text", "input_image", "input_file"},
    "assistant": {"output_text", "refusal"},
}
ITEM_TYPES = frozenset(
    {
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "local_shell_call",
        "web_search_call",
        "tool_search_call",
        "tool_search_output",
        "image_generation_call",
        "compaction",
    }
)
CALL_FIELD = {"function_call": "arguments", "custom_tool_call": "input"}
"""Tool-call item types and the string field holding what the model sent to the tool."""
OUTPUT_OF = {"function_call_output": "function_call", "custom_tool_call_output": "custom_tool_call"}
"""An output item must follow a call of the matching type with the same ``call_id``."""


def detail(message: str, status: int = 400) -> Rejection:
    """The backend's FastAPI-style rejection: ``{"detail": "<message>"}``."""
    return status, {"detail": message}


def invalid(message: str, param: str | None, code: str | None = None) -> Rejection:
    """The OpenAI-style rejection used for deeper validation errors."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return 400, {"error": error}


def _quote_list(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def check_responses_body(body: Any) -> Rejection | None:
    """Validate one request body; see the module docstring. Checks run in a fixed order."""
    if not isinstance(body, dict):
        return detail("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or model not in SLUGS:
        return detail(f"The '{model}' model is not supported when using Codex with a ChatGPT account.")
    if body.get("stream") is not True:
        return detail("Stream must be set to true")
    if body.get("store") is not False:
        return detail("Store must be set to false")
    for name in body:
        if name not in ALLOWED_FIELDS:
            return detail(f"Unsupported parameter: {name}")
    if "service_tier" in body and body["service_tier"] != "priority":
        return detail("Unsupported parameter: service_tier")
    if "instructions" not in body or body["instructions"] is None:
        return detail("Instructions are required")
    if not isinstance(body["instructions"], str):
        return detail("Instructions are not valid")
    if not isinstance(body.get("input"), list):
        return detail("Input must be a list")
    return (
        _check_reasoning(body.get("reasoning"))
        or _check_tools(body.get("tools"))
        or _check_input(body["input"])
    )


def _check_reasoning(reasoning: Any) -> Rejection | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        return invalid("Invalid type for 'reasoning': expected an object.", "reasoning", "invalid_type")
    for key in reasoning:
        if key not in ("effort", "summary"):  # the only keys codex-rs sends (§6.3)
            return invalid(f"Unknown parameter: 'reasoning.{key}'.", f"reasoning.{key}", "unknown_parameter")
    effort = reasoning.get("effort")
    if effort is not None and effort not in EFFORTS:
        return invalid(
            f"Unsupported value: 'reasoning.effort' does not support '{effort}' with this model. "
            f"Supported values are: {_quote_list(list(EFFORTS))}.",
            "reasoning.effort",
            "unsupported_value",
        )
    summary = reasoning.get("summary")
    if summary is not None and summary not in ("auto", "concise", "detailed"):
        return invalid(
            f"Invalid value: '{summary}'. Supported values are: 'auto', 'concise', and 'detailed'.",
            "reasoning.summary",
            "invalid_value",
        )
    return None


def _check_tools(tools: Any) -> Rejection | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            return invalid(
                f"Missing required parameter: 'tools[{i}].type'.",
                f"tools[{i}].type",
                "missing_required_parameter",
            )
        if tool["type"] in ("function", "custom") and not isinstance(tool.get("name"), str):
            return invalid(
                f"Missing required parameter: 'tools[{i}].name'.",
                f"tools[{i}].name",
                "missing_required_parameter",
            )
    return None


def _check_input(items: list[Any]) -> Rejection | None:
    call_ids: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return invalid(
                f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]", "invalid_type"
            )
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "item_reference" or "id" in item:
            ref = item.get("id")
            return invalid(
                f"Item with id '{ref}' not found. Items are not persisted when `store` is set to false. "
                "Try again with `store` set to true, or remove this item from your input.",
                "input",
            )
        if kind not in ITEM_TYPES:
            return invalid(f"Invalid value: '{kind}'.", f"input[{i}].type", "invalid_value")
        if kind == "message" and (bad := _check_message(i, item)):
            return bad
        if kind in CALL_FIELD:
            for name in ("call_id", "name", CALL_FIELD[kind]):
                if not isinstance(item.get(name), str):
                    return invalid(
                        f"Missing required parameter: 'input[{i}].{name}'.",
                        f"input[{i}].{name}",
                        "missing_required_parameter",
                    )
            call_ids.add((kind, item["call_id"]))
        if kind in OUTPUT_OF:
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or "output" not in item:
                return invalid(
                    f"Missing required parameter: 'input[{i}].call_id'.",
                    f"input[{i}]",
                    "missing_required_parameter",
                )
            if (OUTPUT_OF[kind], call_id) not in call_ids:
                what = kind.removesuffix("_output").replace("_", " ")
                return invalid(f"No tool call found for {what} output with call_id {call_id}.", "input")
    return None


def _check_message(i: int, item: dict[str, Any]) -> Rejection | None:
    role = item.get("role")
    if role == "system":
        return detail("System messages are not allowed")
    if role not in INPUT_PART_TYPES:
        return invalid(
            f"Invalid value: '{role}'. Supported values are: 'assistant', 'developer', and 'user'.",
            f"input[{i}].role",
            "invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return invalid(f"Invalid type for 'input[{i}].content'.", f"input[{i}].content", "invalid_type")
    allowed = INPUT_PART_TYPES[role]
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype not in allowed:
            return invalid(
                f"Invalid value: '{ptype}'. Supported values are: {_quote_list(sorted(allowed))}.",
                f"input[{i}].content[{j}]",
                "invalid_value",
            )
    return None
