"""The one place where httpx errors become codexgw errors (httpx's own ``map_httpcore_exceptions`` is the model)."""

from __future__ import annotations

import httpx

from codexgw.errors import UpstreamConnectionError


def transport_error(exc: httpx.HTTPError) -> UpstreamConnectionError:
    """Map an httpx error to :class:`UpstreamConnectionError` (never includes request headers)."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamConnectionError(f"the Codex backend timed out ({type(exc).__name__})")
    return UpstreamConnectionError(f"the Codex backend could not be reached ({type(exc).__name__})")


def delivery_error(exc: httpx.HTTPError, target: str) -> str:
    """One line for a failed POST to ``target`` (a notification URL's host; never the URL itself,
    whose path may be a secret ntfy topic): ``"ntfy.sh timed out (ReadTimeout)"``."""
    if isinstance(exc, httpx.TimeoutException):
        return f"{target} timed out ({type(exc).__name__})"
    return f"{target} could not be reached ({type(exc).__name__})"
