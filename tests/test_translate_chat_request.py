"""Chat Completions request → Codex backend Responses request (translate/chat_request.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codexgw.errors import InvalidRequestError
from codexgw.translate.chat_request import DROPPED_CHAT_PARAMS, chat_to_responses
from codexgw.translate.params import REJECTED_RESPONSES_PARAMS, Prepared

INSTR = "base prompt"
USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


def chat(body: Any) -> Prepared:
    return chat_to_responses(body, default_instructions=INSTR)


def base(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_golden_minimal_request() -> None:
    prepared = chat(base())
    assert prepared.body == {
        "model": "gpt-5.5",
        "instructions": INSTR,
        "input": [USER_HI],
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
    }
    assert (prepared.stream, prepared.dropped, prepared.stop, prepared.include_usage) == (
        False,
        [],
        [],
        False,
    )


def test_golden_conversation_with_every_role() -> None:
    body = base(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
            {"role": "user", "name": "bob", "content": [{"type": "text", "text": "what is 2+2?"}]},
            {
                "role": "assistant",
                "content": "let me check",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "calc", "arguments": '{"x":"2+2"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "calc", "arguments": {"x": "1"}},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "4"},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "1"}]},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "4"}, {"type": "refusal", "refusal": "no"}],
            },
            {"role": "assistant", "content": None, "function_call": {"name": "old", "arguments": "{}"}},
            {"role": "function", "name": "old", "content": "legacy result"},
            {"role": "user", "content": "thanks"},
        ],
        stream=True,
    )
    original = copy.deepcopy(body)
    prepared = chat(body)
    assert body == original, "the client's body must not be mutated"
    assert prepared.stream is True
    assert prepared.body["input"] == [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "what is 2+2?"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "let me check"}],
        },
        {"type": "function_call", "call_id": "call_a", "name": "calc", "arguments": '{"x":"2+2"}'},
        {"type": "function_call", "call_id": "call_b", "name": "calc", "arguments": '{"x": "1"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "4"},
        {"type": "function_call_output", "call_id": "call_b", "output": "1"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "4"}, {"type": "refusal", "refusal": "no"}],
        },
        {"type": "function_call", "call_id": "call_7", "name": "old", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_7", "output": "legacy result"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]


def test_images_data_and_http_urls_with_detail() -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": "HTTP://example.com/dog.jpg"},
    ]
    assert chat(base(messages=[{"role": "user", "content": content}])).body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "what is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"},
                {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "auto"},
                {"type": "input_image", "image_url": "HTTP://example.com/dog.jpg", "detail": "auto"},
            ],
        }
    ]


def test_tools_tool_choice_and_parallel_calls() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "noop"}},
    ]
    out = chat(
        base(
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "noop"}},
            parallel_tool_calls=False,
        )
    ).body
    assert out["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        },
        {
            "type": "function",
            "name": "noop",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
    ]
    assert out["tool_choice"] == {"type": "function", "name": "noop"}
    assert out["parallel_tool_calls"] is False
    for choice in ("auto", "none", "required"):
        assert chat(base(tools=tools, tool_choice=choice)).body["tool_choice"] == choice
    assert "tools" not in chat(base(tools=[])).body


def test_allowed_tools_choice() -> None:
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "a"}}]},
    }
    tools = [{"type": "function", "function": {"name": "a"}}]
    assert chat(base(tools=tools, tool_choice=choice)).body["tool_choice"] == {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "a"}],
    }


def test_legacy_functions_and_function_call() -> None:
    out = chat(
        base(functions=[{"name": "f", "parameters": {"type": "object"}}], function_call={"name": "f"})
    ).body
    assert out["tools"] == [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}
    ]
    assert out["tool_choice"] == {"type": "function", "name": "f"}
    assert chat(base(functions=[{"name": "f"}], function_call="none")).body["tool_choice"] == "none"


def test_legacy_functions_ask_for_a_legacy_answer_with_one_call() -> None:
    """Only ``functions``: the answer must use ``function_call`` (one call), so parallel calls are off
    unless the client said otherwise; with ``tools`` the answer uses ``tool_calls``."""
    legacy = chat(base(functions=[{"name": "f"}]))
    assert legacy.legacy_functions is True
    assert legacy.body["parallel_tool_calls"] is False
    assert chat(base(functions=[{"name": "f"}], parallel_tool_calls=True)).body["parallel_tool_calls"] is True
    tools = chat(base(tools=[{"type": "function", "function": {"name": "g"}}], functions=[{"name": "f"}]))
    assert tools.legacy_functions is False
    assert "parallel_tool_calls" not in tools.body
    assert chat(base()).legacy_functions is False


@pytest.mark.parametrize(
    ("response_format", "text"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, {"format": {"type": "json_object"}}),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
            },
            {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "o", "description": "d", "schema": {}}},
            {"format": {"type": "json_schema", "name": "o", "schema": {}, "description": "d"}},
        ),
    ],
)
def test_response_format(response_format: dict[str, Any], text: dict[str, Any] | None) -> None:
    assert chat(base(response_format=response_format)).body.get("text") == text


def test_verbosity_joins_text_format() -> None:
    out = chat(base(response_format={"type": "json_object"}, verbosity="low")).body
    assert out["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}


@pytest.mark.parametrize(
    ("model", "effort", "expected_model", "reasoning"),
    [
        ("gpt-5.5", None, "gpt-5.5", {"summary": "auto"}),
        ("gpt-5.5", "low", "gpt-5.5", {"effort": "low", "summary": "auto"}),
        ("gpt-5.5-high", None, "gpt-5.5", {"effort": "high", "summary": "auto"}),
        ("gpt-5.5-xhigh", "low", "gpt-5.5", {"effort": "xhigh", "summary": "auto"}),
        ("gpt-5.4-mini", None, "gpt-5.4-mini", {"summary": "auto"}),
    ],
)
def test_reasoning_effort_and_model_suffix(
    model: str, effort: str | None, expected_model: str, reasoning: dict[str, str]
) -> None:
    out = chat(base(model=model, reasoning_effort=effort)).body
    assert out["model"] == expected_model
    assert out["reasoning"] == reasoning
    assert out["include"] == ["reasoning.encrypted_content"]


def test_dropped_params_are_reported_in_body_order_and_never_sent() -> None:
    body = base(
        temperature=0.3,
        top_p=1,
        max_tokens=100,
        frequency_penalty=0,
        presence_penalty=0,
        max_completion_tokens=5,
        seed=1,
        logit_bias={"1": 2},
        metadata={"a": "b"},
        user="u",
        store=True,
        service_tier="auto",
        prediction={"type": "content", "content": "x"},
        top_k=40,  # unknown to OpenAI: dropped too
        modalities=["text"],
        n=1,
        logprobs=False,
        top_logprobs=None,
        stream_options={"include_usage": True},
        stream=True,
    )
    prepared = chat(body)
    assert prepared.dropped == [
        "temperature",
        "top_p",
        "max_tokens",
        "frequency_penalty",
        "presence_penalty",
        "max_completion_tokens",
        "seed",
        "logit_bias",
        "metadata",
        "user",
        "store",
        "service_tier",
        "prediction",
        "top_k",
    ]
    assert set(prepared.body) == {"model", "instructions", "input", "reasoning", "store", "stream", "include"}
    assert prepared.include_usage is True


def test_priority_tier_and_prompt_cache_key_are_forwarded() -> None:
    prepared = chat(base(service_tier="priority", prompt_cache_key="sess"))
    assert prepared.body["service_tier"] == "priority"
    assert prepared.body["prompt_cache_key"] == "sess"
    assert prepared.dropped == []


def test_null_params_are_ignored_silently() -> None:
    assert chat(base(temperature=None, stop=None, tools=None, response_format=None)).dropped == []


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "b"], ["a", "b"]), ([], []), (["", "x"], ["x"]), ("", []), (None, [])],
)
def test_stop_is_returned_not_sent(stop: Any, expected: list[str]) -> None:
    prepared = chat(base(stop=stop))
    assert prepared.stop == expected
    assert "stop" not in prepared.body


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (None, None),
        ([1], None),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (base(model=["gpt"]), "model"),
        (base(model="  "), "model"),
        ({"model": "m"}, "messages"),
        (base(messages=[]), "messages"),
        (base(messages={"role": "user"}), "messages"),
        (base(messages=["hi"]), "messages[0]"),
        (base(messages=[{"content": "hi"}]), "messages[0].role"),
        (base(messages=[{"role": "bot", "content": "hi"}]), "messages[0].role"),
        (base(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (base(messages=[{"role": "user"}]), "messages[0].content"),
        (base(messages=[{"role": "system", "content": None}]), "messages[0].content"),
        (base(messages=[{"role": "user", "content": ["x"]}]), "messages[0].content[0]"),
        (base(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text"),
        (base(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages[0].content[0].type"),
        (
            base(
                messages=[
                    {"role": "user", "content": "a"},
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}],
                    },
                ]
            ),
            "messages[1].content[0]",
        ),
        (
            base(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "x"},
                            {"type": "file", "file": {"file_id": "f"}},
                        ],
                    }
                ]
            ),
            "messages[0].content[1]",
        ),
        (
            base(
                messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}
                ]
            ),
            "messages[0].content[0].image_url",
        ),
        (
            base(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": "https://x"}]}]),
            "messages[0].content[0]",
        ),
        (base(messages=[{"role": "tool", "content": "4"}]), "messages[0].tool_call_id"),
        (base(messages=[{"role": "assistant", "content": ""}]), "messages"),
        (base(messages=[{"role": "function", "name": "f", "content": "4"}]), "messages[0].name"),
        (
            base(
                messages=[
                    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}
                ]
            ),
            "messages[0].tool_calls[0].id",
        ),
        (
            base(
                messages=[{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}]
            ),
            "messages[0].tool_calls[0].function.name",
        ),
        (base(messages=[{"role": "assistant", "tool_calls": {}}]), "messages[0].tool_calls"),
        (base(stream="true"), "stream"),
        (base(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
        (base(stream_options=[]), "stream_options"),
        (base(tools={"type": "function"}), "tools"),
        (base(tools=["f"]), "tools[0]"),
        (base(tools=[{"type": "code_interpreter"}]), "tools[0].type"),
        (base(tools=[{"type": "custom", "custom": {"description": "d"}}]), "tools[0].custom.name"),
        (
            base(tools=[{"type": "custom", "custom": {"name": "x", "format": {"type": "grammar"}}}]),
            "tools[0].custom.format.grammar",
        ),
        (
            base(tools=[{"type": "custom", "custom": {"name": "x", "format": {"type": "json"}}}]),
            "tools[0].custom.format.type",
        ),
        (base(tool_choice={"type": "custom", "custom": {}}), "tool_choice.custom.name"),
        (base(tools=[{"type": "function"}]), "tools[0].function"),
        (base(tools=[{"type": "function", "function": {"description": "d"}}]), "tools[0].function.name"),
        (
            base(tools=[{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
            "tools[0].function.parameters",
        ),
        (
            base(tools=[{"type": "function", "function": {"name": "f", "strict": 1}}]),
            "tools[0].function.strict",
        ),
        (base(tool_choice="any"), "tool_choice"),
        (base(tool_choice={"type": "function", "function": {}}), "tool_choice.function.name"),
        (base(function_call={"arguments": "{}"}), "function_call.function.name"),
        (base(parallel_tool_calls="yes"), "parallel_tool_calls"),
        (base(response_format="json"), "response_format"),
        (base(response_format={"type": "yaml"}), "response_format.type"),
        (base(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (
            base(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
            "response_format.json_schema.name",
        ),
        (base(reasoning_effort="max"), "reasoning_effort"),
        (base(verbosity="loud"), "verbosity"),
        (base(n=2), "n"),
        (base(logprobs=True), "logprobs"),
        (base(top_logprobs=3), "top_logprobs"),
        (base(modalities=["text", "audio"]), "modalities"),
        (base(audio={"voice": "alloy", "format": "wav"}), "audio"),
        (base(stop=["a", "b", "c", "d", "e"]), "stop"),
        (base(stop=5), "stop"),
        (base(stop=["a", 5]), "stop[1]"),
        (base(prompt_cache_key=5), "prompt_cache_key"),
    ],
)
def test_bad_requests_name_the_param(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        chat(body)
    assert info.value.param == param
    assert info.value.to_body()["error"]["type"] == "invalid_request_error"


def test_messages_error_message_is_clear() -> None:
    with pytest.raises(InvalidRequestError, match=r"^'messages' must be a non-empty array$"):
        chat({"model": "m", "messages": []})


# -- property: any valid chat request becomes a valid backend request ---------------------------------

text = st.text(max_size=8)
text_part = st.builds(lambda t: {"type": "text", "text": t}, text)
image_part = st.builds(
    lambda url, detail: {
        "type": "image_url",
        "image_url": {"url": url, **({"detail": detail} if detail else {})},
    },
    st.sampled_from(["https://x/y.png", "data:image/png;base64,AA"]),
    st.sampled_from([None, "low", "high", "auto"]),
)
call_ids = st.sampled_from(["call_1", "call_2", "call_3"])
tool_call = st.builds(
    lambda cid, name, args: {"id": cid, "type": "function", "function": {"name": name, "arguments": args}},
    call_ids,
    st.sampled_from(["f", "g"]),
    st.sampled_from(["{}", '{"a":1}']),
)
message = st.one_of(
    st.builds(
        lambda r, c: {"role": r, "content": c},
        st.sampled_from(["system", "developer"]),
        text | st.lists(text_part, max_size=3),
    ),
    st.builds(
        lambda c, n: {"role": "user", "content": c, **({"name": n} if n else {})},
        text | st.lists(text_part | image_part, max_size=3),
        st.sampled_from([None, "bob"]),
    ),
    st.builds(
        lambda c, calls: {"role": "assistant", "content": c, **({"tool_calls": calls} if calls else {})},
        st.none() | text | st.lists(text_part, max_size=2),
        st.lists(tool_call, max_size=2),
    ),
    st.builds(
        lambda cid, c: {"role": "tool", "tool_call_id": cid, "content": c},
        call_ids,
        text | st.lists(text_part, max_size=2),
    ),
)
function_tool = st.builds(
    lambda name, strict: {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object"},
            **({"strict": strict} if strict is not None else {}),
        },
    },
    st.sampled_from(["f", "g", "h"]),
    st.sampled_from([None, True, False]),
)
optional_params = st.fixed_dictionaries(
    {},
    optional={
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "tools": st.lists(function_tool, max_size=3),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "parallel_tool_calls": st.booleans(),
        "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
        "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
        "stop": st.none() | text | st.lists(text, max_size=4),
        "temperature": st.floats(0, 2),
        "max_tokens": st.integers(1, 100),
        "user": text,
        "metadata": st.dictionaries(text, text, max_size=2),
        "service_tier": st.sampled_from(["auto", "default", "priority", "flex"]),
        "n": st.just(1),
    },
)


@given(
    messages=st.lists(message, min_size=1, max_size=8),
    params=optional_params,
    model=st.sampled_from(["gpt-5.5", "gpt-5.5-high", "gpt-5.4-mini"]),
)
@settings(max_examples=300)
def test_any_valid_chat_request_translates_to_a_valid_backend_request(
    messages: list[dict[str, Any]], params: dict[str, Any], model: str
) -> None:
    messages = [{"role": "user", "content": "q"}, *messages]
    prepared = chat({"model": model, "messages": messages, **params})
    out = prepared.body
    assert out["stream"] is True and out["store"] is False
    assert isinstance(out["instructions"], str)
    assert isinstance(out["input"], list) and out["input"]
    assert not set(out) & (
        set(REJECTED_RESPONSES_PARAMS) | (DROPPED_CHAT_PARAMS - {"store"}) | {"messages", "stop", "n"}
    )
    assert out.get("service_tier") in (None, "priority")
    assert prepared.stream is params.get("stream", False)
    for item in out["input"]:
        kind = item["type"]
        if kind == "message":
            assert item["role"] in ("developer", "user", "assistant")
            part_types = {"assistant": {"output_text"}, "user": {"input_text", "input_image"}}
            for part in item["content"]:
                assert part["type"] in part_types.get(item["role"], {"input_text"})
                assert isinstance(part.get("text", part.get("image_url")), str)
        elif kind == "function_call":
            assert set(item) == {"type", "call_id", "name", "arguments"}
            assert isinstance(item["arguments"], str)
        else:
            assert kind == "function_call_output"
            assert set(item) == {"type", "call_id", "output"} and isinstance(item["output"], str)
    expected_calls = [c["id"] for m in messages for c in m.get("tool_calls", ())]
    assert [i["call_id"] for i in out["input"] if i["type"] == "function_call"] == expected_calls
    for tool in out.get("tools", ()):
        assert set(tool) == {"type", "name", "parameters", "strict"} and isinstance(tool["strict"], bool)
    assert all(s for s in prepared.stop)
    for name in ("temperature", "max_tokens", "user", "metadata"):
        assert (name in prepared.dropped) == (name in params)


def test_custom_tools_choice_and_calls_map_to_responses_custom_tools() -> None:
    """Chat ``custom`` tools (text or grammar format) become Responses custom tools; an assistant's
    custom call a ``custom_tool_call`` and the tool message answering it a ``custom_tool_call_output``
    (codex-protocol.md §6.3), next to an ordinary function call."""
    grammar = {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: /.+/"}}
    body = base(
        tools=[
            {"type": "custom", "custom": {"name": "patch", "description": "apply", "format": grammar}},
            {"type": "custom", "custom": {"name": "note", "format": {"type": "text"}}},
            {"type": "custom", "custom": {"name": "bare"}},
            {"type": "function", "function": {"name": "calc"}},
        ],
        tool_choice={"type": "custom", "custom": {"name": "patch"}},
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_c", "type": "custom", "custom": {"name": "patch", "input": "*** Begin"}},
                    {"id": "call_f", "type": "function", "function": {"name": "calc", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_c", "content": "applied"},
            {"role": "tool", "tool_call_id": "call_f", "content": "4"},
        ],
    )
    out = chat(body).body
    assert out["tools"][:3] == [
        {
            "type": "custom",
            "name": "patch",
            "description": "apply",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
        },
        {"type": "custom", "name": "note", "format": {"type": "text"}},
        {"type": "custom", "name": "bare"},
    ]
    assert out["tool_choice"] == {"type": "custom", "name": "patch"}
    assert out["input"][1:] == [
        {"type": "custom_tool_call", "call_id": "call_c", "name": "patch", "input": "*** Begin"},
        {"type": "function_call", "call_id": "call_f", "name": "calc", "arguments": "{}"},
        {"type": "custom_tool_call_output", "call_id": "call_c", "output": "applied"},
        {"type": "function_call_output", "call_id": "call_f", "output": "4"},
    ]
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [
                {"type": "custom", "custom": {"name": "patch"}},
                {"type": "function", "function": {"name": "calc"}},
            ],
        },
    }
    assert chat(base(tool_choice=allowed)).body["tool_choice"] == {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "custom", "name": "patch"}, {"type": "function", "name": "calc"}],
    }
