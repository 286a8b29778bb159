"""Prometheus metrics of one running gateway (``GET /metrics``, text exposition format).

Each :class:`Metrics` owns its own ``CollectorRegistry`` (never the process-global one): tests run
many servers in one process, and two gateways must not share counters. The hot path only calls the
small ``observe_*``/``count_*`` methods (a dict lookup and an add); per-account pool state (cooldowns,
quota, usability) is read from the pool at scrape time by :class:`_PoolCollector`, so it is never
stale and never leaks labels of removed accounts.

Metric names (all prefixed ``codexgw_``):

=============================================  =========  ==========================================
name                                           type       labels
=============================================  =========  ==========================================
``requests_total``                             counter    route, status, model, account
``request_duration_seconds``                   histogram  route
``tokens_total``                               counter    kind (input/output), model, account
``upstream_latency_seconds``                   histogram  account (request sent → response headers)
``upstream_ttfb_seconds``                      histogram  account (request sent → first output event)
``active_streams``                             gauge      (open upstream streams)
``failovers_total``                            counter    account (the one that failed), reason
``refreshes_total``                            counter    outcome (ok, failed, needs_login)
``probes_total``                               counter    outcome (ok, failed)
``account_state_changes_total``                counter    account, status
``account_usable``                             gauge      account (1 usable now, else 0)
``account_cooldown_seconds``                   gauge      account, reason (remaining, 0 if none)
``account_quota_used_percent``                 gauge      account, window (primary/secondary)
``account_requests`` / ``account_errors``      gauge      account (pool counters since start)
``key_requests_total``                         counter    key (model requests by API key; ``-``: none)
``key_tokens_total``                           counter    key, kind (input/cached/output/reasoning)
=============================================  =========  ==========================================

Account and key names are operator-chosen labels, never tokens or key secrets; model labels come from the upstream's
``OpenAI-Model`` or the request, and are bounded (issue 16 item 7): a name :attr:`Metrics.model_names`
does not list (the catalogue and the aliases) counts as ``other``, and a label keeps only
:data:`_LABEL_CHARS` (64 at most), so no client can grow ``/metrics`` or break its encoding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds; upstream time to first output covers a silent thinking model (minutes)."""
_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0)

OTHER_MODEL = "other"
"""The ``model`` label of a model not in the catalogue."""

_LABEL_CHARS = re.compile(r"[^A-Za-z0-9._:/@+-]")
"""What a model label may not contain (replaced by ``_``)."""

PoolRows = Callable[[], list[dict[str, Any]]]
"""Returns ``Pool.snapshot(now)`` rows plus ``cooldown_remaining_s`` (seconds) per row."""


class _PoolCollector:
    """Per-account gauges computed from the pool at scrape time."""

    def __init__(self, rows: PoolRows) -> None:
        self._rows = rows

    def describe(self) -> list[Metric]:
        return []  # collected lazily; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        usable = GaugeMetricFamily(
            "codexgw_account_usable", "1 when the account can serve now", labels=["account"]
        )
        cooldown = GaugeMetricFamily(
            "codexgw_account_cooldown_seconds",
            "Seconds until the account's cooldown ends (0 when not cooling down)",
            labels=["account", "reason"],
        )
        quota = GaugeMetricFamily(
            "codexgw_account_quota_used_percent",
            "Share of the usage window used, from the latest rate-limit headers or /wham/usage probe",
            labels=["account", "window"],
        )
        requests = GaugeMetricFamily(
            "codexgw_account_requests", "Upstream attempts by this account since start", labels=["account"]
        )
        errors = GaugeMetricFamily(
            "codexgw_account_errors",
            "Failed upstream attempts by this account since start",
            labels=["account"],
        )
        for row in self._rows():
            name = str(row.get("name"))
            usable.add_metric([name], 1.0 if row.get("usable") else 0.0)
            cooldown.add_metric(
                [name, str(row.get("cooldown_reason") or "")], float(row.get("cooldown_remaining_s") or 0.0)
            )
            requests.add_metric([name], float(row.get("requests") or 0))
            errors.add_metric([name], float(row.get("errors") or 0))
            snapshot = row.get("quota") or {}
            for window in ("primary", "secondary"):
                data = snapshot.get(window)
                if data:
                    quota.add_metric([name, window], float(data["used_percent"]))
        yield from (usable, cooldown, quota, requests, errors)


