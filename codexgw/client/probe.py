"""A blocking GET that says where it stopped, for ``codexgw doctor`` and ``setup`` (httpx's errors
are read here, in ``client/``, as everywhere else).

:func:`probe_get` never raises for a network failure: it returns a :class:`Probe` naming the stage
(``connect``, ``tls``, ``timeout``) and the error's class, or the response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Probe", "probe_get"]


@dataclass(frozen=True)
class Probe:
    """The outcome of one GET.

    Attributes:
        stage: ``http`` (an answer came), ``connect``, ``tls`` (the handshake failed) or ``timeout``.
        error: the httpx error's class name (``ConnectError`` …), ``""`` for an answer.
        response: the answer (body read), or ``None``.
    """

    stage: str
    error: str = ""
    response: httpx.Response | None = None


def probe_get(url: str, *, timeout_s: float, headers: dict[str, str] | None = None, **kwargs: Any) -> Probe:
    """``GET url`` without following redirects; see :class:`Probe`. Never raises httpx errors."""
    try:
        response = httpx.get(url, timeout=timeout_s, headers=headers or {}, follow_redirects=False, **kwargs)
    except httpx.TimeoutException as exc:
        return Probe("timeout", type(exc).__name__)
    except httpx.HTTPError as exc:
        text = str(exc).upper()
        tls = isinstance(exc, httpx.ConnectError) and any(w in text for w in ("SSL", "CERTIFICATE", "TLS"))
        return Probe("tls" if tls else "connect", type(exc).__name__)
    return Probe("http", response=response)
