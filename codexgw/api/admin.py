"""Operator routes: ``GET /status`` (pool state as JSON) and ``GET /metrics`` (Prometheus text).

Both sit behind the gateway API key when one is set (``app.check_api_key``) and never show a token:
``/status`` is built by :func:`codexgw.status.status_from_pool` from non-secret fields only, and
metric labels are account names, routes, models and statuses.
"""

from __future__ import annotations

import trio
from quart import Blueprint, Response, request

from codexgw.api.common import gateway, json_response
from codexgw.status import status_from_pool

bp = Blueprint("admin", __name__)


@bp.get("/status")
async def status() -> Response:
    """The pool's state: strategy, pin, per-account health, cooldowns, quota windows, counters.

    Shape: see :mod:`codexgw.status`, plus ``"keys"``: today's totals per API key
    (``Teams.status_keys``). Once keys are required, only an admin key may read it.
    """
    gw = gateway()
    now = gw.clock()
    document = status_from_pool(gw.pool.describe(now), gw.accounts.values(), now=now)
    document["keys"] = gw.teams.status_keys()  # per-key totals today (teams contract §3; no secret)
    if gw.workers_view is not None:  # serve --workers: which one answered, and all of them
        document["worker"] = gw.workers_view.index
        document["workers"] = await trio.to_thread.run_sync(gw.workers_view.workers)
    return json_response(document, headers={"cache-control": "no-store"})


@bp.get("/metrics")
async def metrics() -> Response:
    """Prometheus exposition of the gateway's own registry (OpenMetrics when the scraper asks); with
    ``serve --workers``, every worker's series labelled ``worker`` (``upstream/workers_view.py``)."""
    gw = gateway()
    if gw.workers_view is not None:
        body, content_type = await trio.to_thread.run_sync(gw.workers_view.render_metrics)
    else:
        body, content_type = gw.metrics.render(request.headers.get("accept", ""))
    return Response(body, status=200, content_type=content_type, headers={"cache-control": "no-store"})
