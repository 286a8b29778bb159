"""The policy of one ``/v1`` request, in the contract's order (teams contract §2).

1. authenticate (:meth:`codexgw.policy.keys.KeyRing.authenticate`, before the body is read: 401);
2. the model allowlist (403 ``model_not_allowed``, param ``model``);
3. the rate limits (:class:`~codexgw.policy.limits.Limiter`: 429 ``rate_limit_exceeded``);
4. the effort ceiling (:func:`cap_effort`: a higher effort is lowered, and the change named in
   ``x-codexgw-effort-lowered``);
5. the default reasoning display (:func:`reasoning_mode`: the request's ``x-codexgw-reasoning``
   header, else the key's ``reasoning_mode``, else the server's);
6. routing within the key's scope (the shell: ``Pool.pick(allowed=...)``).

:class:`RequestPolicy` runs 2 to 4 (:meth:`~RequestPolicy.admit`) and accounts for the request at
its end (:meth:`~RequestPolicy.finish`: usage ledger, limiter release). Keys without limits cost a
set lookup; no step reads the clock (``now`` comes in).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexgw.errors import ForbiddenError
from codexgw.policy.keys import ApiKey
from codexgw.policy.limits import Limiter
from codexgw.policy.usage import NO_KEY, Ledger, tokens_of
from codexgw.translate.params import EFFORTS, split_model_effort

__all__ = ["EFFORT_HEADER", "RequestPolicy", "allows_model", "cap_effort", "check_model", "reasoning_mode"]

EFFORT_HEADER = "x-codexgw-effort-lowered"
"""Names an effort the key's ceiling lowered: ``xhigh->medium`` (``default->medium`` when the
request named none)."""
DEFAULT_EFFORT = "medium"
"""The backend's default effort for most models (codex-protocol.md §10)."""
_RANK = {effort: i for i, effort in enumerate(EFFORTS)}


def allows_model(key: ApiKey, model: str, resolved: str | None = None) -> bool:
    """True when the key's allowlist (if any) names ``model``, its base without an effort suffix,
    or ``resolved`` (the model an alias stands for)."""
    allowed = key.models
    return (
        allowed is None or model in allowed or split_model_effort(model)[0] in allowed or resolved in allowed
    )


def check_model(key: ApiKey, model: str, resolved: str | None = None) -> None:
    """Refuse ``model`` unless the key's allowlist names it, its base (``gpt-5.5`` allows
    ``gpt-5.5-high``) or the model it resolved to (``resolved``: an alias's target, as sent
    upstream). A key without a list allows every model.

    Raises:
        ForbiddenError: 403, type ``invalid_request_error``, code ``model_not_allowed``, param ``model``.
    """
    if allows_model(key, model, resolved):
        return
    raise ForbiddenError(
        f"The model '{model}' is not allowed for this API key (allowed: {', '.join(sorted(key.models or ()))})",
        param="model",
        code="model_not_allowed",
    )


def cap_effort(body: dict[str, Any], max_effort: str | None) -> str | None:
    """Lower the Responses body's ``reasoning.effort`` to ``max_effort``; returns the header value.

    A body that names no effort gets ``min(max_effort, medium)`` (the backend's usual default might
    exceed the ceiling) unless ``max_effort`` is ``xhigh``; a body whose ``reasoning`` is null
    (no reasoning) is left alone. ``body`` is changed in place.

    Returns:
        ``"<requested>-><sent>"`` (``default`` for none) when the effort was changed, else ``None``.
    """
    if max_effort is None or max_effort not in _RANK:
        return None
    if "reasoning" in body and body["reasoning"] is None:
        return None
    reasoning = body.get("reasoning")
    reasoning = dict(reasoning) if isinstance(reasoning, Mapping) else {}
    requested = reasoning.get("effort")
    if isinstance(requested, str) and requested in _RANK:
        if _RANK[requested] <= _RANK[max_effort]:
            return None
        sent, said = max_effort, requested
    else:
        if max_effort == EFFORTS[-1]:
            return None
        sent = max_effort if _RANK[max_effort] < _RANK[DEFAULT_EFFORT] else DEFAULT_EFFORT
        said = "default"
    reasoning["effort"] = sent
    body["reasoning"] = reasoning
    return f"{said}->{sent}"


def reasoning_mode(header: str | None, key: ApiKey | None, server_default: str) -> str:
    """The reasoning display of a chat request: its ``x-codexgw-reasoning`` header, else the key's
    ``reasoning_mode``, else the server's default (validated by the caller)."""
    if header is not None:
        return header
    if key is not None and key.reasoning_mode is not None:
        return key.reasoning_mode
    return server_default


class RequestPolicy:
    """Steps 2-4 at the start of a request, the accounting at its end.

    Args:
        limiter: the rate-limit counters.
        ledger: the usage ledger (also the source of ``tokens_per_day``).
    """

    def __init__(self, limiter: Limiter, ledger: Ledger) -> None:
        self.limiter = limiter
        self.ledger = ledger

    def admit(self, key: ApiKey | None, *, model: str, body: dict[str, Any], now: float) -> dict[str, str]:
        """Check the allowlist and the limits for a request of ``key`` (``None``: anonymous) for
        ``model`` (as the client named it) at ``now``, and cap the effort of ``body`` (the Responses
        body to send, changed in place).

        Returns:
            Headers for the answer (``x-ratelimit-*``, ``x-codexgw-effort-lowered``). An admitted
            request of a key with limits is counted: call :meth:`finish` once when it ends.

        Raises:
            ForbiddenError: 403 ``model_not_allowed``.
            RateLimitError: 429 ``rate_limit_exceeded`` (its headers include the ``x-ratelimit-*``).
        """
        if key is None:
            return {}
        resolved = body.get("model")
        check_model(key, model, resolved if isinstance(resolved, str) else None)
        headers: dict[str, str] = {}
        if key.limited:
            tokens_today = self.ledger.tokens_today(key.name, now) if key.tokens_per_day is not None else 0
            admission = self.limiter.admit(key, now=now, tokens_today=tokens_today)
            if admission.refusal is not None:
                raise admission.refusal
            headers = admission.headers
        lowered = cap_effort(body, key.max_effort)
        if lowered is not None:
            headers[EFFORT_HEADER] = lowered
        return headers

    def finish(
        self,
        key: ApiKey | None,
        *,
        admitted: bool,
        now: float,
        account: str | None,
        model: str | None,
        usage: Mapping[str, Any] | None,
        error: bool,
    ) -> None:
        """Account for a request that ended at ``now``: the ledger's counters, and the limiter's
        release when it was ``admitted`` (counted by :meth:`admit`)."""
        name = key.name if key is not None else NO_KEY
        self.ledger.record(now=now, key=name, account=account, model=model, usage=usage, error=error)
        if admitted and key is not None:
            self.limiter.release(name, tokens=tokens_of(usage), now=now)
