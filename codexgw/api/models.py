"""``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /v1/modes`` and ``GET /health``."""

from __future__ import annotations

from quart import Blueprint, Response

from codexgw.api.common import gateway, json_response
from codexgw.errors import NotFoundError
from codexgw.translate.effort_modes import modes_document
from codexgw.upstream.catalog import openai_model, openai_model_list

bp = Blueprint("models", __name__)

MODEL_ALIASES: dict[str, str] = {}
"""Alias id → catalogue id for ``GET /v1/models/{id}``: the hook for model aliases (none yet)."""


@bp.get("/v1/models")
@bp.get("/models")
async def list_models() -> Response:
    """OpenAI's model list, from the upstream catalogue (cached) or the built-in fallback."""
    return json_response(openai_model_list(await gateway().models()))


@bp.get("/v1/models/<path:model_id>")
@bp.get("/models/<path:model_id>")
async def retrieve_model(model_id: str) -> Response:
    """One model in OpenAI's shape (``openai`` SDK ``models.retrieve``): a catalogue slug or one of its
    effort variants (``gpt-5.5-high``).

    Raises:
        NotFoundError: 404 ``model_not_found`` for any other id (as OpenAI answers it).
    """
    entry = openai_model(await gateway().models(), model_id, aliases=MODEL_ALIASES)
    if entry is None:
        raise NotFoundError(f"The model '{model_id}' does not exist", param="model", code="model_not_found")
    return json_response(entry)


@bp.get("/v1/modes")
@bp.get("/modes")
async def list_modes() -> Response:
    """codex-gateway-pool's reasoning modes, each with its effort and the models that accept it
    (:func:`codexgw.translate.effort_modes.modes_document`)."""
    return json_response(modes_document(await gateway().models()))


@bp.get("/health")
async def health() -> Response:
    """Liveness and a one-line pool summary (no secrets): 200 while the server runs."""
    gw = gateway()
    accounts = list(gw.accounts.values())
    usable = sum(1 for a in accounts if a.eligible)
    return json_response({"status": "ok", "accounts": len(accounts), "usable_accounts": usable})
