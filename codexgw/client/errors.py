"""The one place where httpx's errors become codexgw errors.

httpx's own ``_transports/default.py`` (``map_httpcore_exceptions``) is the model: the library's
exception tree stops at this boundary, and everything above ``client/`` (``upstream/``, ``auth/``,
``cli/``) sees :class:`~codexgw.errors.UpstreamConnectionError` only. Every call into httpx that can
fail goes through :func:`mapped`, :func:`transport_error` or the helpers of :mod:`codexgw.client.calls`.

Messages name the peer (``the Codex backend``, ``the OAuth server``, ``the usage endpoint`` …) and
the failure's class name, never a URL's query, a header or a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from codexgw.errors import UpstreamConnectionError

__all__ = ["BACKEND", "OAUTH_SERVER", "USAGE_ENDPOINT", "mapped", "transport_error"]

BACKEND = "the Codex backend"
"""The peer named when nothing else is said."""
OAUTH_SERVER = "the OAuth server"
USAGE_ENDPOINT = "the usage endpoint"

_CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)


def transport_error(exc: httpx.HTTPError, *, peer: str = BACKEND) -> UpstreamConnectionError:
    """Map an httpx error to :class:`UpstreamConnectionError`: ``"<peer> timed out (ReadTimeout)"``
    for timeouts, ``"<peer> could not be reached (ConnectError)"`` otherwise."""
    name = type(exc).__name__
    what = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    return UpstreamConnectionError(
        f"{peer} {what} ({name})", cause=name, connect_failed=isinstance(exc, _CONNECT_FAILURES)
    )


@contextmanager
def mapped(peer: str = BACKEND) -> Iterator[None]:
    """Run the block with httpx's errors mapped by :func:`transport_error`.

    Raises:
        UpstreamConnectionError: the block raised an ``httpx.HTTPError`` (chained to nothing: the
            original may carry the request).
    """
    try:
        yield
    except httpx.HTTPError as exc:
        raise transport_error(exc, peer=peer) from None
