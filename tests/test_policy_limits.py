"""Rate limits per key and the request policy's order (codexgw/policy/limits.py, request.py)."""

from __future__ import annotations

import pytest

from codexgw.errors import ForbiddenError, RateLimitError
from codexgw.policy.keys import ApiKey
from codexgw.policy.limits import Limiter
from codexgw.policy.request import EFFORT_HEADER, RequestPolicy, cap_effort, check_model, reasoning_mode
from codexgw.policy.usage import Ledger

T0 = 1_800_000_000.0  # a whole second, 00:00 UTC + 8 h (1.8e9 % 86400 == 28800)


def test_rpm_refuses_the_request_over_the_limit_with_openai_headers() -> None:
    limiter = Limiter()
    key = ApiKey(name="k", rpm=3)
    seen = [limiter.admit(key, now=T0 + i) for i in range(3)]
    assert [a.refusal for a in seen] == [None, None, None]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in seen] == ["2", "1", "0"]
    assert seen[0].headers["x-ratelimit-limit-requests"] == "3"
    assert seen[2].headers["x-ratelimit-reset-requests"] == "1m0s"  # the newest leaves at T0+2+60
    refused = limiter.admit(key, now=T0 + 10.5)
    assert isinstance(refused.refusal, RateLimitError)
    error = refused.refusal.to_body()["error"]
    assert error == {
        "message": error["message"], "type": "requests", "param": None, "code": "rate_limit_exceeded",
    }  # fmt: skip
    assert refused.refusal.status == 429
    assert refused.refusal.headers["Retry-After"] == "50"  # T0's bucket leaves at T0+60
    assert refused.refusal.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-limit-tokens" not in refused.headers  # only the limits the key has
    assert limiter.admit(key, now=T0 + 60).refusal is None  # the first one left the window


def test_tpm_counts_finished_requests_and_refuses_once_at_or_over() -> None:
    limiter = Limiter()
    key = ApiKey(name="k", tpm=100)
    first = limiter.admit(key, now=T0)
    assert first.headers == {
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "0ms",
    }
    limiter.release("k", tokens=60, now=T0 + 1)
    second = limiter.admit(key, now=T0 + 2)
    assert second.refusal is None and second.headers["x-ratelimit-remaining-tokens"] == "40"
    limiter.release("k", tokens=40, now=T0 + 3)
    third = limiter.admit(key, now=T0 + 4)
    assert third.refusal is not None and third.refusal.type == "tokens"
    assert third.refusal.headers["Retry-After"] == "57"
    assert limiter.admit(key, now=T0 + 61).refusal is None  # the 60 left; 40 remain


def test_tokens_per_day_refuses_until_midnight_utc() -> None:
    limiter = Limiter()
    key = ApiKey(name="k", tokens_per_day=1000)
    assert limiter.admit(key, now=T0, tokens_today=999).refusal is None
    refused = limiter.admit(key, now=T0, tokens_today=1000).refusal
    assert refused is not None and refused.type == "tokens"
    assert refused.retry_after_s == 86400 - 28800
    assert "x-ratelimit-limit-tokens" not in refused.headers  # reported by the API, not headers


def test_max_streams_counts_requests_in_flight() -> None:
    limiter = Limiter()
    key = ApiKey(name="k", max_streams=2)
    assert limiter.admit(key, now=T0).refusal is None
    assert limiter.admit(key, now=T0).refusal is None
    refused = limiter.admit(key, now=T0).refusal
    assert refused is not None and refused.type == "requests" and "concurrent" in refused.message
    limiter.release("k", tokens=0, now=T0)
    assert limiter.admit(key, now=T0).refusal is None
    assert limiter.counters("k").in_flight == 2


def test_a_refused_request_is_not_counted() -> None:
    limiter = Limiter()
    key = ApiKey(name="k", rpm=1, max_streams=5)
    limiter.admit(key, now=T0)
    for _ in range(3):
        assert limiter.admit(key, now=T0).refusal is not None
    assert limiter.counters("k").requests.total == 1 and limiter.counters("k").in_flight == 1


