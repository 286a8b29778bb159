"""The one place where httpx errors become codexgw errors (httpx's own ``map_httpcore_exceptions`` is the model)."""

from __future__ import annotations

import httpx

from codexgw.errors import UpstreamConnectionError


def transport_error(exc: httpx.HTTPError) -> UpstreamConnectionError:
    """Map an httpx error to :class:`UpstreamConnectionError` (never includes request headers)."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamConnectionError(f"the Codex backend timed out ({type(exc).__name__})")
    return UpstreamConnectionError(f"the Codex backend could not be reached ({type(exc).__name__})")
