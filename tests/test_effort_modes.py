"""codex-gateway-pool's reasoning modes (translate/effort_modes.py), ``GET /v1/models/{id}``'s lookup
(upstream/catalog.openai_model), and chat's ``reasoning_mode``/``max_output_tokens``."""

from __future__ import annotations

from typing import Any

import pytest

from codexgw.errors import InvalidRequestError
from codexgw.translate.chat_request import chat_to_responses
from codexgw.translate.effort_modes import effort_for_mode, modes_document
from codexgw.upstream.catalog import BUILTIN_MODELS, openai_model


@pytest.mark.parametrize(
    ("mode", "effort"),
    [
        ("fast", "low"),
        ("low", "low"),
        ("normal", "medium"),
        ("Balanced", "medium"),
        ("medium", "medium"),
        ("high", "high"),
        (" very_high ", "xhigh"),
        ("very-high", "xhigh"),
        ("xhigh", "xhigh"),
        ("max", "xhigh"),
    ],
)
def test_mode_names_map_to_efforts(mode: str, effort: str) -> None:
    assert effort_for_mode(mode) == effort


@pytest.mark.parametrize("mode", ["turbo", "", None, 3, "minimal"])
def test_unknown_mode_is_a_400_naming_the_field(mode: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        effort_for_mode(mode)
    assert info.value.param == "reasoning_mode"


def test_modes_document_lists_the_models_accepting_each_effort() -> None:
    models = [
        {"slug": "b", "priority": 2, "supported_reasoning_levels": [{"effort": "low"}, {"effort": "high"}]},
        {"slug": "a", "priority": 1, "supported_reasoning_levels": [{"effort": "high"}]},
        {"slug": "hidden", "visibility": "hide", "supported_reasoning_levels": [{"effort": "high"}]},
    ]
    doc = modes_document(models)
    assert doc["object"] == "list" and doc["default_reasoning_mode"] == "normal"
    assert [(m["id"], m["reasoning_effort"], m["models"]) for m in doc["data"]] == [
        ("fast", "low", ["b"]),
        ("normal", "medium", []),
        ("high", "high", ["a", "b"]),
        ("very_high", "xhigh", []),
    ]
    assert all(m["object"] == "reasoning_mode" and m["description"] for m in doc["data"])


@pytest.mark.parametrize(
    ("model_id", "found"),
    [
        ("gpt-5.5", True),
        ("gpt-5.5-xhigh", True),
        ("gpt-5.4-mini-low", True),
        ("codex-auto-review", True),
        ("gpt-5.5-minimal", False),
        ("gpt-4o", False),
        ("gpt-5.5-", False),
    ],
)
def test_openai_model_knows_slugs_and_their_effort_variants(model_id: str, found: bool) -> None:
    entry = openai_model(BUILTIN_MODELS, model_id)
    if found:
        assert entry == {"id": model_id, "object": "model", "created": 0, "owned_by": "openai"}
    else:
        assert entry is None


def test_openai_model_aliases_keep_the_id_asked_for() -> None:
    assert openai_model(BUILTIN_MODELS, "codex", aliases={"codex": "gpt-5.5"})["id"] == "codex"
    assert openai_model(BUILTIN_MODELS, "codex", aliases={"codex": "nope"}) is None


def chat(**extra: Any) -> dict[str, Any]:
    body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], **extra}
    return chat_to_responses(body, default_instructions="x").body


def test_chat_reasoning_mode_sets_the_effort_below_reasoning_effort_and_the_suffix() -> None:
    assert chat(reasoning_mode="fast")["reasoning"] == {"effort": "low", "summary": "auto"}
    assert chat(reasoning_mode="fast", reasoning_effort="high")["reasoning"]["effort"] == "high"
    body = {
        "model": "gpt-5.5-xhigh",
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_mode": "fast",
    }
    assert chat_to_responses(body, default_instructions="x").body["reasoning"]["effort"] == "xhigh"
    with pytest.raises(InvalidRequestError):
        chat(reasoning_mode="ludicrous")


def test_chat_max_output_tokens_is_dropped_and_named() -> None:
    body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], "max_output_tokens": 32}
    prepared = chat_to_responses(body, default_instructions="x")
    assert "max_output_tokens" not in prepared.body and prepared.dropped == ["max_output_tokens"]
