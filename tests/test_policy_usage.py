"""The usage ledger: hourly counters in memory, batches for the store, today's totals (policy/usage.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from codexgw.policy.usage import COUNTERS, NO_KEY, Ledger, tokens_of, usage_counts

DAY = 1_799_971_200  # 00:00 UTC
T0 = DAY + 8 * 3600 + 12.5

USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 40},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 20},
    "total_tokens": 130,
}


def test_usage_counts_reads_the_responses_usage_object() -> None:
    assert usage_counts(USAGE) == (100, 40, 30, 20)
    assert usage_counts(None) == (0, 0, 0, 0)
    assert usage_counts({"input_tokens": "7", "output_tokens": True}) == (0, 0, 0, 0)
    assert tokens_of(USAGE) == 130


def test_records_are_keyed_by_hour_key_account_model() -> None:
    ledger = Ledger()
    ledger.record(now=T0, key="ci", account="a", model="gpt-5.5", usage=USAGE, error=False)
    ledger.record(now=T0 + 5, key="ci", account="a", model="gpt-5.5", usage=USAGE, error=True)
    ledger.record(now=T0 + 3600, key="ci", account="a", model="gpt-5.5", usage=None, error=True)
    ledger.record(now=T0, key=NO_KEY, account=None, model=None, usage=None, error=False)
    hour = DAY + 8 * 3600
    assert ledger.pending == {
        (hour, "ci", "a", "gpt-5.5"): [2, 1, 200, 80, 60, 40],
        (hour + 3600, "ci", "a", "gpt-5.5"): [1, 1, 0, 0, 0, 0],
        (hour, "-", "-", "-"): [1, 0, 0, 0, 0, 0],
    }
    assert ledger.today("ci", T0 + 3600) == [3, 2, 200, 80, 60, 40]
    assert ledger.tokens_today("ci", T0) == 260
    assert ledger.last_used == {"ci": T0 + 3600}


def test_a_taken_batch_counts_today_until_settled_then_the_store_totals_do() -> None:
    ledger = Ledger()
    ledger.record(now=T0, key="ci", account="a", model="m", usage=USAGE, error=False)
    batch, used = ledger.take()
    assert list(batch.values()) == [[1, 0, 100, 40, 30, 20]] and used == {"ci": T0}
    assert ledger.pending == {}
    assert ledger.tokens_today("ci", T0) == 130  # taken, not yet in the store
    ledger.record(now=T0 + 1, key="ci", account="a", model="m", usage=USAGE, error=False)
    # the store now holds the batch plus 500 tokens another process flushed
    ledger.settle(DAY, {"ci": [2, 0, 500, 0, 130, 0]})
    assert ledger.tokens_today("ci", T0 + 1) == 630 + 130  # stored + recorded since the take
    assert ledger.today("ci", T0 + 1)[0] == 3


def test_a_fresh_ledger_starts_from_the_stored_totals_of_today() -> None:
    ledger = Ledger()
    ledger.settle(DAY, {"ci": [4, 0, 100, 0, 30, 0]})
    assert ledger.tokens_today("ci", T0) == 130 and ledger.keys_today(T0) == ["ci"]


def test_put_back_keeps_a_batch_that_could_not_be_written() -> None:
    ledger = Ledger()
    ledger.record(now=T0, key="ci", account="a", model="m", usage=USAGE, error=False)
    ledger.take()
    ledger.record(now=T0 + 1, key="ci", account="a", model="m", usage=USAGE, error=False)
    ledger.put_back()
    assert ledger.tokens_today("ci", T0 + 1) == 260
    again, used = ledger.take()
    assert list(again.values()) == [[2, 0, 200, 80, 60, 40]] and used == {"ci": T0 + 1}


def test_the_day_starts_again_at_midnight_utc() -> None:
    ledger = Ledger()
    ledger.record(now=DAY + 86399, key="ci", account="a", model="m", usage=USAGE, error=False)
    assert ledger.tokens_today("ci", DAY + 86399) == 130
    assert ledger.tokens_today("ci", DAY + 86400) == 0
    assert len(ledger.pending) == 1  # still flushed
    ledger.settle(DAY, {"ci": [9, 9, 9, 9, 9, 9]})  # a settle for yesterday does not count today
    assert ledger.tokens_today("ci", DAY + 86400) == 0


records = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3 * 86400),
        st.sampled_from(["a", "b", NO_KEY]),
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.booleans(),
        st.integers(0, 2),  # 0 nothing, 1 take, 2 take then fail
    ),
    max_size=40,
)


@given(records)
def test_flushing_in_any_pattern_loses_and_doubles_nothing(ops: list) -> None:
    """Whatever is taken, written or put back, the store ends with exactly what was recorded."""
    ledger = Ledger()
    store: dict = {}
    expected: dict = {}
    now = float(DAY)
    for dt, key, tin, tout, error, flush in sorted(ops):
        now = DAY + dt
        usage = {"input_tokens": tin, "output_tokens": tout}
        ledger.record(now=now, key=key, account="x", model="m", usage=usage, error=error)
        slot = (int(now // 3600) * 3600, key)
        row = expected.setdefault(slot, [0] * len(COUNTERS))
        for i, v in enumerate((1, int(error), tin, 0, tout, 0)):
            row[i] += v
        if flush:
            batch, _ = ledger.take()
            if flush == 2:
                ledger.put_back()
                continue
            for (hour, k, _a, _m), values in batch.items():
                row = store.setdefault((hour, k), [0] * len(COUNTERS))
                for i, v in enumerate(values):
                    row[i] += v
            day = int(now // 86400) * 86400
            totals: dict = {}
            for (hour, k), values in store.items():
                if hour >= day:
                    t = totals.setdefault(k, [0] * len(COUNTERS))
                    for i, v in enumerate(values):
                        t[i] += v
            ledger.settle(day, totals)
            for k in ("a", "b"):
                today = sum(v[2] + v[4] for (h, kk), v in expected.items() if kk == k and h >= day)
                assert ledger.tokens_today(k, now) == today
    batch, _ = ledger.take()
    for (hour, k, _a, _m), values in batch.items():
        row = store.setdefault((hour, k), [0] * len(COUNTERS))
        for i, v in enumerate(values):
            row[i] += v
    assert store == expected
