"""Who may talk to the gateway from a browser: the ``Host``, ``Origin`` and ``Content-Type`` rules.

Sans-IO: :func:`check` takes a request's method and three header values and says whether to serve
it; :class:`codexgw.api.guard.EdgeGuard` applies it, in front of every route (``/v1``, ``/status``,
``/metrics``, ``/api/*``, the dashboard and the WebSocket upgrade). Why (issue 16 item 3): a
loopback gateway with no key serves anyone who reaches it, and a web page the user visits reaches
it, through the browser:

* **Host** (DNS rebinding: a page's own name made to resolve to 127.0.0.1, so the browser treats
  the gateway as that page and lets it read ``/status``). Served: a ``Host`` that is an IP literal
  (rebinding needs a name; a page at an IP address is that address), ``localhost`` and names under
  ``.localhost`` (browsers resolve them to loopback themselves), and the names of ``--server-name``
  (a leading dot allows the subdomains, ``*`` any host: a proxy in front checks it). The port is
  not compared, as in Django's ``ALLOWED_HOSTS``: rebinding changes the name, and a page on
  another port of an allowed name sends an ``Origin``, which the next rule checks.
* **Origin** (a page posting to the gateway; browsers send ``Origin`` on every cross-origin request
  and on same-origin ones but ``GET``/``HEAD``). Served: no ``Origin`` (not a browser page), the
  gateway's own origin (``Origin``'s host and port equal ``Host``'s: the dashboard), and those of
  ``--allow-origin`` (``*``: any), which also get CORS headers and preflight answers
  (:func:`cors_headers`, :func:`preflight_headers`). ``Origin: null`` (a sandboxed page, a file) is
  refused.
* **Content-Type** of a request with a body: JSON (``application/json`` or ``…+json``) only. A
  page can send ``text/plain``, form and multipart bodies to any site without a preflight; JSON
  needs one, which only allowed origins pass.

Refusals are OpenAI-shaped errors: 403 ``host_not_allowed`` / ``origin_not_allowed``, 415
``unsupported_media_type``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from codexgw.errors import ClientError, ForbiddenError, UnsupportedMediaTypeError

__all__ = ["EdgeRules", "check", "cors_headers", "preflight_headers"]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods whose body must be JSON."""

EXPOSED_HEADERS = (
    "x-request-id, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, "
    "x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, retry-after, "
    "x-should-retry, x-codexgw-dropped-params, openai-model"
)
"""Answer headers a cross-origin page may read (``Access-Control-Expose-Headers``)."""

PREFLIGHT_MAX_AGE_S = 600
"""How long a browser may cache a preflight answer (s)."""


@dataclass(frozen=True, eq=False)  # hashed by identity: the lookups' caches key on it cheaply
class EdgeRules:
    """The configured names and origins (``--server-name``, ``--allow-origin``).

    Attributes:
        names: allowed ``Host`` names, lower case, besides loopback names and IP literals.
        suffixes: allowed name suffixes (``.example.com``).
        any_host: ``--server-name *``: no ``Host`` check.
        origins: allowed cross-site origins, ``scheme://host[:port]`` lower case, default port dropped.
        any_origin: ``--allow-origin *``.
    """

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    any_host: bool = False
    origins: frozenset[str] = frozenset()
    any_origin: bool = False

    @classmethod
    def of(cls, server_names: Iterable[str] = (), allow_origins: Iterable[str] = ()) -> EdgeRules:
        """Rules from the settings' lists (names any case; origins as a browser writes them)."""
        names = [n.strip().lower().rstrip(".") for n in server_names if n.strip()]
        origins = [o.strip() for o in allow_origins if o.strip()]
        return cls(
            names=frozenset(n for n in names if n != "*" and not n.startswith(".")),
            suffixes=tuple(n for n in names if n.startswith(".")),
            any_host="*" in names,
            origins=frozenset(o for o in (_origin_key(o) for o in origins if o != "*") if o),
            any_origin="*" in origins,
        )


