"""Responses request fix-ups for the ChatGPT backend (codex-protocol.md §6.3) and the model-effort suffix."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgw.errors import InvalidRequestError
from codexgw.translate.params import (
    EFFORTS,
    REJECTED_RESPONSES_PARAMS,
    Prepared,
    prepare_responses_request,
    split_model_effort,
)

INSTR = "You are Codex."


def prep(body: Any) -> Prepared:
    return prepare_responses_request(body, default_instructions=INSTR)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-5.5-high", ("gpt-5.5", "high")),
        ("gpt-5.5-xhigh", ("gpt-5.5", "xhigh")),
        ("gpt-5.5-minimal", ("gpt-5.5", "minimal")),
        ("gpt-5.5-none", ("gpt-5.5", "none")),
        ("gpt-5.4-mini", ("gpt-5.4-mini", None)),
        ("gpt-5.4-mini-low", ("gpt-5.4-mini", "low")),
        ("gpt-5.5", ("gpt-5.5", None)),
        ("high", ("high", None)),
        ("-high", ("-high", None)),
        ("gpt-5.5-High", ("gpt-5.5-High", None)),
    ],
)
def test_split_model_effort(model: str, expected: tuple[str, str | None]) -> None:
    assert split_model_effort(model) == expected


def test_plain_string_input_becomes_a_user_message_and_backend_fields_are_forced() -> None:
    """The smallest SDK request: model + string input, no stream → a streamed, unstored backend request."""
    prepared = prep({"model": "gpt-5.5", "input": "hi"})
    assert prepared.stream is False
    assert prepared.dropped == []
    assert prepared.body == {
        "model": "gpt-5.5",
        "instructions": INSTR,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "stream": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }


def test_codex_cli_request_passes_through_with_ids_stripped() -> None:
    """A Codex CLI body (protocol §12.1): no instructions, ids on items, tools of several kinds."""
    tools = [
        {"type": "function", "name": "shell", "description": "run", "strict": False, "parameters": {}},
        {
            "type": "custom",
            "name": "apply_patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "x"},
        },
        {"type": "web_search"},
    ]
    body = {
        "model": "gpt-5.5",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "id": "m0",
                "content": [{"type": "input_text", "text": "base"}],
            },
            {
                "type": "message",
                "role": "user",
                "id": "m1",
                "content": [{"type": "input_text", "text": "go"}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
        ],
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "sess-1",
        "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-installation-id": "u"},
    }
    original = copy.deepcopy(body)
    prepared = prep(body)
    assert body == original, "the client's body must not be mutated"
    assert prepared.stream is True
    assert prepared.dropped == []
    out = prepared.body
    assert out["instructions"] == INSTR
    assert out["input"] == [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "base"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
    ]
    for key in ("tools", "tool_choice", "parallel_tool_calls", "reasoning", "prompt_cache_key", "text"):
        assert out[key] == body[key]
    assert out["client_metadata"] == {"x-codex-installation-id": "u"}
    assert out["include"] == ["reasoning.encrypted_content"]


def test_rejected_params_are_dropped_and_reported_in_body_order() -> None:
    body: dict[str, Any] = {"model": "m", "input": "x"}
    for i, name in enumerate(REJECTED_RESPONSES_PARAMS):
        body[name] = i + 1
    body["service_tier"] = "flex"
    body["stream_options"] = None  # sent as null: removed but not reported
    prepared = prep(body)
    expected = [n for n in REJECTED_RESPONSES_PARAMS if n != "stream_options"] + ["service_tier"]
    assert prepared.dropped == expected
    for name in [*REJECTED_RESPONSES_PARAMS, "service_tier"]:
        assert name not in prepared.body


def test_priority_service_tier_is_kept_and_store_true_is_forced_not_dropped() -> None:
    prepared = prep({"model": "m", "input": "x", "service_tier": "priority", "store": True, "stream": False})
    assert prepared.body["service_tier"] == "priority"
    assert prepared.body["store"] is False
    assert prepared.body["stream"] is True
    assert prepared.dropped == []


def test_instructions_kept_when_given_and_defaulted_when_null() -> None:
    assert prep({"model": "m", "input": "x", "instructions": "mine"}).body["instructions"] == "mine"
    assert prep({"model": "m", "input": "x", "instructions": ""}).body["instructions"] == ""
    assert prep({"model": "m", "input": "x", "instructions": None}).body["instructions"] == INSTR


def test_system_role_becomes_developer_and_part_types_follow_the_role() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "system", "content": "rules"},
            {"role": "system", "content": [{"type": "input_text", "text": "more"}]},
            {"role": "assistant", "content": [{"type": "input_text", "text": "said"}]},
            {"role": "user", "content": [{"type": "output_text", "text": "q"}]},
        ],
    }
    assert prep(body).body["input"] == [
        {"role": "developer", "content": "rules"},
        {"role": "developer", "content": [{"type": "input_text", "text": "more"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "said"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
    ]


def test_prompt_cache_breakpoints_are_stripped_and_reported() -> None:
    body = {
        "model": "m",
        "input": [
            {
                "role": "user",
                "prompt_cache_breakpoint": {"ttl": "1h"},
                "content": [{"type": "input_text", "text": "a", "prompt_cache_breakpoint": {}}],
            }
        ],
    }
    prepared = prep(body)
    assert prepared.body["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "a"}]}]
    assert prepared.dropped == ["prompt_cache_breakpoint"]


@pytest.mark.parametrize(
    ("extra", "reasoning", "include"),
    [
        ({}, None, ["reasoning.encrypted_content"]),
        (
            {"include": ["file_search_call.results"]},
            None,
            ["file_search_call.results", "reasoning.encrypted_content"],
        ),
        ({"reasoning": None}, None, None),
        ({"reasoning": None, "include": ["x"]}, None, ["x"]),
        ({"reasoning": {"effort": "low"}}, {"effort": "low"}, ["reasoning.encrypted_content"]),
    ],
)
def test_include_gets_encrypted_reasoning_unless_reasoning_is_null(
    extra: dict[str, Any], reasoning: Any, include: list[str] | None
) -> None:
    out = prep({"model": "gpt-5.5", "input": "x", **extra}).body
    assert out.get("include") == include
    assert out.get("reasoning") == reasoning


def test_model_suffix_sets_the_effort_and_wins_over_the_body() -> None:
    out = prep(
        {"model": "gpt-5.5-high", "input": "x", "reasoning": {"effort": "low", "summary": "auto"}}
    ).body
    assert out["model"] == "gpt-5.5"
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}
    out = prep({"model": "gpt-5.5-xhigh", "input": "x", "reasoning": None}).body
    assert out["reasoning"] == {"effort": "xhigh"}
    assert out["include"] == ["reasoning.encrypted_content"]


def test_previous_response_id_is_left_for_the_caller() -> None:
    assert (
        prep({"model": "m", "input": "x", "previous_response_id": "resp_1"}).body["previous_response_id"]
        == "resp_1"
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ("str", None),
        ({"input": "x"}, "model"),
        ({"model": "", "input": "x"}, "model"),
        ({"model": 5, "input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": {"role": "user"}}, "input"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
        ({"model": "m", "input": ["x", {"id": "msg_1"}]}, "input[0]"),
        ({"model": "m", "input": [{"role": "user", "content": "x"}, {"id": "msg_1"}]}, "input[1]"),
        ({"model": "m", "input": ["hi"]}, "input[0]"),
        ({"model": "m", "input": [{"content": "hi"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user", "content": 3}]}, "input[0].content"),
        ({"model": "m", "input": [{"role": "user", "content": ["x"]}]}, "input[0].content[0]"),
        ({"model": "m", "input": [{"type": 3}]}, "input[0].type"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream"),
        ({"model": "m", "input": "x", "instructions": 1}, "instructions"),
        ({"model": "m", "input": "x", "tools": {}}, "tools"),
        ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools[0]"),
        ({"model": "m", "input": "x", "tool_choice": 1}, "tool_choice"),
        ({"model": "m", "input": "x", "parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"model": "m", "input": "x", "include": "x"}, "include"),
        ({"model": "m", "input": "x", "include": [1]}, "include"),
        ({"model": "m", "input": "x", "reasoning": "high"}, "reasoning"),
        ({"model": "m", "input": "x", "text": "json"}, "text"),
    ],
)
def test_bad_requests_name_the_param(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        prep(body)
    assert info.value.param == param
    assert info.value.status == 400


def test_error_messages_are_clear() -> None:
    with pytest.raises(InvalidRequestError, match="'input' must be a non-empty string or array"):
        prep({"model": "m", "input": []})
    with pytest.raises(InvalidRequestError, match="JSON object"):
        prep(None)


item_strategy = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "developer"]),
            "content": st.text(max_size=5),
        },
        optional={"id": st.text(max_size=4), "type": st.just("message")},
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call"), "call_id": st.text(min_size=1, max_size=4), "name": st.just("f")},
        optional={"id": st.text(max_size=4), "arguments": st.just("{}")},
    ),
    st.fixed_dictionaries({"type": st.just("item_reference"), "id": st.text(max_size=4)}),
)


@given(
    items=st.lists(item_strategy, min_size=1, max_size=6),
    extra=st.dictionaries(st.sampled_from([*REJECTED_RESPONSES_PARAMS, "service_tier"]), st.integers(1, 3)),
    effort=st.sampled_from(["", *(f"-{e}" for e in EFFORTS)]),
)
def test_any_valid_request_meets_the_backend_requirements(
    items: list[dict[str, Any]], extra: dict[str, Any], effort: str
) -> None:
    """Property: stream/store forced, no rejected param, no item id, no system role, call ids kept."""
    body = {"model": "gpt-5.5" + effort, "input": items, **extra}
    refs = [i for i, it in enumerate(items) if it.get("type") == "item_reference"]
    if refs:  # unresolved references are an error (the route resolves them first), never dropped
        with pytest.raises(InvalidRequestError) as info:
            prep(body)
        assert info.value.param == f"input[{refs[0]}]"
        return
    out = prep(body).body
    assert out["stream"] is True and out["store"] is False
    assert isinstance(out["instructions"], str)
    assert out["model"] == "gpt-5.5"
    assert not set(out) & {*REJECTED_RESPONSES_PARAMS, "service_tier"}
    assert len(out["input"]) == len(items)
    for before, after in zip(items, out["input"], strict=True):
        assert "id" not in after
        assert after.get("role") != "system"
        assert after.get("call_id") == before.get("call_id")
    assert "reasoning.encrypted_content" in out["include"]
    if effort:
        assert out["reasoning"]["effort"] == effort[1:]


def test_unknown_reasoning_keys_are_dropped_and_named() -> None:
    """pydantic-ai's Responses model sends ``reasoning: {"context": "all_turns"}`` for gpt-5.5: only
    ``effort`` and ``summary`` go upstream (§6.3); the rest is reported as ``reasoning.<key>``."""
    prepared = prep(
        {"model": "gpt-5.5", "input": "x", "reasoning": {"effort": "low", "context": "all_turns", "x": None}}
    )
    assert prepared.body["reasoning"] == {"effort": "low"}
    assert prepared.dropped == ["reasoning.context"]
    prepared = prep({"model": "gpt-5.5-high", "input": "x", "temperature": 1, "reasoning": {"context": "a"}})
    assert prepared.body["reasoning"] == {"effort": "high"}
    assert prepared.dropped == ["temperature", "reasoning.context"]
    assert prep({"model": "gpt-5.5", "input": "x", "reasoning": {"summary": "auto"}}).dropped == []
