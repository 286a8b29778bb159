"""The model catalogue: fetched from the backend, the built-in fallback, the OpenAI rendering.

:class:`Catalog` fetches ``GET {upstream}/codex/models`` (codex-protocol.md §6.1) with an account's
token and caches it; :data:`BUILTIN_MODELS` (§10) answers when no account can fetch it.
:func:`openai_model_list` and :func:`openai_model` (sans-IO) render either as OpenAI's ``GET /v1/models``
and ``GET /v1/models/{id}``. While the fetched catalogue is fresh, a request for a model it does not
list is refused before any account is used (:meth:`Catalog.check_model`: 400 ``model_not_found``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from codexgw.client.calls import request
from codexgw.config import CODEX_CLIENT_VERSION
from codexgw.errors import InvalidRequestError, UpstreamConnectionError
from codexgw.oauth.tokens import RefreshError
from codexgw.translate.classify import parse_json_body
from codexgw.translate.model_names import DEFAULT_ALIASES, resolve_model
from codexgw.upstream.accounts import AccountState
from codexgw.upstream.headers import plain_headers

log = logging.getLogger("codexgw.upstream.catalog")

FETCH_TIMEOUT_S = 5.0
"""Timeout of one ``/codex/models`` request, seconds."""
FETCH_ACCOUNTS = 2
"""How many eligible accounts a fetch tries before falling back to :data:`BUILTIN_MODELS`."""

_EFFORTS = ["low", "medium", "high", "xhigh"]


def _builtin(slug: str, priority: int, visibility: str = "list") -> dict[str, Any]:
    return {
        "slug": slug,
        "display_name": slug,
        "visibility": visibility,
        "priority": priority,
        "supported_reasoning_levels": [{"effort": e, "description": e} for e in _EFFORTS],
        "context_window": 272000,
    }


BUILTIN_MODELS: list[dict[str, Any]] = [
    _builtin("gpt-5.5", 0),
    _builtin("gpt-5.4", 2),
    _builtin("gpt-5.4-mini", 4),
    _builtin("gpt-5.3-codex", 6),
    _builtin("gpt-5.2", 10),
    _builtin("codex-auto-review", 29, "hide"),
]
"""Fallback catalogue, per codex-protocol.md §10 (bundled models.json at the snapshot commit)."""

_BUILTIN_SLUGS = frozenset(m["slug"] for m in BUILTIN_MODELS)


class Catalog:
    """The upstream model catalogue, cached.

    Args:
        accounts: whose tokens fetch it (the first :data:`FETCH_ACCOUNTS` eligible accounts).
        http: the shared upstream client.
        upstream_url: the Codex backend base URL, no trailing slash.
        ttl_s: how long a fetched catalogue is kept, seconds.
        clock: returns epoch seconds; injected for tests.
    """

    def __init__(
        self,
        accounts: AccountState,
        http: httpx.AsyncClient,
        *,
        upstream_url: str,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._http = http
        self._upstream_url = upstream_url
        self._ttl_s = ttl_s
        self._clock = clock
        self._cached: tuple[float, list[dict[str, Any]]] | None = None
        """(expires at, epoch s; the models) of the last successful fetch."""
        self._metric_names: tuple[tuple[frozenset[str], int], frozenset[str]] | None = None

    async def models(self) -> list[dict[str, Any]]:
        """Return the upstream ``ModelInfo`` dicts (each with a ``slug``), cached ``ttl_s``.

        Falls back to :data:`BUILTIN_MODELS` (not cached) when no account can fetch them.
        """
        now = self._clock()
        if self._cached is not None and self._cached[0] > now:
            return self._cached[1]
        models = await self._fetch()
        if models is None:
            return BUILTIN_MODELS
        self._cached = (now + self._ttl_s, models)
        return models

    def known_slugs(self) -> frozenset[str] | None:
        """The slugs of the fetched catalogue while its cache is fresh (hidden models included), or
        ``None`` when the catalogue is not known (never fetched, expired, or only the built-in list)."""
        if self._cached is None or self._cached[0] <= self._clock():
            return None
        return frozenset(m["slug"] for m in self._cached[1])

    def metric_names(self, aliases: Mapping[str, str] | None) -> frozenset[str]:
        """The model names that get their own metrics label: the catalogue's slugs (the built-in
        ones until it is known) and ``aliases``' names and targets (``None``: the built-in aliases);
        cached per catalogue."""
        aliases = DEFAULT_ALIASES if aliases is None else aliases
        slugs = self.known_slugs() or _BUILTIN_SLUGS
        key = (slugs, id(aliases))
        if self._metric_names is None or self._metric_names[0] != key:
            names = slugs | frozenset(aliases) | frozenset(aliases.values())
            self._metric_names = (key, names)
        return self._metric_names[1]

    def check_model(self, model: object) -> None:
        """Refuse a model the known catalogue does not list (:func:`unknown_model`); nothing when the
        catalogue is not known (the backend then answers for itself).

        Raises:
            InvalidRequestError: 400 ``model_not_found``, ``param: "model"``.
        """
        slugs = self.known_slugs()
        if slugs is not None and isinstance(model, str):
            error = unknown_model(model, slugs)
            if error is not None:
                raise error

    async def _fetch(self) -> list[dict[str, Any]] | None:
        candidates = [a for a in self._accounts.accounts.values() if a.eligible]
        for account in candidates[:FETCH_ACCOUNTS]:
            try:
                account = await self._accounts.fresh(account)
                response = await request(
                    self._http,
                    "GET",
                    f"{self._upstream_url}/codex/models",
                    peer="the models endpoint",
                    params={"client_version": CODEX_CLIENT_VERSION},
                    headers=plain_headers(
                        access_token=account.access_token, chatgpt_account_id=account.chatgpt_account_id
                    ),
                    timeout=FETCH_TIMEOUT_S,
                )
            except (UpstreamConnectionError, RefreshError, TimeoutError) as exc:
                log.info(
                    "could not fetch the model catalogue: %s", getattr(exc, "message", type(exc).__name__)
                )
                continue
            body = parse_json_body(response.content) if response.status_code == 200 else None
            if isinstance(body, dict) and isinstance(body.get("models"), list):
                return [m for m in body["models"] if isinstance(m, dict) and isinstance(m.get("slug"), str)]
        return None


def unknown_model(model: str, slugs: frozenset[str]) -> InvalidRequestError | None:
    """The 400 for a ``model`` (its reasoning-effort suffix already split off, an alias resolved)
    that is not among ``slugs``, or ``None`` when it is. Pure."""
    if model in slugs:
        return None
    listed = ", ".join(sorted(slugs)[:6])
    return InvalidRequestError(
        f"The model '{model}' is not served by the ChatGPT accounts behind this gateway; "
        f"GET /v1/models lists the ones that are ({listed})",
        param="model",
        code="model_not_found",
    )


def openai_model_list(
    models: list[dict[str, Any]], *, created: int = 0, aliases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Render upstream ``ModelInfo`` dicts (codex-protocol.md §6.1) as OpenAI's model list.

    Listed models come first in ``priority`` order, followed by each one's reasoning-effort variants
    (``gpt-5.5-high``), then the model aliases (``aliases``, default
    :data:`~codexgw.translate.model_names.DEFAULT_ALIASES`) in name order; every route accepts all
    of them.

    Returns:
        ``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``.
    """
    shown = [m for m in models if m.get("visibility", "list") == "list"]
    shown.sort(key=lambda m: (m.get("priority", 100), m["slug"]))
    data = [_entry(m["slug"], created) for m in shown]
    for m in shown:
        for level in m.get("supported_reasoning_levels") or []:
            effort = level.get("effort") if isinstance(level, dict) else None
            if isinstance(effort, str):
                data.append(_entry(f"{m['slug']}-{effort}", created))
    listed = {entry["id"] for entry in data}
    data += [_entry(name, created) for name in sorted(aliases or DEFAULT_ALIASES) if name not in listed]
    return {"object": "list", "data": data}


def _entry(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "openai"}


def openai_model(
    models: list[dict[str, Any]],
    model_id: str,
    *,
    created: int = 0,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The OpenAI model object ``GET /v1/models/{model_id}`` answers, or ``None`` for an unknown id.

    Known ids: every slug of ``models`` (listed or hidden: the routes accept both) and its
    reasoning-effort variants (``gpt-5.5-high``, one per ``supported_reasoning_levels`` entry), and
    the model aliases (``aliases``, default :data:`~codexgw.translate.model_names.DEFAULT_ALIASES`,
    with or without an effort suffix) whose target is one of those, as :func:`openai_model_list`
    lists them. The entry keeps the id asked for, as OpenAI answers an alias.

    Returns:
        ``{"id", "object": "model", "created", "owned_by": "openai"}`` or ``None``.
    """
    target = resolve_model(model_id, DEFAULT_ALIASES if aliases is None else aliases)
    for m in models:
        slug = m["slug"]
        efforts = [
            level.get("effort")
            for level in m.get("supported_reasoning_levels") or []
            if isinstance(level, dict)
        ]
        if target == slug or any(target == f"{slug}-{e}" for e in efforts if isinstance(e, str)):
            return _entry(model_id, created)
    return None
