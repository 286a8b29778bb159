"""Fix-ups that turn a public Responses API request into one the ChatGPT Codex backend accepts.

The backend (codex-protocol.md §6.3, design.md §3) requires ``stream: true`` and ``store: false``,
expects ``include`` to carry ``"reasoning.encrypted_content"``, wants ``system`` mapped to ``developer``,
cannot resolve item ``id``s (nothing is stored), and rejects several sampling and bookkeeping
parameters. :func:`prepare_responses_request` applies all of that to a ``POST /v1/responses`` body;
Model names (effort suffixes such as ``gpt-5.5-high``, aliases such as ``codex-mini``) are read
with :mod:`codexgw.translate.model_names`, for both the Responses and the Chat Completions paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codexgw.errors import InvalidRequestError
from codexgw.translate._validate import optional_bool, optional_type, require_model, require_object
from codexgw.translate.model_names import DEFAULT_ALIASES, EFFORTS, resolve_model, split_model_effort

__all__ = [
    "EFFORTS",
    "REASONING_KEYS",
    "REJECTED_RESPONSES_PARAMS",
    "Prepared",
    "is_item_reference",
    "prepare_responses_request",
    "split_model_effort",
]

REJECTED_RESPONSES_PARAMS = (
    "max_output_tokens",
    "max_completion_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "top_logprobs",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_retention",
    "prompt_cache_options",
    "metadata",
    "stream_options",
    "background",
)
"""Parameters the ChatGPT backend rejects (codex-protocol.md §6.3 "Backend requirements"); removed and
reported in ``Prepared.dropped``. ``service_tier`` is also removed unless it is ``"priority"``."""

REASONING_KEYS = ("effort", "summary")
"""The keys of ``reasoning`` the backend takes (codex-protocol.md §6.3); any other key (e.g.
pydantic-ai's ``context``) is removed and reported as ``reasoning.<key>``."""

ENCRYPTED_REASONING = "reasoning.encrypted_content"
MESSAGE_ROLES = ("user", "assistant", "system", "developer")


@dataclass
class Prepared:
    """A client request made ready for the backend.

    Attributes:
        body: the JSON body to POST upstream (always ``stream: true``, ``store: false``).
        dropped: names of parameters the client sent (non-null) that were removed, in body order, for
            the ``x-codexgw-dropped-params`` response header.
        stream: whether the *client* asked for a stream (``stream: true``); else answer with JSON.
        stop: Chat Completions stop sequences, enforced by the stream translator (never sent upstream).
        include_usage: Chat Completions ``stream_options.include_usage``.
        legacy_functions: the Chat Completions request used the deprecated ``functions`` (and no
            ``tools``): answer with ``message.function_call`` / ``finish_reason: "function_call"``.
    """

    body: dict[str, Any]
    dropped: list[str]
    stream: bool
    stop: list[str] = field(default_factory=list)
    include_usage: bool = False
    legacy_functions: bool = False


def prepare_responses_request(
    body: object, *, default_instructions: str, aliases: Mapping[str, str] | None = None
) -> Prepared:
    """Validate a ``POST /v1/responses`` body and apply the backend fix-ups (codex-protocol.md §6.3).

    * ``stream: true``, ``store: false`` forced (``Prepared.stream`` keeps what the client asked).
    * ``instructions`` = ``default_instructions`` when absent or null.
    * ``include`` gains ``"reasoning.encrypted_content"`` unless ``reasoning`` is explicitly null.
    * an alias (``codex-mini``; ``aliases``, default :data:`~codexgw.translate.model_names.DEFAULT_ALIASES`)
      becomes its model; a model suffix (``gpt-5.5-high``) becomes ``reasoning.effort`` (it wins over the
      body's effort).
    * keys of ``reasoning`` other than :data:`REASONING_KEYS` are removed and reported as
      ``reasoning.<key>`` (pydantic-ai sends ``reasoning: {"context": "all_turns"}``).
    * a string ``input`` becomes one user message; ``system`` items become ``developer``; item ``id``s
      and ``prompt_cache_breakpoint``s are removed (``call_id`` kept); ``input_text``/``output_text``
      parts are fixed to match the message role. ``input`` stays one item for one item.
    * ``item_reference`` items must have been resolved by the caller (the route looks them up among the
      responses codexgw kept, ``codexgw.api.responses``): one still here is an error, never dropped.
    * the :data:`REJECTED_RESPONSES_PARAMS` (and a non-priority ``service_tier``) are removed.
    * everything else (tools, tool_choice, text, prompt_cache_key, client_metadata,
      previous_response_id …) is kept as sent.

    Raises:
        InvalidRequestError: the body is not an object; ``model`` is missing or not a string;
            ``input`` is missing, empty or malformed, or holds an ``item_reference`` (param
            ``input[i]``); a known field has the wrong type.
    """
    body = require_object(body)
    model, effort = split_model_effort(resolve_model(require_model(body), aliases or DEFAULT_ALIASES))
    instructions = body.get("instructions")
    if instructions is None:
        instructions = default_instructions
    elif not isinstance(instructions, str):
        raise InvalidRequestError("'instructions' must be a string", param="instructions")
    stream = bool(optional_bool(body, "stream"))
    tools = optional_type(body, "tools", list)
    for i, tool in enumerate(tools or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidRequestError("each tool must be an object with a string 'type'", param=f"tools[{i}]")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not isinstance(tool_choice, str | dict):
        raise InvalidRequestError("'tool_choice' must be a string or an object", param="tool_choice")
    optional_bool(body, "parallel_tool_calls")
    optional_type(body, "text", dict)
    optional_type(body, "prompt_cache_key", str)
    include = optional_type(body, "include", list)
    if include is not None and not all(isinstance(x, str) for x in include):
        raise InvalidRequestError("'include' must be an array of strings", param="include")
    reasoning = optional_type(body, "reasoning", dict)

    out: dict[str, Any] = {
        "model": model,
        "instructions": instructions,
        "input": _fix_input(body.get("input")),
    }
    dropped: list[str] = []
    for key, value in body.items():
        if key in out:
            continue
        if key in REJECTED_RESPONSES_PARAMS or (key == "service_tier" and value != "priority"):
            if value is not None:
                dropped.append(key)
            continue
        out[key] = value
    if _stripped_breakpoint(body.get("input")):
        dropped.append("prompt_cache_breakpoint")
    if reasoning is not None and any(k not in REASONING_KEYS for k in reasoning):
        dropped += [
            f"reasoning.{k}" for k, v in reasoning.items() if k not in REASONING_KEYS and v is not None
        ]
        reasoning = {k: v for k, v in reasoning.items() if k in REASONING_KEYS}
        out["reasoning"] = reasoning
    if effort is not None:
        reasoning = {**(reasoning or {}), "effort": effort}
        out["reasoning"] = reasoning
    out["stream"] = True
    out["store"] = False
    if reasoning is not None or "reasoning" not in body:
        include = list(include or ())
        if ENCRYPTED_REASONING not in include:
            include.append(ENCRYPTED_REASONING)
        out["include"] = include
    return Prepared(body=out, dropped=dropped, stream=stream)


_PART_FOR_ROLE = {"assistant": ("input_text", "output_text")}
_PART_FOR_INPUT_ROLES = ("output_text", "input_text")


def _fix_input(value: object) -> list[dict[str, Any]]:
    """The backend-ready ``input`` list (see :func:`prepare_responses_request`)."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequestError("'input' must be a non-empty string or array", param="input")
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list) or not value:
        raise InvalidRequestError("'input' must be a non-empty string or array", param="input")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequestError("each input item must be an object", param=f"input[{i}]")
        kind = item.get("type")
        if is_item_reference(item):
            raise InvalidRequestError(
                f"Item with id '{item.get('id')}' not found. codexgw resolves item references only to "
                "output items of responses it kept (store not false) and has not yet expired",
                param=f"input[{i}]",
            )
        if kind is not None and not isinstance(kind, str):
            raise InvalidRequestError("'type' must be a string", param=f"input[{i}].type")
        new = {k: v for k, v in item.items() if k != "id" and k != "prompt_cache_breakpoint"}
        if kind is None or kind == "message":
            _fix_message(new, i)
        out.append(new)
    return out


def is_item_reference(item: object) -> bool:
    """Whether an input item is an ``item_reference``: ``{"type": "item_reference", "id": …}``, or a
    bare ``{"id": …}`` (the ``type`` is optional in the OpenAI API)."""
    if not isinstance(item, dict):
        return False
    return item.get("type") == "item_reference" or (item.get("type") is None and set(item) == {"id"})


def _fix_message(item: dict[str, Any], i: int) -> None:
    role = item.get("role")
    if role not in MESSAGE_ROLES:
        raise InvalidRequestError(
            f"'role' must be one of {', '.join(MESSAGE_ROLES)}", param=f"input[{i}].role"
        )
    if role == "system":
        item["role"] = role = "developer"
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequestError(
            "'content' must be a string or an array of content parts", param=f"input[{i}].content"
        )
    wrong, right = _PART_FOR_ROLE.get(role, _PART_FOR_INPUT_ROLES)
    parts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise InvalidRequestError("each content part must be an object", param=f"input[{i}].content[{j}]")
        if part.get("type") == wrong or "prompt_cache_breakpoint" in part:
            part = {k: v for k, v in part.items() if k != "prompt_cache_breakpoint"}
            if part.get("type") == wrong:
                part["type"] = right
        parts.append(part)
    item["content"] = parts


def _stripped_breakpoint(value: object) -> bool:
    """Whether the client's input carried any ``prompt_cache_breakpoint`` (rejected by the backend)."""
    if not isinstance(value, list):
        return False
    for item in value:
        if isinstance(item, dict):
            if item.get("prompt_cache_breakpoint") is not None:
                return True
            content = item.get("content")
            if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("prompt_cache_breakpoint") is not None for p in content
            ):
                return True
    return False
