"""``GET /v1/models`` and ``GET /health``."""

from __future__ import annotations

from quart import Blueprint, Response

from codexgw.api.common import gateway, json_response
from codexgw.upstream.catalog import openai_model_list

bp = Blueprint("models", __name__)


@bp.get("/v1/models")
@bp.get("/models")
async def list_models() -> Response:
    """OpenAI's model list, from the upstream catalogue (cached) or the built-in fallback."""
    gw = gateway()
    return json_response(openai_model_list(await gw.models(), aliases=gw.settings.model_aliases))


@bp.get("/health")
async def health() -> Response:
    """Liveness and a one-line pool summary (no secrets): 200 while the server runs."""
    gw = gateway()
    accounts = list(gw.accounts.values())
    usable = sum(1 for a in accounts if a.eligible)
    return json_response({"status": "ok", "accounts": len(accounts), "usable_accounts": usable})
