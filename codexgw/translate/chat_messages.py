"""Chat Completions ``messages`` → Responses ``input`` items (codex-protocol.md §6.3 "Input items").

Shapes produced::

    {"type": "message", "role": "developer"|"user",
     "content": [{"type": "input_text", "text": …}, {"type": "input_image", "image_url": …, "detail": …}]}
    {"type": "message", "role": "assistant",
     "content": [{"type": "output_text", "text": …}, {"type": "refusal", "refusal": …}]}
    {"type": "function_call", "call_id": …, "name": …, "arguments": "<json string>"}
    {"type": "function_call_output", "call_id": …, "output": "<text>"}
    {"type": "custom_tool_call", "call_id": …, "name": …, "input": "<text>"}      (a custom tool's call)
    {"type": "custom_tool_call_output", "call_id": …, "output": "<text>"}         (its tool message)

Legacy ``function_call``/``function`` messages carry no ids; each assistant ``function_call`` gets the
call id ``call_<message index>`` and the next ``function`` message with the same ``name`` answers it.
"""

from __future__ import annotations

import json
from typing import Any

from codexgw.errors import InvalidRequestError

__all__ = ["CHAT_ROLES", "messages_to_input"]

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_IMAGE_SCHEMES = ("data:", "http://", "https://")


def messages_to_input(messages: object) -> list[dict[str, Any]]:
    """Translate ``messages`` (see the module docstring for the output shapes).

    Raises:
        InvalidRequestError: ``messages`` is not a non-empty array, or a message is malformed; ``param``
            names the field, e.g. ``messages[1].content[0]`` for an audio part.
    """
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty array", param="messages")
    items: list[dict[str, Any]] = []
    legacy_calls: dict[str, list[str]] = {}
    custom_calls: set[str] = set()  # call ids of custom tools' calls: their results are custom outputs
    for i, msg in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidRequestError("each message must be an object", param=p)
        role = msg.get("role")
        if role not in CHAT_ROLES:
            raise InvalidRequestError(f"'role' must be one of {', '.join(CHAT_ROLES)}", param=f"{p}.role")
        if role == "system" or role == "developer":
            items.append(_message("developer", _text_parts(msg.get("content"), p, "input_text")))
        elif role == "user":
            items.append(_message("user", _user_parts(msg.get("content"), p)))
        elif role == "assistant":
            _assistant(msg, p, i, items, legacy_calls, custom_calls)
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequestError(
                    "a tool message needs its 'tool_call_id'", param=f"{p}.tool_call_id"
                )
            kind = "custom_tool_call_output" if call_id in custom_calls else "function_call_output"
            items.append({"type": kind, "call_id": call_id, "output": _output_text(msg, p)})
        else:  # legacy "function" result
            name = msg.get("name")
            pending = legacy_calls.get(name) if isinstance(name, str) else None
            if not pending:
                raise InvalidRequestError(
                    "a function message must answer an earlier assistant function_call with the same name",
                    param=f"{p}.name",
                )
            items.append(
                {"type": "function_call_output", "call_id": pending.pop(0), "output": _output_text(msg, p)}
            )
    if not items:
        raise InvalidRequestError("'messages' must contain a message with content", param="messages")
    return items


def _message(role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": parts}


def _text_parts(
    content: object, p: str, part_type: str, *, allow_refusal: bool = False
) -> list[dict[str, Any]]:
    """String or text-part content as ``[{"type": part_type, "text": …}]``."""
    if isinstance(content, str):
        return [{"type": part_type, "text": content}]
    if not isinstance(content, list):
        raise InvalidRequestError(
            "'content' must be a string or an array of content parts", param=f"{p}.content"
        )
    parts = []
    for j, part in enumerate(content):
        pp = f"{p}.content[{j}]"
        kind = _part_type(part, pp)
        if kind == "text":
            parts.append({"type": part_type, "text": _part_text(part, kind, pp)})
        elif allow_refusal and kind == "refusal":
            parts.append({"type": "refusal", "refusal": _part_text(part, kind, pp)})
        else:
            raise _unsupported_part(kind, pp, p)
    return parts


def _user_parts(content: object, p: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_parts(content, p, "input_text")
    parts = []
    for j, part in enumerate(content):
        pp = f"{p}.content[{j}]"
        kind = _part_type(part, pp)
        if kind == "text":
            parts.append({"type": "input_text", "text": _part_text(part, kind, pp)})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), pp))
        else:
            raise _unsupported_part(kind, pp, p)
    return parts


