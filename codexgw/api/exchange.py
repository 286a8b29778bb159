"""One record per HTTP exchange: the facts of a request, filled as they are learned, read once at the end.

An :class:`Exchange` is made when a request arrives (by :class:`codexgw.api.hot.HotRoutes` for the
hot routes, by the Quart app's ``before_request`` for the others, where it lives in ``g.exchange``);
the route fills in the account and model once the upstream answered, the usage once reported; a
streamed answer gets its outcome from the stream's state when it ends
(:func:`codexgw.upstream.relay.relay` calls :meth:`Exchange.end_stream`). :meth:`Exchange.finish`
then writes the access-log line and counts the request in the metrics, and hands it to the teams
state (:meth:`codexgw.upstream.teams.Teams.finished`: the key's usage, its rate-limit release, the
``request`` event): the only readers.

The request's API key and scope are set when it is authenticated; a model request (the hot routes
and compact) is marked ``accounted`` and, once past the key's policy, ``admitted``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codexgw.translate.stream_state import Outcome

if TYPE_CHECKING:
    from codexgw.metrics import Metrics
    from codexgw.policy.keys import ApiKey
    from codexgw.upstream.teams import Teams

access_logger = logging.getLogger("codexgw.access")

__all__ = ["Exchange", "access_logger"]


@dataclass
class Exchange:
    """The facts of one request and its answer (design §3 logging: one line per request).

    Attributes:
        method, path: the request line's.
        started: ``time.perf_counter()`` when the request arrived (s); the line gives the duration.
        metrics: where the request is counted (``None``: not counted).
        route: the metrics ``route`` label: the hot route's path, the Quart URL rule, or
            ``unmatched``; ``path`` when never set.
        account, model: the account that served it and the model, once known.
        usage: the upstream's Responses ``usage`` (``input_tokens``/``output_tokens``), if reported.
        status: the answer's HTTP status, set by :meth:`finish`.
        outcome: how a streamed answer ended (``None`` for a whole answer).
        teams: the teams state that accounts for the request (``None``: not accounted).
        key, scope: the request's API key (``None``: anonymous) and the account ids it may reach
            (``None``: all).
        accounted: a model request, whose usage the key's counters take.
        admitted: counted by the key's rate limits (:meth:`RequestPolicy.admit`), to be released.
        policy_headers: the ``x-ratelimit-*`` and effort headers of the key's policy.
    """

    method: str
    path: str
    started: float
    metrics: Metrics | None = None
    route: str | None = None
    account: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    status: int | None = None
    outcome: Outcome | None = None
    teams: Teams | None = None
    key: ApiKey | None = None
    scope: frozenset[int] | None = None
    accounted: bool = False
    admitted: bool = False
    policy_headers: dict[str, str] | None = None
    _reported: bool = False

    def finish(self, status: int) -> None:
        """The answer is decided with ``status``: write the access-log line and count the request.

        With ``--log-format json`` the line's fields are JSON keys (never a token).
        """
        self.status = status
        duration_s = time.perf_counter() - self.started
        usage = self.usage
        if self.metrics is not None:
            self.metrics.observe_request(
                route=self.route or self.path,
                status=status,
                duration_s=duration_s,
                model=self.model,
                account=self.account,
                usage=usage,
            )
        fields = {
            "method": self.method,
            "path": self.path,
            "status": status,
            "account": self.account,
            "model": self.model,
            "tokens_in": (usage or {}).get("input_tokens"),
            "tokens_out": (usage or {}).get("output_tokens"),
            "duration_ms": round(duration_s * 1000, 1),
            "outcome": self.outcome.value if self.outcome is not None else None,
        }
        if self.key is not None:
            fields["key"] = self.key.name
        text = " ".join(
            f"{k}={v}" for k, v in fields.items() if v is not None and k not in ("method", "path", "status")
        )
        access_logger.info("%s %s %d %s", self.method, self.path, status, text, extra={"fields": fields})
        self._report(status, fields)

    def _report(self, status: int, fields: dict[str, Any]) -> None:
        """Hand the exchange to the teams state, once."""
        if self.teams is None or self._reported:
            return
        self._reported = True
        self.teams.finished(
            key=self.key,
            admitted=self.admitted,
            accounted=self.accounted,
            status=status,
            failed=(status >= 400 and status != 499) or self.outcome is Outcome.FAILED,
            account=self.account,
            model=self.model,
            usage=self.usage,
            fields=fields,
        )

    def abandon(self) -> None:
        """The client left before an answer was decided (no access-log line): the request still
        counts for its key (status 499, not an error), and its rate-limit slot is released."""
        if self.status is None and not self._reported:
            self.outcome = Outcome.CLIENT_CLOSED
            self._report(
                499, {"method": self.method, "path": self.path, "status": 499, "outcome": "client_closed"}
            )

    def end_stream(self, outcome: Outcome, usage: dict[str, Any] | None) -> None:
        """A streamed answer ended (:data:`codexgw.upstream.relay.StreamEnd`): status 200, as its
        headers went out before the stream began."""
        self.outcome, self.usage = outcome, usage
        self.finish(200)
