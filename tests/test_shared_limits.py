"""store/shared_limits.py: the rate-limit counters the workers of ``serve --workers`` share."""

from __future__ import annotations

from pathlib import Path

from codexgw.policy.keys import ApiKey
from codexgw.store.shared_limits import SharedLimiter, create_table

NOW = 1_000_000.0


def pair(tmp_path: Path) -> tuple[SharedLimiter, SharedLimiter]:
    create_table(tmp_path)
    return SharedLimiter.open(tmp_path, 0), SharedLimiter.open(tmp_path, 1)


def test_rpm_is_counted_once_over_two_workers(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    key = ApiKey(name="k", rpm=3)
    assert a.admit(key, now=NOW).refusal is None
    assert b.admit(key, now=NOW + 1).refusal is None
    assert a.admit(key, now=NOW + 2).refusal is None
    refused = b.admit(key, now=NOW + 3).refusal
    assert refused is not None and "limit 3, used 3" in str(refused)
    assert b.current_headers(key, NOW + 3)["x-ratelimit-remaining-requests"] == "0"
    assert a.admit(key, now=NOW + 60).refusal is None  # the first second left the window


def test_tpm_and_streams_are_shared_and_a_restarted_worker_drops_its_streams(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    key = ApiKey(name="k", max_streams=2, tpm=100)
    assert a.admit(key, now=NOW).refusal is None
    assert b.admit(key, now=NOW).refusal is None
    assert a.admit(key, now=NOW).refusal is not None  # two in flight, one on each worker
    b.release("k", tokens=150, now=NOW + 1)
    assert "tokens per minute" in str(a.admit(key, now=NOW + 2).refusal)  # b's tokens count for a
    SharedLimiter.open(tmp_path, 0)  # worker 0 started again: its stream died with it
    key2 = ApiKey(name="k", max_streams=2)
    assert b.admit(key2, now=NOW + 3).refusal is None
    assert b.admit(key2, now=NOW + 3).refusal is None
    assert b.admit(key2, now=NOW + 3).refusal is not None


def test_other_keys_do_not_share_counters(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    assert a.admit(ApiKey(name="x", rpm=1), now=NOW).refusal is None
    assert b.admit(ApiKey(name="y", rpm=1), now=NOW).refusal is None
    assert b.admit(ApiKey(name="x", rpm=1), now=NOW).refusal is not None
