"""codex-gateway-pool's reasoning modes: named reasoning efforts (sans-IO).

codex-gateway-pool (another ChatGPT-subscription gateway) lets Chat Completions clients pick the
reasoning effort by a mode name, ``reasoning_mode: "fast"``, and lists the modes at
``GET /v1/modes``. codexgw accepts the same names so its clients work here, mapped onto the
backend's ``reasoning.effort`` (codex-protocol.md §6.3, §10):

=============  ======================================  ================
mode           also accepted                           effort
=============  ======================================  ================
``fast``       ``low``                                 ``low``
``normal``     ``medium``, ``balanced``                ``medium``
``high``                                               ``high``
``very_high``  ``very-high``, ``xhigh``, ``max``       ``xhigh``
=============  ======================================  ================

Not to be confused with codexgw's own ``--reasoning-mode content|think|hidden`` (how reasoning
summaries are *shown*): a mode here chooses how much the model reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codexgw.errors import InvalidRequestError

__all__ = ["DEFAULT_MODE", "EFFORT_MODES", "effort_for_mode", "modes_document"]

EFFORT_MODES: dict[str, tuple[str, str]] = {
    "fast": ("low", "Lowest latency, lighter reasoning."),
    "normal": ("medium", "Balanced default."),
    "high": ("high", "More reasoning, slower."),
    "very_high": ("xhigh", "Maximum reasoning depth, slowest."),
}
"""mode id → (``reasoning.effort``, description), in codex-gateway-pool's order."""

DEFAULT_MODE = "normal"

_ALIASES = {
    "low": "fast",
    "medium": "normal",
    "balanced": "normal",
    "very-high": "very_high",
    "xhigh": "very_high",
    "max": "very_high",
}


def effort_for_mode(value: object, *, param: str = "reasoning_mode") -> str:
    """The ``reasoning.effort`` for a mode name (any case, surrounding spaces ignored).

    Raises:
        InvalidRequestError: not a string, or no mode of that name (naming ``param``).
    """
    name = value.strip().lower() if isinstance(value, str) else None
    mode = _ALIASES.get(name, name) if name is not None else None
    if mode not in EFFORT_MODES:
        raise InvalidRequestError(f"'{param}' must be one of {', '.join(EFFORT_MODES)}", param=param)
    return EFFORT_MODES[mode][0]


def modes_document(models: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``GET /v1/modes``: codex-gateway-pool's list, plus the effort and the models that accept it.

    ``models`` are the catalogue's ``ModelInfo`` dicts (codex-protocol.md §6.1); a mode lists the
    listed models (``visibility`` ``list``) whose ``supported_reasoning_levels`` hold its effort.

    Returns:
        ``{"object": "list", "default_reasoning_mode": "normal", "data": [{"id", "object":
        "reasoning_mode", "description", "reasoning_effort", "models": [slug…]}]}``.
    """
    listed = [m for m in models if m.get("visibility", "list") == "list"]
    listed.sort(key=lambda m: (m.get("priority", 100), m["slug"]))
    data = []
    for mode, (effort, description) in EFFORT_MODES.items():
        accepting = [
            m["slug"]
            for m in listed
            if any(
                isinstance(level, dict) and level.get("effort") == effort
                for level in m.get("supported_reasoning_levels") or []
            )
        ]
        data.append(
            {
                "id": mode,
                "object": "reasoning_mode",
                "description": description,
                "reasoning_effort": effort,
                "models": accepting,
            }
        )
    return {"object": "list", "default_reasoning_mode": DEFAULT_MODE, "data": data}