class Metrics:
    """The gateway's metrics and the registry they live in.

    Args:
        pool_rows: called at scrape time for the per-account gauges (see :data:`PoolRows`); ``None``
            leaves them out.
    """

    model_names: Callable[[], Collection[str]] | None = None
    """The models that get their own ``model`` label (set by ``serve``: the catalogue and the
    aliases); ``None``: every model does (tests of the metrics alone)."""

    def __init__(self, pool_rows: PoolRows | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "codexgw_requests",
            "Requests answered, by route, status, model and account",
            ["route", "status", "model", "account"],
            registry=r,
        )
        self.duration = Histogram(
            "codexgw_request_duration_seconds",
            "Time from request to the end of the answer (streams: last byte)",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "codexgw_tokens",
            "Tokens reported by the upstream's usage, by kind (input/output)",
            ["kind", "model", "account"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "codexgw_upstream_latency_seconds",
            "Upstream request sent to response headers received",
            ["account"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_ttfb = Histogram(
            "codexgw_upstream_ttfb_seconds",
            "Upstream request sent to its first output event (time to first byte)",
            ["account"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.active_streams = Gauge("codexgw_active_streams", "Upstream streams open now", registry=r)
        self.failovers = Counter(
            "codexgw_failovers",
            "Requests moved to another account before the first byte",
            ["account", "reason"],
            registry=r,
        )
        self.refreshes = Counter("codexgw_refreshes", "Token refreshes, by outcome", ["outcome"], registry=r)
        self.probes = Counter(
            "codexgw_probes", "/wham/usage quota probes, by outcome", ["outcome"], registry=r
        )
        self.state_changes = Counter(
            "codexgw_account_state_changes",
            "Account health changes (needs_login, suspended …)",
            ["account", "status"],
            registry=r,
        )
        self.key_requests = Counter(
            "codexgw_key_requests", "Model requests by API key (- for none)", ["key"], registry=r
        )
        self.key_tokens = Counter(
            "codexgw_key_tokens",
            "Tokens the upstream reported, by API key and kind (input/cached/output/reasoning)",
            ["key", "kind"],
            registry=r,
        )
        if pool_rows is not None:
            r.register(_PoolCollector(pool_rows))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ hooks

    def observe_request(
        self,
        *,
        route: str,
        status: int,
        duration_s: float,
        model: str | None,
        account: str | None,
        usage: dict[str, Any] | None,
    ) -> None:
        """Count one finished request (the access-log line) and its tokens (``model``: its label is
        :meth:`model_label`)."""
        model_label, account_label = self.model_label(model), account or ""
        self.requests.labels(route, str(status), model_label, account_label).inc()
        self.duration.labels(route).observe(max(0.0, duration_s))
        for kind in ("input", "output"):
            value = (usage or {}).get(f"{kind}_tokens")
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                self.tokens.labels(kind, model_label, account_label).inc(value)

    def model_label(self, model: str | None) -> str:
        """``model`` as a label: ``""`` for none, :data:`OTHER_MODEL` when :attr:`model_names` does not
        list it, else its text with characters outside ``A-Za-z0-9._:/@+-`` as ``_`` (64 at most)."""
        if not model:
            return ""
        names = self.model_names
        if names is not None and model not in names():
            return OTHER_MODEL
        return _LABEL_CHARS.sub("_", model[:64])

    def observe_key(self, key: str, tokens: tuple[int, int, int, int]) -> None:
        """Count one model request of ``key`` and its ``(input, cached, output, reasoning)`` tokens."""
        self.key_requests.labels(key).inc()
        for kind, value in zip(("input", "cached", "output", "reasoning"), tokens, strict=True):
            if value:
                self.key_tokens.labels(key, kind).inc(value)

    def observe_upstream(
        self, account: str, *, latency_s: float | None = None, ttfb_s: float | None = None
    ) -> None:
        """Record upstream response-header latency and/or time to first output, seconds."""
        if latency_s is not None:
            self.upstream_latency.labels(account).observe(max(0.0, latency_s))
        if ttfb_s is not None:
            self.upstream_ttfb.labels(account).observe(max(0.0, ttfb_s))

    def count_failover(self, account: str, reason: str) -> None:
        """One request left ``account`` for another (``reason``: the error code or type)."""
        self.failovers.labels(account, reason).inc()

    def count_refresh(self, outcome: str) -> None:
        """One refresh finished: ``ok``, ``failed`` or ``needs_login``."""
        self.refreshes.labels(outcome).inc()

    def count_probe(self, outcome: str) -> None:
        """One ``/wham/usage`` probe finished: ``ok`` or ``failed``."""
        self.probes.labels(outcome).inc()

    def count_state_change(self, account: str, status: str) -> None:
        """An account moved to ``status``."""
        self.state_changes.labels(account, status).inc()

    def stream_opened(self) -> Callable[[], None]:
        """Count an open upstream stream; returns the callback to call once when it closes."""
        self.active_streams.inc()
        done = False

        def closed() -> None:
            nonlocal done
            if not done:
                done = True
                self.active_streams.dec()

        return closed

    # ------------------------------------------------------------------ exposition

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition body and its content type; OpenMetrics when ``accept`` asks for it."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
