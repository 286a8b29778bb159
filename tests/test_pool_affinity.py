"""Session affinity (codexgw.pool.affinity) and its use in Pool.pick(session=)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgw.pool.affinity import AffinityTable, session_key
from codexgw.pool.scheduler import AccountView, Pick, Pool, Unavailable

NOW = 1_000_000.0


def acct(i: int) -> AccountView:
    return AccountView(id=i, name=f"acct{i}", enabled=True, status="active")


def pool_of(*ids: int, ttl_s: float = 3600.0) -> Pool:
    pool = Pool(affinity=AffinityTable(ttl_s=ttl_s))
    pool.set_accounts(acct(i) for i in ids)
    return pool


def pick(pool: Pool, session: str | None, *, now: float = NOW, exclude: tuple[int, ...] = ()) -> int:
    result = pool.pick(now=now, exclude=exclude, session=session)
    assert isinstance(result, Pick), result
    return result.account_id


# ---------------------------------------------------------------------------------- AffinityTable


def test_table_get_bind_and_ttl_boundary() -> None:
    table = AffinityTable(ttl_s=100)
    assert table.get("s", NOW) is None
    table.bind("s", 7, NOW)
    assert table.get("s", NOW + 99.999) == 7
    assert table.get("s", NOW + 100) is None
    assert len(table) == 0  # the expired binding found by get is gone


def test_table_bind_restarts_the_ttl_and_replaces() -> None:
    table = AffinityTable(ttl_s=100)
    table.bind("s", 1, NOW)
    table.bind("s", 2, NOW + 90)
    assert table.get("s", NOW + 150) == 2
    assert table.get("s", NOW + 190) is None


def test_table_is_bounded_evicting_the_least_recently_bound() -> None:
    table = AffinityTable(ttl_s=1000, max_entries=3)
    for i, key in enumerate("abc"):
        table.bind(key, i, NOW + i)
    table.bind("a", 0, NOW + 3)  # a is now the most recent
    table.bind("d", 3, NOW + 4)
    assert len(table) == 3
    assert [table.get(k, NOW + 5) for k in "abcd"] == [0, None, 2, 3]


def test_table_bind_sheds_expired_bindings_at_the_old_end() -> None:
    table = AffinityTable(ttl_s=10)
    table.bind("old1", 1, NOW)
    table.bind("old2", 1, NOW + 1)
    table.bind("new", 2, NOW + 10.5)
    assert len(table) == 2  # old1 expired at NOW + 10, old2 still valid
    assert table.get("old2", NOW + 10.5) == 1


def test_table_drop_account_and_purge() -> None:
    table = AffinityTable(ttl_s=100)
    table.bind("a", 1, NOW)
    table.bind("b", 2, NOW + 50)
    table.bind("c", 1, NOW + 60)
    assert table.drop_account(1) == 2
    assert [table.get(k, NOW + 61) for k in "abc"] == [None, 2, None]
    table.bind("d", 3, NOW + 120)
    assert table.purge(NOW + 150) == 1  # b (bound at NOW + 50) expired
    assert len(table) == 1 and table.get("d", NOW + 150) == 3


def test_guessed_sessions_have_their_own_budget_and_never_push_out_named_ones() -> None:
    """The soak of 2026-12-03 (issue 16): every one-off request without a session id makes a new
    ``conv-`` key, and they filled the one 100,000-entry table (RSS +2.5 MiB/min for 40 minutes,
    evicting named sessions too). Guessed keys now have their own, smaller bound."""
    table = AffinityTable(ttl_s=3600)
    table.bind(session_key({"session-id": "codex-cli"}, {}), 1, NOW)
    table.bind(session_key({}, {"prompt_cache_key": "agent"}), 2, NOW)
    for n in range(table.derived_max_entries + 5000):
        table.bind(session_key({}, {"messages": [{"role": "user", "content": f"q{n}"}]}), 3, NOW + 1 + n / 1e4)
    assert len(table) == table.derived_max_entries + 2
    assert table.get(session_key({"session-id": "codex-cli"}, {}), NOW + 10) == 1
    assert table.get(session_key({}, {"prompt_cache_key": "agent"}), NOW + 10) == 2
    newest = session_key({}, {"messages": [{"role": "user", "content": f"q{table.derived_max_entries + 4999}"}]})
    oldest = session_key({}, {"messages": [{"role": "user", "content": "q0"}]})
    assert table.get(newest, NOW + 10) == 3 and table.get(oldest, NOW + 10) is None
    assert table.drop_account(3) == table.derived_max_entries and len(table) == 2


@pytest.mark.parametrize("kwargs", [{"ttl_s": 0}, {"ttl_s": -1}, {"max_entries": 0}, {"derived_max_entries": 0}])
def test_table_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AffinityTable(**kwargs)


# ---------------------------------------------------------------------------------- session_key

CHAT = {
    "model": "gpt-5",
    "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}],
}
GOLDEN_CHAT_KEY = "conv-8ed178f0fbbba569298b1fad"  # sha256 of the canonical opening; must not drift


def test_session_key_precedence() -> None:
    body = {**CHAT, "prompt_cache_key": "pck-1"}
    by_header = session_key({"Session-ID": "abc"}, body)
    assert by_header == session_key({"session_id": "abc"}, {})
    assert by_header is not None and by_header.startswith("sid-")
    by_cache_key = session_key({"x-other": "1"}, body)
    assert by_cache_key is not None and by_cache_key.startswith("pck-") and by_cache_key != by_header
    by_conversation = session_key({}, CHAT)
    assert by_conversation is not None and by_conversation.startswith("conv-")
    assert len({by_header, by_cache_key, by_conversation}) == 3
    assert session_key({"session-id": "  "}, {"prompt_cache_key": ""}) is None  # blanks do not count
    assert session_key({}, {"model": "gpt-5"}) is None


def test_session_key_is_short_stable_and_opaque() -> None:
    key = session_key({"session_id": "secret-conversation-" * 20}, {})
    assert key is not None and re.fullmatch(r"sid-[0-9a-f]{24}", key)
    assert "secret" not in key
    assert session_key({}, dict(CHAT)) == session_key({}, CHAT) == GOLDEN_CHAT_KEY  # stable across runs
    assert session_key({"session_id": "x"}, {}) == session_key({"SESSION_ID": "x"}, {})
    assert session_key({"session_id": "x"}, {}) != session_key({"session_id": "y"}, {})


def test_session_key_chat_later_turns_keep_the_key() -> None:
    turn2 = {
        **CHAT,
        "messages": [
            *CHAT["messages"],
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "?"},
        ],
    }
    assert session_key({}, turn2) == session_key({}, CHAT)
    no_system_1 = {"messages": [{"role": "user", "content": "hi"}]}
    no_system_2 = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert session_key({}, no_system_1) == session_key({}, no_system_2)
    other_system = {
        "messages": [{"role": "system", "content": "Be verbose."}, {"role": "user", "content": "hi"}]
    }
    assert session_key({}, other_system) != session_key({}, CHAT)


def test_session_key_responses_uses_instructions_and_first_item() -> None:
    first = {"instructions": "You are Codex.", "input": "fix the bug"}
    later = {
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "content": [{"type": "output_text", "text": "ok"}],
            },
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
        ],
    }
    assert session_key({}, first) == session_key({}, later)
    assert session_key({}, {**first, "instructions": "Other."}) != session_key({}, first)
    assert session_key({}, {**first, "input": "another task"}) != session_key({}, first)
    assert session_key({}, first) != session_key(
        {}, {"messages": [{"role": "user", "content": "fix the bug"}]}
    )


@given(
    body=st.dictionaries(
        st.sampled_from(["messages", "input", "instructions", "prompt_cache_key", "model"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=8,
        ),
    )
)
def test_session_key_never_raises(body: dict[str, Any]) -> None:
    key = session_key({}, body)
    assert key is None or re.fullmatch(r"(sid|pck|conv)-[0-9a-f]{24}", key)


# ---------------------------------------------------------------------------------- Pool.pick(session=)


def test_affinity_holds_across_picks() -> None:
    """Round-robin alone would alternate; each session stays on its first account."""
    pool = pool_of(1, 2, 3)
    assert [pick(pool, "s1"), pick(pool, "s2")] == [1, 2]
    assert [pick(pool, "s1", now=NOW + t) for t in range(5)] == [1] * 5
    assert [pick(pool, "s2", now=NOW + t) for t in range(5)] == [2] * 5
    assert pick(pool, None) == 3  # requests without a session still rotate
    assert pool.snapshot(NOW)[0]["picks"] == 6  # affinity picks count


def test_affinity_moves_when_the_account_cools_down_and_the_binding_follows() -> None:
    pool = pool_of(1, 2, 3)
    assert pick(pool, "s") == 1
    pool.cool_down(1, until=NOW + 60, reason="usage_limit", now=NOW)
    moved = pick(pool, "s", now=NOW + 1)
    assert moved == 2
    assert pool.affinity.get("s", NOW + 1) == 2
    assert [pick(pool, "s", now=NOW + 61 + t) for t in range(3)] == [2, 2, 2]  # 1 is back; s stays


def test_affinity_moves_off_an_excluded_account() -> None:
    """The bound account failed this request (exclude): the retry goes elsewhere and rebinds."""
    pool = pool_of(1, 2)
    assert pick(pool, "s") == 1
    assert pick(pool, "s", exclude=(1,)) == 2
    assert pick(pool, "s", now=NOW + 1) == 2


def test_affinity_expires_after_the_ttl_of_inactivity() -> None:
    """Each hit restarts the TTL; after ttl_s without a request the strategy chooses again."""
    pool = pool_of(1, 2, ttl_s=100)
    assert pick(pool, "s") == 1
    assert pick(pool, "s", now=NOW + 99) == 1
    assert pick(pool, "s", now=NOW + 198) == 1  # 99 s after the previous hit
    assert pool.affinity.get("s", NOW + 297.9) == 1
    assert pick(pool, "s", now=NOW + 298) == 2  # expired: round-robin's turn (2 was never picked)
    assert pool.affinity.get("s", NOW + 298) == 2


def test_affinity_binding_dropped_with_its_account_and_kept_when_nothing_is_free() -> None:
    pool = pool_of(1, 2)
    assert pick(pool, "s") == 1
    pool.cool_down(1, until=NOW + 10, reason="x")
    pool.cool_down(2, until=NOW + 10, reason="x")
    assert isinstance(pool.pick(now=NOW, session="s"), Unavailable)
    assert pool.affinity.get("s", NOW) == 1
    pool.set_accounts([acct(2), acct(3)])
    assert pool.affinity.get("s", NOW) is None


def test_affinity_on_a_removed_account_picks_again() -> None:
    """Even if the table still names an id that left, pick uses only members."""
    pool = pool_of(1, 2)
    pool.affinity.bind("s", 9, NOW)
    assert pick(pool, "s") == 1
    assert pool.affinity.get("s", NOW) == 1
