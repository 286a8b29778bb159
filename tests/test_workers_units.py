"""Small pieces of ``serve --workers``: the worker's log tag, the stop wait, the merged /metrics."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from codexgw.cli.serve import _setup_logging
from codexgw.cli.workers import STOP_MARGIN_S, stop_wait_s
from codexgw.config import Settings
from codexgw.metrics import Metrics
from codexgw.upstream.workers_view import STALE_S, WorkersView, summary_of


def test_a_workers_log_lines_name_it(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        _setup_logging("json", "info", worker=1)
        logging.getLogger("codexgw.access").info("GET /health 200", extra={"fields": {"status": 200}})
        _setup_logging("text", "info", worker=0)
        logging.getLogger("codexgw.serve").info("hello")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = capsys.readouterr().err.strip().splitlines()
    assert json.loads(first)["worker"] == 1 and json.loads(first)["status"] == 200
    assert "codexgw.serve[w0]: hello" in second


def test_the_supervisor_waits_the_grace_the_close_and_a_margin() -> None:
    settings = Settings(graceful_timeout_s=3.0)
    grace = getattr(settings, "grace_s", 0.0)
    assert stop_wait_s(settings) == grace + 3.0 + STOP_MARGIN_S


def test_metrics_of_every_worker_merge_into_one_valid_exposition(tmp_path: Path) -> None:
    ours, theirs = Metrics(), Metrics()
    request = {"route": "/v1/chat/completions", "status": 200, "duration_s": 0.1, "model": "gpt-5.5",
               "account": "alice", "usage": {"input_tokens": 5, "output_tokens": 7}}  # fmt: skip
    ours.observe_request(**request)
    for _ in range(3):
        theirs.observe_request(**request)
    WorkersView(tmp_path, 1, theirs, lambda: summary_of(theirs, 0.0)).publish()
    WorkersView(tmp_path, 2, theirs, lambda: summary_of(theirs, 0.0)).publish()
    old = time.time() - STALE_S - 1
    os.utime(tmp_path / "metrics-2.prom", (old, old))  # worker 2 is gone
    view = WorkersView(tmp_path, 0, ours, lambda: summary_of(ours, 0.0))
    body, content_type = view.render_metrics()
    assert content_type.startswith("text/plain")
    families = list(text_string_to_metric_families(body.decode()))
    names = [f.name for f in families]
    assert len(names) == len(set(names))  # one block per family
    requests = next(f for f in families if f.name == "codexgw_requests")
    by_worker = {s.labels["worker"]: s.value for s in requests.samples if s.name.endswith("_total")}
    assert by_worker == {"0": 1.0, "1": 3.0}
    assert not any(name.endswith("_created") for name in names)
    assert [w["worker"] for w in view.workers()] == [0, 1, 2]  # worker 2's summary file is still fresh
