"""Builders for upstream Responses events (codex-protocol.md §7), shared by the translate tests."""

from __future__ import annotations

from typing import Any

USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 17,
}
CHAT_USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 7,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 3},
}


def created(model: str = "gpt-5.5") -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": "resp_1", "model": model, "status": "in_progress"}}


def completed(usage: dict[str, Any] | None = USAGE, output: list[Any] | None = None) -> dict[str, Any]:
    response = {
        "id": "resp_1",
        "model": "gpt-5.5",
        "status": "completed",
        "output": output or [],
        "usage": usage,
    }
    return {"type": "response.completed", "response": response}


def incomplete(reason: str) -> dict[str, Any]:
    response = {
        "id": "resp_1",
        "status": "incomplete",
        "incomplete_details": {"reason": reason},
        "usage": USAGE,
    }
    return {"type": "response.incomplete", "response": response}


def failed(code: str = "server_error", message: str = "boom", **extra: Any) -> dict[str, Any]:
    error = {"code": code, "message": message, **extra}
    return {"type": "response.failed", "response": {"id": "resp_1", "status": "failed", "error": error}}


def message_added(index: int, item_id: str = "msg_1") -> dict[str, Any]:
    item = {"type": "message", "id": item_id, "role": "assistant", "content": [], "status": "in_progress"}
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def text_delta(delta: str, index: int = 0, item_id: str = "msg_1") -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "item_id": item_id,
        "output_index": index,
        "content_index": 0,
        "delta": delta,
    }


def message_item(text: str, item_id: str = "msg_1") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def message_done(text: str, index: int = 0, item_id: str = "msg_1") -> dict[str, Any]:
    return {"type": "response.output_item.done", "output_index": index, "item": message_item(text, item_id)}


def call_item(call_id: str, name: str, arguments: str, item_id: str) -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments}


def call_added(index: int, call_id: str, name: str, item_id: str | None = None) -> dict[str, Any]:
    item = call_item(call_id, name, "", item_id or f"fc_{call_id}")
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def args_delta(index: int, delta: str, item_id: str) -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.delta",
        "item_id": item_id,
        "output_index": index,
        "delta": delta,
    }


def call_done(
    index: int, call_id: str, name: str, arguments: str, item_id: str | None = None
) -> dict[str, Any]:
    item = call_item(call_id, name, arguments, item_id or f"fc_{call_id}")
    return {"type": "response.output_item.done", "output_index": index, "item": item}


def reasoning_added(index: int, item_id: str = "rs_1") -> dict[str, Any]:
    return {
        "type": "response.output_item.added",
        "output_index": index,
        "item": {"type": "reasoning", "id": item_id},
    }


def summary_delta(delta: str, summary_index: int = 0, item_id: str = "rs_1") -> dict[str, Any]:
    return {
        "type": "response.reasoning_summary_text.delta",
        "item_id": item_id,
        "output_index": 0,
        "summary_index": summary_index,
        "delta": delta,
    }


def reasoning_done(index: int, summaries: list[str], item_id: str = "rs_1") -> dict[str, Any]:
    item = {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": s} for s in summaries],
        "encrypted_content": "gAAAA",
    }
    return {"type": "response.output_item.done", "output_index": index, "item": item}
