"""Model names a client may send: reasoning-effort suffixes and aliases (sans-IO).

* **Effort suffixes.** ``gpt-5.5-high`` means ``gpt-5.5`` with ``reasoning.effort = "high"``
  (:func:`split_model_effort`); ``/v1/models`` lists them.
* **Aliases.** codex-reverse and other peers accept short names (``codex-mini``, ``compact`` …).
  :data:`DEFAULT_ALIASES` maps those to :data:`SMALL_CODEX_MODEL`; a user adds or overrides names
  in ``[models.aliases]`` of ``config.toml`` (``fast = "gpt-5.4-mini-low"``). An alias may carry an
  effort suffix too (``mini-high`` is ``gpt-5.4-mini-high``). :func:`resolve_model` is the one place
  a name is resolved; the request translators call it where they read ``model``.

Why ``gpt-5.4-mini``: it is the one small model in the catalogue of codex-protocol.md §10 (the
bundled ``models.json``), listed, default effort medium, with the same efforts as the large
models. The ``codex-mini`` slugs the peers' names once meant are gone from that list, and
``gpt-5.3-codex`` is a full-size model whose upgrade target is ``gpt-5.4``, so it is no "mini".
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DEFAULT_ALIASES",
    "EFFORTS",
    "SMALL_CODEX_MODEL",
    "check_alias",
    "merged_aliases",
    "resolve_model",
    "split_model_effort",
]

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
"""Reasoning efforts the backend knows (codex-protocol.md §10, ``ReasoningEffort``)."""

SMALL_CODEX_MODEL = "gpt-5.4-mini"
"""The current small Codex model (codex-protocol.md §10; see the module docstring for why)."""

DEFAULT_ALIASES: Mapping[str, str] = {
    name: SMALL_CODEX_MODEL for name in ("compact", "codex-compact", "codex", "mini", "codex-mini")
}
"""codex-reverse's short names, all meaning the small Codex model."""


def split_model_effort(model: str) -> tuple[str, str | None]:
    """Split a reasoning-effort suffix off a model name.

    ``"gpt-5.5-high"`` → ``("gpt-5.5", "high")``; ``"gpt-5.4-mini"`` → ``("gpt-5.4-mini", None)``.
    Suffixes are the :data:`EFFORTS`: none, minimal, low, medium, high, xhigh.
    """
    base, sep, suffix = model.rpartition("-")
    if sep and base and suffix in EFFORTS:
        return base, suffix
    return model, None


def resolve_model(model: str, aliases: Mapping[str, str] = DEFAULT_ALIASES) -> str:
    """The model ``model`` stands for: an alias's target, else ``model`` unchanged.

    ``"codex-mini"`` → ``"gpt-5.4-mini"``; ``"mini-high"`` → ``"gpt-5.4-mini-high"`` (the client's
    suffix wins over one in the alias's target); ``"gpt-5.5"`` → ``"gpt-5.5"``. One level only: a
    target is a real model name.
    """
    target = aliases.get(model)
    if target is not None:
        return target
    base, effort = split_model_effort(model)
    if effort is not None and base in aliases:
        return f"{split_model_effort(aliases[base])[0]}-{effort}"
    return model


def merged_aliases(user: Mapping[str, str]) -> dict[str, str]:
    """:data:`DEFAULT_ALIASES` overridden and extended by the user's ``[models.aliases]``."""
    return {**DEFAULT_ALIASES, **user}


def check_alias(name: str, target: str) -> str | None:
    """What is wrong with the alias ``name = target``, or ``None`` when it is fine."""
    if not name or name != name.strip() or any(c.isspace() for c in name):
        return "an alias name must be non-empty and hold no spaces"
    if not target.strip() or any(c.isspace() for c in target):
        return "the target must be a model name (non-empty, no spaces)"
    if target == name:
        return "an alias cannot point at itself"
    return None
