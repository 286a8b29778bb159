"""``/metrics`` stays small and valid whatever models clients name (issue 16 item 7).

Before: each distinct ``model`` string became a label value (16 MB of ``/metrics`` after 1,000
requests), and one lone-surrogate model made every later scrape answer 500.
"""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from codexgw.metrics import Metrics
from tests.conftest import Env

pytestmark = pytest.mark.trio

MAX_METRICS_BYTES = 64 * 1024
"""The whole ``/metrics`` of this test's gateway (one account, a few routes): ~20 KB."""


def model_labels(text: str) -> set[str]:
    return {
        sample.labels["model"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "model" in sample.labels
    }


async def test_a_thousand_junk_models_leave_metrics_small_and_parseable(env: Env) -> None:
    """Streams that get their headers before the upstream answers (the keep-alive, here at once)
    carry the client's model name into the exchange: the path junk took into the labels."""
    env.add_account("alice")
    await env.start(keepalive_after_s=0.001)
    junk = [f"junk-{i}-" + "x" * 200 for i in range(1000)] + ["\ud800", 'bad\nlabel"}', "gpt-5.5\x00"]
    async with httpx.AsyncClient(base_url=env.url, timeout=30) as client:
        for i, model in enumerate(junk):
            path = "/v1/chat/completions" if i % 2 else "/v1/responses"
            body = (
                {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
                if i % 2
                else {"model": model, "input": "hi", "stream": True}
            )

            content = json.dumps(body).encode()  # ensure_ascii: the lone surrogate travels as \ud800
            r = await client.post(path, content=content, headers={"content-type": "application/json"})
            assert r.status_code < 500, r.text
        for model in ("gpt-5.5", "gpt-5.4"):  # catalogue models keep their label
            r = await client.post("/v1/responses", json={"model": model, "input": "hi"})
            assert r.status_code == 200, r.text
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert len(r.content) < MAX_METRICS_BYTES, len(r.content)
    labels = model_labels(r.text)
    assert {"gpt-5.5", "gpt-5.4"} <= labels
    assert labels <= {"", "other", "gpt-5.5", "gpt-5.4", "gpt-5.5_"}, labels
    async with httpx.AsyncClient(base_url=env.url, timeout=30) as client:
        openmetrics = await client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert openmetrics.status_code == 200 and openmetrics.text.rstrip().endswith("# EOF")


async def test_a_label_is_sanitised_and_bounded() -> None:
    metrics = Metrics()
    assert metrics.model_label(None) == "" and metrics.model_label("gpt-5.5") == "gpt-5.5"
    assert metrics.model_label('a b\n"c"\ud800') == "a_b__c__"
    assert len(metrics.model_label("m" * 500)) == 64
    metrics.model_names = lambda: {"gpt-5.5"}
    assert metrics.model_label("gpt-5.5") == "gpt-5.5" and metrics.model_label("junk") == "other"
    metrics.observe_request(
        route="/v1/x", status=200, duration_s=0.1, model="\ud800", account="a", usage=None
    )
    body, _ = metrics.render()
    list(text_string_to_metric_families(body.decode()))
