"""The admin API under ``/api/`` (teams contract §4): Quart blueprints, routes only.

``auth`` (sessions, admin keys, CSRF, the first admin's setup), ``keys`` (keys, usage, audit),
``users`` (users, settings), ``accounts`` (accounts, the pool), ``logins`` (device-code and browser
logins run by the server), ``events`` (SSE), ``openapi`` (the OpenAPI 3.1 document, with
``schemas``). The decisions are made in ``upstream/manage*.py``, ``upstream/logins.py`` and the
``policy/`` core; the one error boundary answers every error in OpenAI's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from codexgw.upstream.gateway import Gateway


def register(app: QuartTrio, gw: Gateway) -> None:
    """Add the admin API's blueprints to ``app`` and the server's :class:`~codexgw.upstream.logins.Logins`."""
    from codexgw.api.manage import accounts, auth, events, keys, logins, openapi, users
    from codexgw.upstream.logins import Logins

    app.extensions["codexgw_logins"] = Logins(gw, clock=gw.clock)
    for module in (auth, keys, users, accounts, logins, events, openapi):
        app.register_blueprint(module.bp)
