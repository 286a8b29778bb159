"""Token usage in the two APIs' shapes (sans-IO): the Responses ``usage`` the backend reports
(codex-protocol.md §7) and the Chat Completions ``usage`` codexgw answers with."""

from __future__ import annotations

from typing import Any

__all__ = ["chat_usage"]


def chat_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Responses ``usage`` (codex-protocol.md §7) → Chat Completions ``usage``; ``None`` stays ``None``.

    ``{"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens",
    "prompt_tokens_details": {"cached_tokens"}, "completion_tokens_details": {"reasoning_tokens"}}``.
    """
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("input_tokens") or 0
    completion = usage.get("output_tokens") or 0
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
