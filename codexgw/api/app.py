"""The QuartTrio application: routes, gateway API-key check, and one error handler for everything.

Every error reaches the client in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``
with the right status; unexpected exceptions are logged here and answered 500 without a traceback.
"""

from __future__ import annotations

import logging
import time

from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from codexgw.api import admin, chat, compact, models, responses
from codexgw.api.common import access_log, api_key_error, error_reply, json_response
from codexgw.api.hot import HotRoutes, Route
from codexgw.errors import (
    ClientError,
    CodexgwError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)
from codexgw.upstream.gateway import Gateway

log = logging.getLogger("codexgw.api.app")

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
"""``instructions`` sent when the client gives none (codex-protocol.md §6.3: keep it present)."""


def create_app(gw: Gateway, *, reasoning_mode: str = "content") -> HotRoutes:
    """Build the ASGI app serving ``gw``: the hot routes on plain ASGI in front of the Quart app.

    Args:
        gw: the gateway state every route reads.
        reasoning_mode: default display of reasoning summaries in Chat Completions
            (``content``, ``think`` or ``hidden``).
    """
    app = create_quart_app(gw)
    routes: dict[str, Route] = {
        **dict.fromkeys(chat.PATHS, chat.create_chat_completion),
        **dict.fromkeys(responses.PATHS, responses.create_response),
    }
    return HotRoutes(
        app, gw, routes, default_instructions=DEFAULT_INSTRUCTIONS, reasoning_mode=reasoning_mode
    )


def create_quart_app(gw: Gateway) -> QuartTrio:
    """The Quart app: every route but the hot ones (:mod:`codexgw.api.hot`), and the same rules."""
    app = QuartTrio("codexgw")
    app.config.update(
        RESPONSE_TIMEOUT=None,  # design §5: the 60 s default silently cuts long SSE streams
        BODY_TIMEOUT=300,
        MAX_CONTENT_LENGTH=gw.settings.max_body_bytes,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.extensions["codexgw"] = gw
    for module in (responses, compact, models, admin):
        app.register_blueprint(module.bp)

    @app.before_request
    async def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    async def log_request(response: Response) -> Response:
        if not (response.content_type or "").startswith("text/event-stream"):  # streams log when they end
            access_log(
                request.method,
                request.path,
                response.status_code,
                getattr(g, "started", time.perf_counter()),
                account=getattr(g, "account", None),
                model=getattr(g, "model", None),
                usage=getattr(g, "usage", None),
            )
        return response

    @app.before_request
    async def check_api_key() -> None:
        error = api_key_error(
            gw.settings.api_key, request.path, {k.lower(): v for k, v in request.headers.items()}
        )
        if error is not None:
            raise error

    @app.errorhandler(CodexgwError)
    async def codexgw_error(exc: CodexgwError) -> Response:
        if not isinstance(exc, ClientError):
            log.warning("%s %s -> %d %s", request.method, request.path, exc.status, exc.message)
        status, headers, body = error_reply(exc)
        return json_response(body, status=status, headers=headers)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        error: CodexgwError
        if status == 404:
            error = NotFoundError(f"Unknown route: {request.method} {request.path}")
        elif status == 405:
            error = MethodNotAllowedError(f"Method {request.method} is not allowed on {request.path}")
        elif status == 413:
            error = PayloadTooLargeError(f"The request body exceeds {gw.settings.max_body_bytes} bytes")
        else:
            error = (
                ClientError(exc.description or exc.name, status=status)
                if status < 500
                else CodexgwError("Internal server error", status=status)
            )
        return json_response(error.to_body(), status=error.status)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(CodexgwError("Internal server error").to_body(), status=500)

    return app
