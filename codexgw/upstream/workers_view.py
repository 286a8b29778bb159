"""What each worker of ``serve --workers`` tells the others: its metrics and a one-line summary.

Every :data:`PUBLISH_S` a worker writes, off the request path and atomically (write, then rename),
``<store>/workers/metrics-<i>.prom`` (its registry in the Prometheus text format) and
``<store>/workers/worker-<i>.json`` (index, pid, start time, open streams, requests answered).
Whichever worker a scrape reaches answers for all of them:

* ``GET /metrics``: every worker's series, each with a ``worker="<i>"`` label (its own live, the
  others' as last published, at most :data:`PUBLISH_S` old; files older than :data:`STALE_S` —
  a worker that is gone — are left out). ``sum without (worker) (...)`` gives the gateway's total;
  a restarted worker's counters start from 0 again, which ``rate()`` and ``increase()`` handle as a
  counter reset. The text format is always used (the label would not survive OpenMetrics' own
  ``_created`` handling here).
* ``GET /status``: ``"worker"`` (the index that answered) and ``"workers"`` (every live worker's
  summary). Pool state (cooldowns, quota, usability) is the same in every worker; the per-account
  ``picks``/``requests``/``errors`` counters are the answering worker's own.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from codexgw.metrics import Metrics

__all__ = ["PUBLISH_S", "STALE_S", "WorkersView", "summary_of"]

log = logging.getLogger("codexgw.upstream.workers_view")

PUBLISH_S = 1.0
"""Seconds between two publications of a worker's metrics and summary."""
STALE_S = 10.0
"""A published file older than this (seconds) belongs to a worker that is gone."""


class _Merged:
    """A collector yielding the given families (for ``generate_latest``)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def _labelled(families: Iterable[Metric], worker: str, into: dict[str, Metric]) -> None:
    """Add every sample of ``families`` to ``into`` (by family name) with ``worker`` as a label."""
    for family in families:
        if family.name.endswith("_created"):
            continue  # creation times: per worker, and not worth a family per worker
        merged = into.get(family.name)
        if merged is None:
            merged = into[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            merged.samples.append(sample._replace(labels={**sample.labels, "worker": worker}))


def summary_of(metrics: Metrics, started_at: float) -> dict[str, Any]:
    """A worker's summary: ``{"started_at" (epoch s), "active_streams", "requests"}`` (answered)."""
    requests = 0.0
    for family in metrics.registry.collect():
        if family.name == "codexgw_requests":
            requests = sum(s.value for s in family.samples if s.name.endswith("_total"))
    streams = metrics.registry.get_sample_value("codexgw_active_streams") or 0.0
    return {"started_at": started_at, "active_streams": int(streams), "requests": int(requests)}


class WorkersView:
    """One worker's publisher, and the merged views over all of them.

    Args:
        directory: ``<store>/workers``.
        index: this worker's index.
        metrics: this worker's registry.
        summary: returns this worker's summary (JSON-able dict) at publication time.
        clock: epoch seconds.
    """

    def __init__(
        self,
        directory: Path,
        index: int,
        metrics: Metrics,
        summary: Callable[[], dict[str, Any]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.index = index
        self.metrics = metrics
        self.summary = summary
        self.clock = clock

    def _write(self, name: str, data: bytes) -> None:
        path = self.directory / name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def publish(self) -> None:
        """Write this worker's metrics and summary (blocking; run in a thread)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._write(f"metrics-{self.index}.prom", generate_latest(self.metrics.registry))
        summary = {**self.summary(), "worker": self.index, "pid": os.getpid(), "published_at": self.clock()}
        self._write(f"worker-{self.index}.json", json.dumps(summary).encode())

    async def run(self) -> None:
        """Publish every :data:`PUBLISH_S` forever (a failed write is logged at debug, retried)."""
        while True:
            try:
                await trio.to_thread.run_sync(self.publish)
            except OSError as exc:
                log.debug("worker %d could not publish its metrics: %s", self.index, exc)
            await trio.sleep(PUBLISH_S)

    def _others(self, prefix: str, suffix: str) -> list[tuple[str, str]]:
        """``(index, text)`` of the other workers' fresh files ``<prefix><i><suffix>``."""
        found = []
        now = time.time()
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return []
        for entry in entries:
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            index = name[len(prefix) : len(name) - len(suffix)]
            if not index.isdigit() or int(index) == self.index:
                continue
            try:
                if now - entry.stat().st_mtime > STALE_S:
                    continue
                found.append((index, Path(entry.path).read_text()))
            except OSError:
                continue
        return sorted(found, key=lambda item: int(item[0]))

    def render_metrics(self) -> tuple[bytes, str]:
        """``GET /metrics`` over every worker (see the module docstring)."""
        families: dict[str, Metric] = {}
        _labelled(self.metrics.registry.collect(), str(self.index), families)
        for index, text in self._others("metrics-", ".prom"):
            try:
                _labelled(text_string_to_metric_families(text), index, families)
            except ValueError as exc:  # a torn or foreign file: leave that worker out this time
                log.debug("worker %s metrics unreadable: %s", index, exc)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged(families.values()))  # type: ignore[arg-type]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def workers(self) -> list[dict[str, Any]]:
        """Every live worker's summary, this one's fresh, by index."""
        mine = {**self.summary(), "worker": self.index, "pid": os.getpid(), "published_at": self.clock()}
        out = [mine]
        for _, text in self._others("worker-", ".json"):
            try:
                out.append(json.loads(text))
            except ValueError:
                continue
        return sorted(out, key=lambda s: int(s.get("worker", 0)))