def _part_type(part: object, pp: str) -> str:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise InvalidRequestError("each content part must be an object with a string 'type'", param=pp)
    return part["type"]


def _part_text(part: dict[str, Any], key: str, pp: str) -> str:
    text = part.get(key)
    if not isinstance(text, str):
        raise InvalidRequestError(f"a {key} part needs a string '{key}'", param=f"{pp}.{key}")
    return text


def _unsupported_part(kind: str, pp: str, p: str) -> InvalidRequestError:
    if kind == "input_audio":
        return InvalidRequestError("audio input is not supported by the Codex backend", param=pp)
    if kind == "file":
        return InvalidRequestError("file content parts are not supported by the Codex backend", param=pp)
    if kind == "image_url":
        return InvalidRequestError("image parts are only allowed in user messages", param=pp)
    return InvalidRequestError(f"unsupported content part type '{kind}'", param=f"{pp}.type")


def _image(image: object, pp: str) -> dict[str, Any]:
    detail: object = None
    if isinstance(image, dict):
        url, detail = image.get("url"), image.get("detail")
    else:
        url = image
    if not isinstance(url, str) or not url.lower().startswith(_IMAGE_SCHEMES):
        raise InvalidRequestError(
            "'image_url.url' must be a data: URL or an http(s) URL", param=f"{pp}.image_url"
        )
    if detail is not None and not isinstance(detail, str):
        raise InvalidRequestError("'detail' must be a string", param=f"{pp}.image_url.detail")
    return {"type": "input_image", "image_url": url, "detail": detail or "auto"}


def _assistant(
    msg: dict[str, Any],
    p: str,
    i: int,
    items: list[dict[str, Any]],
    legacy_calls: dict[str, list[str]],
    custom_calls: set[str],
) -> None:
    content = msg.get("content")
    parts = [] if content is None else _text_parts(content, p, "output_text", allow_refusal=True)
    parts = [part for part in parts if part.get("text") or part.get("refusal")]
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal and not any(p["type"] == "refusal" for p in parts):
        parts.append({"type": "refusal", "refusal": refusal})  # the message's refusal field
    if parts:
        items.append(_message("assistant", parts))
    tool_calls = msg.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, list):
        raise InvalidRequestError("'tool_calls' must be an array", param=f"{p}.tool_calls")
    for k, call in enumerate(tool_calls or ()):
        cp = f"{p}.tool_calls[{k}]"
        if not isinstance(call, dict):
            raise InvalidRequestError("each tool call must be an object", param=cp)
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequestError("a tool call needs a string 'id'", param=f"{cp}.id")
        kind = call.get("type", "function")
        if kind == "custom":
            items.append(_custom_call(call_id, call.get("custom"), f"{cp}.custom"))
            custom_calls.add(call_id)
            continue
        if kind != "function":
            raise InvalidRequestError(
                "only 'function' and 'custom' tool calls are supported", param=f"{cp}.type"
            )
        items.append(_function_call(call_id, call.get("function"), f"{cp}.function"))
    legacy = msg.get("function_call")
    if legacy is not None:
        call_id = f"call_{i}"
        item = _function_call(call_id, legacy, f"{p}.function_call")
        legacy_calls.setdefault(item["name"], []).append(call_id)
        items.append(item)


def _function_call(call_id: str, fn: object, fp: str) -> dict[str, Any]:
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise InvalidRequestError("a function call needs a string 'name'", param=f"{fp}.name")
    arguments = fn.get("arguments")
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments)
    elif arguments is None:
        arguments = ""
    elif not isinstance(arguments, str):
        raise InvalidRequestError("'arguments' must be a JSON string", param=f"{fp}.arguments")
    return {"type": "function_call", "call_id": call_id, "name": fn["name"], "arguments": arguments}


def _custom_call(call_id: str, custom: object, cp: str) -> dict[str, Any]:
    if not isinstance(custom, dict) or not isinstance(custom.get("name"), str) or not custom["name"]:
        raise InvalidRequestError("a custom tool call needs a string 'name'", param=f"{cp}.name")
    text = custom.get("input")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise InvalidRequestError("'input' must be a string", param=f"{cp}.input")
    return {"type": "custom_tool_call", "call_id": call_id, "name": custom["name"], "input": text}


def _output_text(msg: dict[str, Any], p: str) -> str:
    content = msg.get("content")
    if content is None:
        return ""
    return "".join(part["text"] for part in _text_parts(content, p, "input_text"))
