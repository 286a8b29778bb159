"""The HTTP edge's shared rules: the one error boundary and the one record per exchange (no sockets)."""

from __future__ import annotations

import logging

import pytest

from codexgw.api.boundary import error_answer, status_error
from codexgw.api.exchange import Exchange
from codexgw.errors import (
    InvalidRequestError,
    PoolExhaustedError,
    UpstreamError,
    UsageLimitError,
)
from codexgw.metrics import Metrics
from codexgw.translate.stream_state import Outcome


def test_a_client_error_is_answered_in_openai_shape_without_a_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="codexgw.api.app")
    status, headers, body = error_answer(InvalidRequestError("bad", param="model"), "POST", "/v1/x")
    assert (status, headers) == (400, {})
    assert body == {"error": {"message": "bad", "type": "invalid_request_error", "param": "model", "code": None}}
    assert caplog.records == []


def test_an_upstream_error_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="codexgw.api.app")
    status, _headers, _body = error_answer(UpstreamError("backend down"), "POST", "/v1/x")
    assert status == 502
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.getMessage() == "POST /v1/x -> 502 backend down"


@pytest.mark.parametrize(("retry_after", "gives_up"), [(121, True), (120, False)])
def test_a_long_retry_after_tells_the_sdks_not_to_retry(retry_after: int, gives_up: bool) -> None:
    exc = PoolExhaustedError("all cooling down", retry_after_s=retry_after)
    status, headers, _body = error_answer(exc, "POST", "/v1/x")
    assert status == 503 and "x-should-retry" not in headers, "only a 429 says it"
    limited = UsageLimitError("limit", resets_at=1000.0 + retry_after, now=1000.0)
    status, headers, _body = error_answer(limited, "POST", "/v1/x")
    assert status == 429 and (headers.get("x-should-retry") == "false") is gives_up
    assert headers["Retry-After"] == str(retry_after)


def test_an_unexpected_exception_is_a_500_without_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="codexgw.api.app")
    status, headers, body = error_answer(KeyError("secret-ish detail"), "GET", "/status")
    assert (status, headers) == (500, {})
    assert body["error"]["message"] == "Internal server error" and "secret" not in str(body)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None, "the log keeps the traceback"


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (404, "Unknown route: GET /nowhere", "not_found"),
        (405, "Method GET is not allowed on /nowhere", "method_not_allowed"),
        (413, "The request body exceeds 1024 bytes", "payload_too_large"),
        (400, "Bad header", None),
        (500, "Internal server error", None),
    ],
)
def test_framework_statuses_become_their_errors(status: int, message: str, code: str | None) -> None:
    error = status_error(status, method="GET", path="/nowhere", max_body_bytes=1024, description="Bad header")
    assert (error.status, error.message, error.code) == (status, message, code)


def _samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_an_exchange_is_logged_and_counted_once_when_it_finishes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="codexgw.access")
    metrics = Metrics()
    exchange = Exchange("POST", "/v1/chat/completions", 0.0, metrics=metrics, route="/v1/chat/completions")
    exchange.account, exchange.model = "alice", "gpt-5.5"
    exchange.end_stream(Outcome.STOPPED, {"input_tokens": 3, "output_tokens": 2})
    [record] = caplog.records
    assert record.getMessage().startswith("POST /v1/chat/completions 200 account=alice model=gpt-5.5 tokens_in=3")
    assert record.fields["outcome"] == "stopped" and exchange.status == 200  # type: ignore[attr-defined]
    labels = (("account", "alice"), ("model", "gpt-5.5"), ("route", "/v1/chat/completions"), ("status", "200"))
    assert _samples(metrics, "codexgw_requests_total") == {labels: 1.0}
    assert _samples(metrics, "codexgw_tokens_total")[(("account", "alice"), ("kind", "output"), ("model", "gpt-5.5"))] == 2


def test_an_exchange_without_a_route_label_counts_under_its_path() -> None:
    metrics = Metrics()
    Exchange("GET", "/health", 0.0, metrics=metrics).finish(200)
    [(labels, value)] = _samples(metrics, "codexgw_requests_total").items()
    assert dict(labels)["route"] == "/health" and value == 1.0
