"""``POST /v1/responses/compact``: relayed to ``{upstream}/codex/responses/compact`` (codex-protocol.md §6.1)."""

from __future__ import annotations

import uuid

from quart import Blueprint, Response, request

from codexgw.api.body import read_json_body
from codexgw.api.common import current_exchange, gateway, json_response
from codexgw.api.responses import expand_history, tenant_of
from codexgw.translate.params import prepare_responses_request
from codexgw.upstream.failover import post_compact

bp = Blueprint("compact", __name__)

COMPACT_FIELDS = ("model", "input", "instructions", "tools", "parallel_tool_calls", "reasoning", "text")
"""The body of ``/codex/responses/compact`` (codex-protocol.md §6.1)."""


@bp.post("/v1/responses/compact")
@bp.post("/responses/compact")
async def compact_response() -> Response:
    """Compact a conversation: ``{"output": [items…]}`` from ``/codex/responses/compact`` (§6.1).

    The body takes the same fix-ups as ``/v1/responses`` (ids stripped, ``system`` → ``developer``,
    string ``input``, ``previous_response_id`` expanded); only the fields of :data:`COMPACT_FIELDS`
    are sent. Failover and errors are those of the stream path.
    """
    gw = gateway()
    body = await read_json_body(gw.settings.max_body_bytes)
    exchange = current_exchange()
    _previous_id, _history, body = await expand_history(gw, body, tenant_of(exchange.key))
    prepared = prepare_responses_request(body, default_instructions="", aliases=gw.settings.model_aliases)
    compact = {k: prepared.body[k] for k in COMPACT_FIELDS if prepared.body.get(k) is not None}
    if not compact.get("instructions"):
        compact.pop("instructions", None)  # codex-rs omits it when empty (§6.1)
    exchange.accounted = True
    if exchange.key is not None:  # the key's policy, as on the hot routes (teams contract §2)
        exchange.policy_headers = gw.teams.policy.admit(
            exchange.key, model=str(body.get("model")), body=compact, now=gw.clock()
        )
        exchange.admitted = True
    result, account = await post_compact(gw, compact, request.headers, scope=exchange.scope)
    exchange.account, exchange.model = account.name, compact["model"]
    # The backend answers {"output": [...]}; the public API's CompactedResponse has a few more fields.
    result.setdefault("id", f"resp_{uuid.uuid4().hex}")
    result.setdefault("object", "response.compaction")
    result.setdefault("created_at", int(gw.clock()))
    headers = dict(exchange.policy_headers or {})
    if prepared.dropped:
        headers["x-codexgw-dropped-params"] = ", ".join(prepared.dropped)
    return json_response(result, headers=headers)