def test_retain_forgets_removed_keys() -> None:
    limiter = Limiter()
    limiter.admit(ApiKey(name="a", rpm=1), now=T0)
    limiter.admit(ApiKey(name="b", rpm=1), now=T0)
    limiter.retain(["b"])
    assert limiter.admit(ApiKey(name="a", rpm=1), now=T0).refusal is None
    assert limiter.admit(ApiKey(name="b", rpm=1), now=T0).refusal is not None


@pytest.mark.parametrize(
    ("models", "model", "ok"),
    [
        (None, "anything", True),
        (frozenset({"gpt-5.5"}), "gpt-5.5", True),
        (frozenset({"gpt-5.5"}), "gpt-5.5-high", True),
        (frozenset({"gpt-5.5-high"}), "gpt-5.5-high", True),
        (frozenset({"gpt-5.5-high"}), "gpt-5.5", False),
        (frozenset({"gpt-5.5"}), "gpt-5.4", False),
    ],
)
def test_model_allowlist(models: frozenset[str] | None, model: str, ok: bool) -> None:
    key = ApiKey(name="k", models=models)
    if ok:
        check_model(key, model)
        return
    with pytest.raises(ForbiddenError) as info:
        check_model(key, model)
    assert info.value.to_body()["error"] == {
        "message": info.value.message, "type": "invalid_request_error", "param": "model",
        "code": "model_not_allowed",
    }  # fmt: skip
    assert info.value.status == 403


@pytest.mark.parametrize(
    ("reasoning", "ceiling", "header", "sent"),
    [
        ({"effort": "xhigh"}, "medium", "xhigh->medium", "medium"),
        ({"effort": "low", "summary": "auto"}, "medium", None, "low"),
        ({"effort": "medium"}, "medium", None, "medium"),
        ({"summary": "auto"}, "low", "default->low", "low"),
        ({"summary": "auto"}, "high", "default->medium", "medium"),
        ({"summary": "auto"}, "xhigh", None, None),
        ({"effort": "xhigh"}, None, None, "xhigh"),
    ],
)
def test_cap_effort(reasoning: dict, ceiling: str | None, header: str | None, sent: str | None) -> None:
    body = {"model": "gpt-5.5", "reasoning": dict(reasoning)}
    assert cap_effort(body, ceiling) == header
    assert body["reasoning"].get("effort") == sent
    if "summary" in reasoning:
        assert body["reasoning"]["summary"] == "auto"


def test_cap_effort_leaves_null_reasoning_and_fills_an_absent_one() -> None:
    body: dict = {"model": "m", "reasoning": None}
    assert cap_effort(body, "low") is None and body["reasoning"] is None
    absent: dict = {"model": "m"}
    assert cap_effort(absent, "low") == "default->low" and absent["reasoning"] == {"effort": "low"}


def test_reasoning_mode_header_wins_over_key_over_server() -> None:
    key = ApiKey(name="k", reasoning_mode="hidden")
    assert reasoning_mode("think", key, "content") == "think"
    assert reasoning_mode(None, key, "content") == "hidden"
    assert reasoning_mode(None, ApiKey(name="k"), "content") == "content"
    assert reasoning_mode(None, None, "think") == "think"


def test_request_policy_order_allowlist_before_limits_and_accounting_releases() -> None:
    policy = RequestPolicy(Limiter(), Ledger())
    key = ApiKey(name="k", models=frozenset({"gpt-5.5"}), rpm=1, max_streams=1, max_effort="low")
    with pytest.raises(ForbiddenError):
        policy.admit(key, model="gpt-5.4", body={}, now=T0)
    body = {"reasoning": {"effort": "high"}}
    headers = policy.admit(key, model="gpt-5.5", body=body, now=T0)  # the refused one did not count
    assert headers[EFFORT_HEADER] == "high->low" and headers["x-ratelimit-remaining-requests"] == "0"
    usage = {"input_tokens": 10, "output_tokens": 5}
    policy.finish(key, admitted=True, now=T0 + 1, account="a", model="gpt-5.5", usage=usage, error=False)
    assert policy.limiter.counters("k").in_flight == 0
    assert policy.limiter.counters("k").tokens.total == 15
    assert policy.ledger.tokens_today("k", T0 + 1) == 15
    assert policy.admit(None, model="x", body={}, now=T0) == {}
