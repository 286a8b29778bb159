"""The QuartTrio application: routes, gateway API-key check, the exchange record, and the error handlers.

Every error reaches the client in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``
with the right status, by the rules of :mod:`codexgw.api.boundary` (shared with the hot routes).
"""

from __future__ import annotations

from collections.abc import Sequence

from quart import Blueprint, Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from codexgw.api import admin, chat, compact, manage, models, responses
from codexgw.api.boundary import error_answer, status_error
from codexgw.api.common import authenticate, current_exchange, json_response
from codexgw.api.edge import EdgeRules
from codexgw.api.guard import DrainingApp, EdgeGuard
from codexgw.api.hot import HotRoutes, Route
from codexgw.api.responses_ws import WebSocketRoutes
from codexgw.upstream.gateway import Gateway

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
"""``instructions`` sent when the client gives none (codex-protocol.md §6.3: keep it present)."""


DRAIN_OPEN_PATHS = frozenset({"/health", "/status", "/metrics"})
"""Paths that still answer while the server drains (:mod:`codexgw.upstream.drain`)."""


def create_app(
    gw: Gateway, *, reasoning_mode: str | None = None, blueprints: Sequence[Blueprint] = ()
) -> EdgeGuard:
    """Build the ASGI app serving ``gw``: the edge's cross-site rules (:mod:`codexgw.api.guard`),
    then the Responses WebSocket and the hot routes on plain ASGI (:mod:`codexgw.api.responses_ws`,
    :mod:`codexgw.api.hot`), in front of the Quart app.

    Args:
        gw: the gateway state every route reads.
        reasoning_mode: default display of reasoning summaries in Chat Completions
            (``content``, ``think`` or ``hidden``); ``None`` keeps ``gw.settings.reasoning_mode``,
            which the routes read per request.
        blueprints: more routes for the Quart app, from the layers above (the dashboard).
    """
    if reasoning_mode is not None:
        gw.settings.reasoning_mode = reasoning_mode
    app = create_quart_app(gw, blueprints)
    routes: dict[str, Route] = {
        **dict.fromkeys(chat.PATHS, chat.create_chat_completion),
        **dict.fromkeys(responses.PATHS, responses.create_response),
    }
    quart = DrainingApp(app, lambda: gw.settings.max_body_bytes)  # issue 16: keep-alive after early answers
    hot = HotRoutes(quart, gw, routes, default_instructions=DEFAULT_INSTRUCTIONS)
    websocket = WebSocketRoutes(hot, gw, default_instructions=DEFAULT_INSTRUCTIONS)
    rules = EdgeRules.of(gw.settings.server_names, gw.settings.allow_origins)
    return EdgeGuard(websocket, gw, rules)  # issue 16: the Host, Origin and Content-Type rules


def create_quart_app(gw: Gateway, blueprints: Sequence[Blueprint] = ()) -> QuartTrio:
    """The Quart app: every route but the hot ones (:mod:`codexgw.api.hot`), and the same rules,
    plus ``blueprints``."""
    app = QuartTrio("codexgw")
    app.config.update(
        RESPONSE_TIMEOUT=None,  # design §5: the 60 s default silently cuts long SSE streams
        BODY_TIMEOUT=300,
        MAX_CONTENT_LENGTH=gw.settings.max_body_bytes,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.extensions["codexgw"] = gw
    for module in (compact, models, admin):
        app.register_blueprint(module.bp)
    manage.register(app, gw)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)

    @app.before_request
    async def start_exchange() -> None:
        current_exchange()  # made now: the clock starts when the request arrives

    @app.after_request
    async def finish_exchange(response: Response) -> Response:
        if not (response.content_type or "").startswith("text/event-stream"):  # streams finish when they end
            current_exchange().finish(response.status_code)
        return response

    @app.before_request
    async def refuse_while_draining() -> Response | None:
        """503 ``draining`` once the drain began (issue 16); ``/status`` and ``/metrics`` still
        answer, ``/health`` says ``draining`` itself."""
        if not gw.drain.draining or request.path in DRAIN_OPEN_PATHS:
            return None
        refusal = gw.drain.refusal()
        headers = dict(refusal.headers)
        if request.http_version.startswith("1"):
            headers["connection"] = "close"
        return json_response(refusal.to_body(), status=refusal.status, headers=headers)

    @app.before_request
    async def check_api_key() -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        authenticate(gw, request.path, headers, current_exchange())

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        error = status_error(
            exc.code or 500,
            method=request.method,
            path=request.path,
            max_body_bytes=gw.settings.max_body_bytes,
            description=exc.description or exc.name,
        )
        return _answer(error)

    @app.errorhandler(Exception)
    async def any_error(exc: Exception) -> Response:  # CodexgwError and the unexpected alike
        return _answer(exc)

    return app


def _answer(exc: Exception) -> Response:
    """The current request's answer to ``exc`` (:func:`codexgw.api.boundary.error_answer`)."""
    status, headers, body = error_answer(exc, request.method, request.path)
    return json_response(body, status=status, headers=headers)