def check(
    rules: EdgeRules, method: str, host: str, origin: str | None, content_type: str | None, *, has_body: bool
) -> ClientError | None:
    """The refusal of a request, or ``None`` to serve it (the rules of the module docstring).

    Args:
        rules: the configured names and origins.
        method: the request method, upper case.
        host: the ``Host`` header (HTTP/2: ``:authority``), ``""`` if none.
        origin: the ``Origin`` header, ``None`` if absent.
        content_type: the ``Content-Type`` header, ``None`` if absent.
        has_body: the request announces a body (``Content-Length`` > 0 or ``Transfer-Encoding``).

    Returns:
        A :class:`~codexgw.errors.ForbiddenError` (403) or
        :class:`~codexgw.errors.UnsupportedMediaTypeError` (415) to answer, or ``None``.
    """
    if not (rules.any_host or _host_allowed(rules, host)):
        return ForbiddenError(
            f"Host {host[:100]!r} is not a name this gateway serves; start it with --server-name "
            "NAME for the name clients use",
            code="host_not_allowed",
        )
    if origin is not None and not origin_allowed(rules, origin, host):
        return ForbiddenError(
            f"Origin {origin[:100]!r} may not call this gateway; start it with --allow-origin ORIGIN "
            "for a browser client you trust",
            code="origin_not_allowed",
        )
    if has_body and method in BODY_METHODS and not _is_json(content_type):
        return UnsupportedMediaTypeError(
            f"Content-Type {content_type[:100]!r} is not JSON; send Content-Type: application/json"
            if content_type
            else "the request has a body but no Content-Type; send Content-Type: application/json"
        )
    return None


def origin_allowed(rules: EdgeRules, origin: str, host: str) -> bool:
    """``origin`` is the gateway's own (its host and port are ``host``'s) or an allowed one."""
    return _same_origin(origin, host) or cross_origin_allowed(rules, origin)


def cross_origin_allowed(rules: EdgeRules, origin: str) -> bool:
    """``origin`` is one of ``--allow-origin`` (``*``: any but ``null``); such a page gets CORS headers."""
    if origin == "null":
        return False
    return rules.any_origin or _origin_key(origin) in rules.origins


def cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    """The CORS headers of an answer to an allowed cross-origin page (no credentials: keys are
    bearer tokens)."""
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]


def preflight_headers(origin: str, requested_headers: str | None) -> list[tuple[bytes, bytes]]:
    """The headers of the 204 answer to a preflight (``OPTIONS`` with
    ``Access-Control-Request-Method``) from an allowed page: the methods, the requested headers
    (those that are header names), and :data:`PREFLIGHT_MAX_AGE_S`."""
    names = [n.strip() for n in (requested_headers or "").split(",")]
    allowed = ", ".join(n for n in names if n and all(c.isalnum() or c in "-_" for c in n))
    headers = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE"),
        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
        (b"vary", b"Origin, Access-Control-Request-Headers"),
    ]
    if allowed:
        headers.append((b"access-control-allow-headers", allowed.encode("latin-1")))
    return headers


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


@lru_cache(maxsize=256)
def _host_allowed(rules: EdgeRules, host: str) -> bool:
    name = _host_name(host)
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or name in rules.names:
        return True
    if any(name.endswith(suffix) or name == suffix[1:] for suffix in rules.suffixes):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _host_name(host: str) -> str:
    """``Host``'s name, lower case, without the port, the IPv6 brackets and a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else ""
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


@lru_cache(maxsize=256)
def _origin_key(origin: str) -> str:
    """``scheme://host[:port]``, lower case, the scheme's default port dropped; ``""`` if not an origin."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or not rest or "/" in rest.rstrip("/"):
        return ""
    netloc = rest.rstrip("/")
    default = _DEFAULT_PORTS.get(scheme)
    if default and netloc.endswith(":" + default):
        netloc = netloc[: -len(default) - 1]
    return f"{scheme}://{netloc}"


@lru_cache(maxsize=256)
def _same_origin(origin: str, host: str) -> bool:
    key = _origin_key(origin)
    if not key:
        return False
    netloc = key.split("://", 1)[1]
    host = host.strip().lower()
    for port in ("80", "443"):
        if host.endswith(":" + port):
            host = host[: -len(port) - 1]
    return netloc == host
