"""The model catalogue the fake backend serves (codex-protocol.md §6.1, §10)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

EFFORTS = ("low", "medium", "high", "xhigh")
"""Reasoning efforts every §10 model lists."""

BASE_INSTRUCTIONS = "You are Codex, a coding agent based on GPT-5. (fake base instructions)"

# slug, display name, visibility, priority, default effort, extra fields (codex-protocol.md §10)
_TABLE: list[tuple[str, str, str, int, str, dict[str, Any]]] = [
    (
        "gpt-5.5",
        "GPT-5.5",
        "list",
        0,
        "medium",
        {"default_verbosity": "low", "minimal_client_version": "0.124.0", "service_tiers": ["fast"]},
    ),
    ("gpt-5.4", "GPT-5.4", "list", 2, "xhigh", {"max_context_window": 1_000_000, "service_tiers": ["fast"]}),
    ("gpt-5.4-mini", "GPT-5.4 Mini", "list", 4, "medium", {"default_verbosity": "medium"}),
    ("gpt-5.3-codex", "GPT-5.3 Codex", "list", 6, "medium", {"upgrade": {"model": "gpt-5.4"}}),
    (
        "gpt-5.2",
        "GPT-5.2",
        "list",
        10,
        "medium",
        {"default_reasoning_summary": "auto", "upgrade": {"model": "gpt-5.4"}},
    ),
    ("codex-auto-review", "Codex Auto Review", "hide", 29, "medium", {}),
]

SLUGS = frozenset(row[0] for row in _TABLE)


def _model(slug: str, name: str, visibility: str, priority: int, effort: str, extra: dict[str, Any]) -> dict:
    info: dict[str, Any] = {
        "slug": slug,
        "display_name": name,
        "description": f"{name} (fake)",
        "default_reasoning_level": effort,
        "supported_reasoning_levels": [
            {"effort": e, "description": f"{e} reasoning effort"} for e in EFFORTS
        ],
        "shell_type": "shell_command",
        "visibility": visibility,
        "supported_in_api": True,
        "priority": priority,
        "base_instructions": BASE_INSTRUCTIONS,
        "supports_reasoning_summaries": True,
        "default_reasoning_summary": "none",
        "support_verbosity": True,
        "default_verbosity": "low",
        "apply_patch_tool_type": "freeform",
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "supports_parallel_tool_calls": True,
        "context_window": 272000,
        "experimental_supported_tools": [],
    }
    info.update(extra)
    return info


def catalogue() -> dict[str, Any]:
    """``{"models": [...]}`` as ``GET /codex/models`` answers (codex-protocol.md §6.1)."""
    return {"models": [_model(*row) for row in _TABLE]}


def etag() -> str:
    """A strong ETag over the catalogue, also sent as ``X-Models-Etag`` on responses (§7)."""
    digest = hashlib.sha256(json.dumps(catalogue(), sort_keys=True).encode()).hexdigest()[:32]
    return f'"{digest}"'
