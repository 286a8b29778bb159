"""``GET /v1/models`` and ``GET /health``."""

from __future__ import annotations

from quart import Blueprint, Response

from codexgw.api.common import current_exchange, gateway, json_response
from codexgw.policy.request import allows_model
from codexgw.upstream.catalog import openai_model_list

bp = Blueprint("models", __name__)


@bp.get("/v1/models")
@bp.get("/models")
async def list_models() -> Response:
    """OpenAI's model list, from the upstream catalogue (cached) or the built-in fallback; for an API
    key with a model allowlist, the models it allows (teams contract §2)."""
    gw = gateway()
    listing = openai_model_list(await gw.models(), aliases=gw.settings.model_aliases)
    key = current_exchange().key
    if key is not None and key.models is not None:
        listing["data"] = [m for m in listing["data"] if allows_model(key, str(m.get("id")))]
    return json_response(listing)


@bp.get("/health")
async def health() -> Response:
    """The version and a pool summary (no secrets): 200 ``"ok"`` while some account can serve now,
    503 ``"degraded"`` while none can (none configured, all disabled, needing a login or cooling
    down), so a load balancer stops routing here."""
    from codexgw import __version__

    gw = gateway()
    now = gw.clock()
    accounts = list(gw.accounts.values())
    usable = sum(1 for a in accounts if gw.pool.is_usable(a.id, now=now))
    body = {
        "status": "ok" if usable else "degraded",
        "version": __version__,
        "accounts": len(accounts),
        "usable_accounts": usable,
    }
    return json_response(body, status=200 if usable else 503, headers={"cache-control": "no-store"})
