"""The model catalogue: the built-in fallback and its OpenAI ``GET /v1/models`` rendering (sans-IO)."""

from __future__ import annotations

from typing import Any

_EFFORTS = ["low", "medium", "high", "xhigh"]


def _builtin(slug: str, priority: int, visibility: str = "list") -> dict[str, Any]:
    return {
        "slug": slug,
        "display_name": slug,
        "visibility": visibility,
        "priority": priority,
        "supported_reasoning_levels": [{"effort": e, "description": e} for e in _EFFORTS],
        "context_window": 272000,
    }


BUILTIN_MODELS: list[dict[str, Any]] = [
    _builtin("gpt-5.5", 0),
    _builtin("gpt-5.4", 2),
    _builtin("gpt-5.4-mini", 4),
    _builtin("gpt-5.3-codex", 6),
    _builtin("gpt-5.2", 10),
    _builtin("codex-auto-review", 29, "hide"),
]
"""Fallback catalogue, per codex-protocol.md §10 (bundled models.json at the snapshot commit)."""


def openai_model_list(models: list[dict[str, Any]], *, created: int = 0) -> dict[str, Any]:
    """Render upstream ``ModelInfo`` dicts (codex-protocol.md §6.1) as OpenAI's model list.

    Listed models come first in ``priority`` order, followed by each one's reasoning-effort variants
    (``gpt-5.5-high``), which ``/v1/chat/completions`` and ``/v1/responses`` also accept.

    Returns:
        ``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``.
    """
    shown = [m for m in models if m.get("visibility", "list") == "list"]
    shown.sort(key=lambda m: (m.get("priority", 100), m["slug"]))
    data = [_entry(m["slug"], created) for m in shown]
    for m in shown:
        for level in m.get("supported_reasoning_levels") or []:
            effort = level.get("effort") if isinstance(level, dict) else None
            if isinstance(effort, str):
                data.append(_entry(f"{m['slug']}-{effort}", created))
    return {"object": "list", "data": data}


def _entry(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "openai"}
