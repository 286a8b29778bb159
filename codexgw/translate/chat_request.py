"""Chat Completions request → Codex backend Responses request (codex-protocol.md §6.3, §12.2–§12.3).

Mapping, field by field:

* ``messages`` → ``input`` items:
  ``system``/``developer`` → ``{"type":"message","role":"developer","content":[input_text…]}``;
  ``user`` → a user message of ``input_text`` / ``input_image`` parts (``image_url`` parts, data: or
  http(s) URLs, with ``detail``); ``assistant`` → an ``output_text`` message, then one ``function_call``
  item per ``tool_calls`` entry (or legacy ``function_call``); ``tool``/legacy ``function`` →
  ``function_call_output`` with the matching ``call_id``. Audio and file parts are refused.
* ``tools``/``functions`` → function tools ``{"type":"function","name","description","parameters",
  "strict"}``; ``custom`` tools (text or grammar format) → Responses custom tools ``{"type":"custom",
  "name","description","format"}``; ``tool_choice``/``function_call`` → Responses tool choice
  (a named custom tool too); ``parallel_tool_calls`` kept.
  With only legacy ``functions``, :attr:`Prepared.legacy_functions` is set (the answer uses
  ``function_call``) and ``parallel_tool_calls`` defaults to false (that answer holds one call).
* ``response_format`` → ``text.format``; ``verbosity`` → ``text.verbosity``.
* ``reasoning_effort`` (or a model suffix, which wins; or codex-gateway-pool's ``reasoning_mode``
  name, :mod:`codexgw.translate.effort_modes`, which ``reasoning_effort`` beats) →
  ``reasoning.effort``; ``reasoning.summary`` is always ``"auto"`` so summaries can be shown;
  ``include: ["reasoning.encrypted_content"]``.
* ``stop`` → :attr:`Prepared.stop`, ``stream_options.include_usage`` → :attr:`Prepared.include_usage`.
* ``service_tier: "priority"`` and ``prompt_cache_key`` are forwarded; sampling and bookkeeping
  parameters the backend rejects (and unknown ones) are dropped and listed in :attr:`Prepared.dropped`;
  ``n > 1``, ``logprobs``, ``top_logprobs`` and audio output are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexgw.errors import InvalidRequestError
from codexgw.translate._validate import optional_bool, optional_type, require_model, require_object
from codexgw.translate.chat_messages import messages_to_input
from codexgw.translate.effort_modes import effort_for_mode
from codexgw.translate.model_names import DEFAULT_ALIASES, EFFORTS, resolve_model, split_model_effort
from codexgw.translate.params import ENCRYPTED_REASONING, Prepared

__all__ = ["DROPPED_CHAT_PARAMS", "chat_to_responses"]

DROPPED_CHAT_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "seed",
        "logit_bias",
        "metadata",
        "user",
        "store",
        "prediction",
        "web_search_options",
        "safety_identifier",
        "prompt_cache_retention",
    }
)
"""Chat parameters with no Codex backend equivalent: removed and reported (design.md §3)."""

_HANDLED = frozenset(
    {
        "model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
        "functions", "function_call", "response_format", "reasoning_effort", "verbosity", "stop",
        "prompt_cache_key", "service_tier", "modalities", "audio", "n", "logprobs", "top_logprobs",
        "reasoning_mode",
    }
)  # fmt: skip


def chat_to_responses(
    body: object, *, default_instructions: str, aliases: Mapping[str, str] | None = None
) -> Prepared:
    """Translate a ``POST /v1/chat/completions`` body into the backend Responses request.

    ``model`` may be an alias (``aliases``, default
    :data:`~codexgw.translate.model_names.DEFAULT_ALIASES`) and carry an effort suffix.

    Returns:
        :class:`Prepared` whose ``body`` is ``{"model", "instructions", "input", ["tools",
        "tool_choice", "parallel_tool_calls"], "reasoning", "store": false, "stream": true, "include",
        ["service_tier", "prompt_cache_key", "text"]}``; ``stream`` is the client's ``stream``.

    Raises:
        InvalidRequestError: naming the offending field (``messages[2].content[0]``, ``tools[1]`` …).
    """
    body = require_object(body)
    model, suffix_effort = split_model_effort(resolve_model(require_model(body), aliases or DEFAULT_ALIASES))
    stream = bool(optional_bool(body, "stream"))
    _refuse_unsupported(body)
    out: dict[str, Any] = {
        "model": model,
        "instructions": default_instructions,
        "input": messages_to_input(body.get("messages")),
    }
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    tool_choice = _tool_choice(body)
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    parallel = optional_bool(body, "parallel_tool_calls")
    legacy_functions = bool(body.get("functions")) and not body.get("tools")
    if legacy_functions and parallel is None:
        parallel = False  # a legacy answer holds one function_call
    if parallel is not None:
        out["parallel_tool_calls"] = parallel
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORTS:
        raise InvalidRequestError(
            f"'reasoning_effort' must be one of {', '.join(EFFORTS)}", param="reasoning_effort"
        )
    if effort is None and body.get("reasoning_mode") is not None:
        effort = effort_for_mode(body["reasoning_mode"])
    effort = suffix_effort or effort
    out["reasoning"] = {"effort": effort, "summary": "auto"} if effort else {"summary": "auto"}
    out["store"] = False
    out["stream"] = True
    out["include"] = [ENCRYPTED_REASONING]
    dropped = [
        k
        for k, v in body.items()
        if v is not None
        and (k in DROPPED_CHAT_PARAMS or k not in _HANDLED or (k == "service_tier" and v != "priority"))
    ]
    if body.get("service_tier") == "priority":
        out["service_tier"] = "priority"
    cache_key = optional_type(body, "prompt_cache_key", str)
    if cache_key is not None:
        out["prompt_cache_key"] = cache_key
    text = _text(body)
    if text:
        out["text"] = text
    stream_options = optional_type(body, "stream_options", dict) or {}
    include_usage = bool(optional_bool(stream_options, "include_usage", "stream_options.include_usage"))
    return Prepared(
        body=out,
        dropped=dropped,
        stream=stream,
        stop=_stop(body),
        include_usage=include_usage,
        legacy_functions=legacy_functions,
    )


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n != 1):
        raise InvalidRequestError("Only n=1 is supported: the Codex backend returns one choice", param="n")
    if optional_bool(body, "logprobs"):
        raise InvalidRequestError("logprobs are not available from the Codex backend", param="logprobs")
    top = body.get("top_logprobs")
    if top is not None and top != 0:
        raise InvalidRequestError("logprobs are not available from the Codex backend", param="top_logprobs")
    modalities = optional_type(body, "modalities", list)
    if modalities is not None and any(m != "text" for m in modalities):
        raise InvalidRequestError("Only text output is supported", param="modalities")
    if body.get("audio") is not None:
        raise InvalidRequestError("Audio output is not supported", param="audio")


def _function_tool(fn: object, param: str) -> dict[str, Any]:
    if not isinstance(fn, dict):
        raise InvalidRequestError("'function' must be an object", param=param)
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("the function 'name' must be a non-empty string", param=f"{param}.name")
    tool: dict[str, Any] = {"type": "function", "name": name}
    description = fn.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise InvalidRequestError("'description' must be a string", param=f"{param}.description")
        tool["description"] = description
    parameters = fn.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequestError("'parameters' must be a JSON Schema object", param=f"{param}.parameters")
    tool["parameters"] = parameters if parameters is not None else {"type": "object", "properties": {}}
    strict = optional_bool(fn, "strict", f"{param}.strict")
    # Responses function tools default to strict=true; Chat Completions' default is false.
    tool["strict"] = bool(strict)
    return tool


def _custom_tool(custom: object, param: str) -> dict[str, Any]:
    """A chat ``custom`` tool → the Responses custom tool ``{"type": "custom", "name",
    ["description"], ["format"]}``; a grammar format ``{"type": "grammar", "grammar": {"syntax",
    "definition"}}`` becomes ``{"type": "grammar", "syntax", "definition"}`` (codex-protocol.md §6.3)."""
    if not isinstance(custom, dict):
        raise InvalidRequestError("'custom' must be an object", param=param)
    name = custom.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("the custom tool 'name' must be a non-empty string", param=f"{param}.name")
    tool: dict[str, Any] = {"type": "custom", "name": name}
    description = custom.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise InvalidRequestError("'description' must be a string", param=f"{param}.description")
        tool["description"] = description
    fmt = custom.get("format")
    if fmt is None:
        return tool
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        tool["format"] = {"type": "text"}
    elif kind == "grammar":
        grammar = fmt.get("grammar")
        syntax = grammar.get("syntax") if isinstance(grammar, dict) else None
        definition = grammar.get("definition") if isinstance(grammar, dict) else None
        if syntax not in ("lark", "regex") or not isinstance(definition, str):
            raise InvalidRequestError(
                "a grammar format needs 'grammar': {'syntax': 'lark' or 'regex', 'definition': string}",
                param=f"{param}.format.grammar",
            )
        tool["format"] = {"type": "grammar", "syntax": syntax, "definition": definition}
    else:
        raise InvalidRequestError("'format.type' must be 'text' or 'grammar'", param=f"{param}.format.type")
    return tool


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(optional_type(body, "tools", list) or ()):
        if not isinstance(tool, dict):
            raise InvalidRequestError("each tool must be an object", param=f"tools[{i}]")
        if tool.get("type") == "custom":
            tools.append(_custom_tool(tool.get("custom"), f"tools[{i}].custom"))
            continue
        if tool.get("type") != "function":
            raise InvalidRequestError(
                "only 'function' and 'custom' tools are supported", param=f"tools[{i}].type"
            )
        tools.append(_function_tool(tool.get("function"), f"tools[{i}].function"))
    for i, fn in enumerate(optional_type(body, "functions", list) or ()):
        tools.append(_function_tool(fn, f"functions[{i}]"))
    return tools


def _tool_choice(body: dict[str, Any]) -> str | dict[str, Any] | None:
    if body.get("tool_choice") is not None:
        choice, param = body["tool_choice"], "tool_choice"
    elif body.get("function_call") is not None:
        choice, param = body["function_call"], "function_call"
        if isinstance(choice, dict):
            choice = {"type": "function", "function": choice}
    else:
        return None
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom"):
            named = _named_tool(choice)
            if named is not None:
                return named
            raise InvalidRequestError(
                f"the named {kind} tool must have a 'name'", param=f"{param}.{kind}.name"
            )
        if kind == "allowed_tools" and isinstance(choice.get("allowed_tools"), dict):
            allowed = choice["allowed_tools"]
            named_tools = [_named_tool(t) for t in allowed.get("tools") or ()]
            if allowed.get("mode") in ("auto", "required") and named_tools and None not in named_tools:
                return {"type": "allowed_tools", "mode": allowed["mode"], "tools": named_tools}
            raise InvalidRequestError("invalid 'allowed_tools'", param=f"{param}.allowed_tools")
    raise InvalidRequestError(
        "'tool_choice' must be 'auto', 'none', 'required' or "
        '{"type": "function", "function": {"name": …}}',
        param=param,
    )


def _named_tool(choice: object) -> dict[str, Any] | None:
    """``{"type": "function"|"custom", "<type>": {"name"}}`` → ``{"type", "name"}``, else ``None``."""
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("function", "custom"):
        return None
    spec = choice.get(kind)  # type: ignore[union-attr]
    name = spec.get("name") if isinstance(spec, dict) else None
    return {"type": kind, "name": name} if isinstance(name, str) and name else None


def _text(body: dict[str, Any]) -> dict[str, Any]:
    text: dict[str, Any] = {}
    fmt = optional_type(body, "response_format", dict)
    if fmt is not None:
        kind = fmt.get("type")
        if kind == "json_object":
            text["format"] = {"type": "json_object"}
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict):
                raise InvalidRequestError(
                    "'json_schema' must be an object", param="response_format.json_schema"
                )
            name = spec.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequestError("'name' is required", param="response_format.json_schema.name")
            schema = spec.get("schema")
            if schema is not None and not isinstance(schema, dict):
                raise InvalidRequestError(
                    "'schema' must be an object", param="response_format.json_schema.schema"
                )
            out: dict[str, Any] = {"type": "json_schema", "name": name, "schema": schema or {}}
            if spec.get("description") is not None:
                out["description"] = spec["description"]
            strict = optional_bool(spec, "strict", "response_format.json_schema.strict")
            if strict is not None:
                out["strict"] = strict
            text["format"] = out
        elif kind != "text":
            raise InvalidRequestError(
                "'response_format.type' must be 'text', 'json_object' or 'json_schema'",
                param="response_format.type",
            )
    verbosity = body.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise InvalidRequestError("'verbosity' must be 'low', 'medium' or 'high'", param="verbosity")
        text["verbosity"] = verbosity
    return text


def _stop(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if not isinstance(stop, list):
        raise InvalidRequestError("'stop' must be a string or an array of up to 4 strings", param="stop")
    if len(stop) > 4:
        raise InvalidRequestError("'stop' accepts at most 4 sequences", param="stop")
    for i, s in enumerate(stop):
        if not isinstance(s, str):
            raise InvalidRequestError("each stop sequence must be a string", param=f"stop[{i}]")
    return [s for s in stop if s]
