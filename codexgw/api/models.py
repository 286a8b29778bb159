"""``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /v1/modes`` and ``GET /health``."""

from __future__ import annotations

from quart import Blueprint, Response

from codexgw.api.common import current_exchange, gateway, json_response
from codexgw.errors import NotFoundError
from codexgw.policy.request import allows_model
from codexgw.translate.effort_modes import modes_document
from codexgw.upstream.catalog import openai_model, openai_model_list

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


@bp.get("/v1/models/<path:model_id>")
@bp.get("/models/<path:model_id>")
async def retrieve_model(model_id: str) -> Response:
    """One model in OpenAI's shape (``openai`` SDK ``models.retrieve``): a catalogue slug, one of its
    effort variants (``gpt-5.5-high``) or a model alias (``codex-mini``, ``[models.aliases]``).

    Raises:
        NotFoundError: 404 ``model_not_found`` for any other id (as OpenAI answers it).
    """
    gw = gateway()
    entry = openai_model(await gw.models(), model_id, aliases=gw.settings.model_aliases)
    key = current_exchange().key
    if entry is None or (key is not None and not allows_model(key, model_id)):  # outside its allowlist
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
    """The version and a pool summary (no secrets): 200 ``"ok"`` while some account can serve now,
    503 ``"degraded"`` while none can (none configured, all disabled, needing a login or cooling
    down), so a load balancer stops routing here; 503 ``"draining"`` (with ``Retry-After``) once
    the server is shutting down (:mod:`codexgw.upstream.drain`)."""
    from codexgw import __version__

    gw = gateway()
    now = gw.clock()
    accounts = list(gw.accounts.values())
    usable = sum(1 for a in accounts if gw.pool.is_usable(a.id, now=now))
    if gw.drain.draining:  # shutting down (issue 16): the load balancer moves on
        refusal = gw.drain.refusal()
        body = {"status": "draining", "version": __version__, "accounts": len(accounts), "usable_accounts": usable}
        return json_response(body, status=503, headers={"cache-control": "no-store", **refusal.headers})
    body = {
        "status": "ok" if usable else "degraded",
        "version": __version__,
        "accounts": len(accounts),
        "usable_accounts": usable,
    }
    return json_response(body, status=200 if usable else 503, headers={"cache-control": "no-store"})
