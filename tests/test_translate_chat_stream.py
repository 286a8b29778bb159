"""Upstream Responses events → chat.completion.chunk objects (translate/chat_stream.py)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from codexgw.translate.chat_stream import SYSTEM_FINGERPRINT, ChatStreamTranslator, chat_usage
from tests.golden import events as ev

GOLDEN = Path(__file__).parent / "golden" / "chat_stream"


def make(**opts: Any) -> ChatStreamTranslator:
    return ChatStreamTranslator(completion_id="chatcmpl-1", created=1700000000, model="gpt-5.5-high", **opts)


def run(events: list[dict[str, Any]], **opts: Any) -> list[dict[str, Any]]:
    translator = make(**opts)
    chunks: list[dict[str, Any]] = []
    for event in events:
        chunks += translator.feed(event)
    return chunks + translator.finish()


def deltas(chunks: list[dict[str, Any]]) -> list[Any]:
    """Each chunk as ``(delta, finish_reason)``, or ``("usage", usage)`` for the usage chunk."""
    return [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
        if c["choices"]
        else ("usage", c["usage"])
        for c in chunks
    ]


def content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def sdk_accumulate(chunks: list[dict[str, Any]]) -> Any:
    """The openai SDK's own accumulation of the chunks (also validates each chunk's shape)."""
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.get_final_completion()


ROLE = ({"role": "assistant", "content": ""}, None)


# -- golden transcripts -------------------------------------------------------------------------------

GOLDEN_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "text_with_usage": (
        [
            ev.created(),
            {"type": "response.in_progress", "response": {"id": "resp_1", "model": "gpt-5.5"}},
            ev.message_added(0),
            {
                "type": "response.content_part.added",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
            },
            ev.text_delta("Hello"),
            ev.text_delta(", world"),
            {"type": "response.output_text.done", "item_id": "msg_1", "text": "Hello, world"},
            ev.message_done("Hello, world"),
            ev.completed(),
        ],
        {"include_usage": True},
    ),
    "tool_calls_parallel": (
        [
            ev.created(),
            ev.call_added(0, "call_a", "get_weather"),
            ev.args_delta(0, '{"city":', "fc_call_a"),
            ev.args_delta(0, '"Paris"}', "fc_call_a"),
            ev.call_done(0, "call_a", "get_weather", '{"city":"Paris"}'),
            ev.call_added(1, "call_b", "get_time"),
            ev.args_delta(1, "{}", "fc_call_b"),
            ev.call_done(1, "call_b", "get_time", "{}"),
            ev.completed(),
        ],
        {},
    ),
    "reasoning_then_text_think_mode": (
        [
            ev.created(),
            ev.reasoning_added(0),
            ev.summary_delta("**Plan**"),
            ev.summary_delta(" step", 0),
            ev.summary_delta("Check", 1),
            ev.reasoning_done(0, ["**Plan** step", "Check"]),
            ev.message_added(1),
            ev.text_delta("Answer", 1),
            ev.message_done("Answer", 1),
            ev.completed(),
        ],
        {"reasoning_mode": "think"},
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_transcripts(name: str) -> None:
    """Recorded upstream events in, exact chunks out (tests/golden/chat_stream/<name>.json).

    Set UPDATE_GOLDEN=1 to rewrite the files; review the diff before committing.
    """
    events, opts = GOLDEN_CASES[name]
    chunks = run(events, **opts)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"options": opts, "events": events, "chunks": chunks}, indent=1) + "\n")
    golden = json.loads(path.read_text())
    assert golden["events"] == events and golden["options"] == opts
    assert chunks == golden["chunks"]


# -- envelope ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [False, True])
def test_every_chunk_has_the_openai_envelope(include_usage: bool) -> None:
    events = [
        ev.created("gpt-5.5"),
        ev.message_added(0),
        ev.text_delta("hi"),
        ev.message_done("hi"),
        ev.completed(),
    ]
    chunks = run(events, include_usage=include_usage)
    for chunk in chunks:
        assert chunk["id"] == "chatcmpl-1"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == 1700000000
        assert chunk["model"] == "gpt-5.5", "the upstream's response.model replaces the requested name"
        assert chunk["system_fingerprint"] == SYSTEM_FINGERPRINT
        ChatCompletionChunk.model_validate(chunk)
    for chunk in chunks[:2]:
        assert chunk["choices"] == [{"index": 0, "delta": chunk["choices"][0]["delta"], "logprobs": None,
                                     "finish_reason": None}]  # fmt: skip
        assert ("usage" in chunk) is include_usage and chunk.get("usage") is None
    assert deltas(chunks) == [
        ROLE,
        ({"content": "hi"}, None),
        ({}, "stop"),
        *([("usage", ev.CHAT_USAGE)] if include_usage else []),
    ]


def test_no_chunk_before_output_and_role_sent_once() -> None:
    translator = make()
    assert translator.feed(ev.created()) == []
    assert translator.feed(ev.message_added(0)) == []
    assert translator.feed({"type": "response.unknown_future_event"}) == []
    assert deltas(translator.feed(ev.text_delta("a"))) == [ROLE, ({"content": "a"}, None)]
    assert deltas(translator.feed(ev.text_delta("b"))) == [({"content": "b"}, None)]


def test_empty_response_still_gets_role_and_finish() -> None:
    assert deltas(run([ev.created(), ev.completed(usage=None)], include_usage=True)) == [ROLE, ({}, "stop")]


# -- text ----------------------------------------------------------------------------------------------


def test_done_items_without_deltas_carry_the_text() -> None:
    """The protocol §7 minimal fixture: created, output_item.done (message), completed."""
    events = [ev.created(), ev.message_done("hi"), ev.completed()]
    assert deltas(run(events)) == [ROLE, ({"content": "hi"}, None), ({}, "stop")]


def test_done_item_sends_only_what_the_deltas_missed() -> None:
    events = [ev.message_added(0), ev.text_delta("Hel"), ev.message_done("Hello"), ev.completed()]
    assert content(run(events)) == "Hello"
    two_messages = [
        ev.message_added(0, "m1"),
        ev.text_delta("A", 0, "m1"),
        ev.message_done("A", 0, "m1"),
        ev.message_added(1, "m2"),
        ev.message_done("B", 1, "m2"),
        ev.completed(),
    ]
    assert content(run(two_messages)) == "AB"


def test_refusal_deltas_are_delta_refusal_not_content() -> None:
    """A refusal streams as ``delta.refusal`` (OpenAI's field), after the role chunk; ``content``
    stays empty, and the message's ``done`` item repeats nothing that was streamed."""
    refusal_item = {"type": "message", "id": "m", "content": [{"type": "refusal", "refusal": "I can't"}]}
    events = [
        {"type": "response.refusal.delta", "item_id": "m", "delta": "I "},
        {"type": "response.refusal.delta", "item_id": "m", "delta": "can't"},
        {"type": "response.output_item.done", "output_index": 0, "item": refusal_item},
        ev.completed(),
    ]
    chunks = run(events)
    assert content(chunks) == ""
    refusals = [c["choices"][0]["delta"].get("refusal") for c in chunks if c["choices"]]
    assert [r for r in refusals if r] == ["I ", "can't"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_refusal_only_in_the_done_item_is_sent_once() -> None:
    refusal_item = {"type": "message", "id": "m", "content": [{"type": "refusal", "refusal": "No."}]}
    chunks = run(
        [{"type": "response.output_item.done", "output_index": 0, "item": refusal_item}, ev.completed()]
    )
    assert [c["choices"][0]["delta"].get("refusal") for c in chunks if c["choices"]][1] == "No."
    assert content(chunks) == ""


# -- tool calls ----------------------------------------------------------------------------------------


def test_custom_tool_call_streams_as_a_custom_tool_call() -> None:
    """A ``custom_tool_call`` streams as ``tool_calls[{type: "custom", custom: {name, input}}]`` then
    ``custom.input`` pieces; the done item adds what no delta carried; ``finish_reason: tool_calls``."""
    item = {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_1", "name": "patch", "input": ""}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {
            "type": "response.custom_tool_call_input.delta",
            "item_id": "ctc_1",
            "output_index": 0,
            "delta": "*** ",
        },
        {
            "type": "response.custom_tool_call_input.delta",
            "item_id": "ctc_1",
            "output_index": 0,
            "delta": "Begin",
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**item, "input": "*** Begin Patch"},
        },
        ev.completed(),
    ]
    chunks = run(events)
    tool_deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"] and c["choices"][0]["delta"]]
    assert tool_deltas == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"index": 0, "id": "call_1", "type": "custom", "custom": {"name": "patch", "input": ""}}
            ],
        },
        {"tool_calls": [{"index": 0, "custom": {"input": "*** "}}]},
        {"tool_calls": [{"index": 0, "custom": {"input": "Begin"}}]},
        {"tool_calls": [{"index": 0, "custom": {"input": " Patch"}}]},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_chunks_and_finish_reason() -> None:
    chunks = run(GOLDEN_CASES["tool_calls_parallel"][0])
    assert deltas(chunks) == [
        ({"role": "assistant", "content": None,
          "tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                          "function": {"name": "get_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
        ({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                          "function": {"name": "get_time", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, None),
        ({}, "tool_calls"),
    ]  # fmt: skip
    final = sdk_accumulate(chunks)
    calls = final.choices[0].message.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city":"Paris"}'),
        ("call_b", "get_time", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.choices[0].message.content is None  # like the non-streamed answer and OpenAI


def test_tool_call_after_text_keeps_the_role_chunk_and_content() -> None:
    """Text first: the role chunk opens with ``content: ""``; the later call carries no role."""
    events = [
        ev.message_added(0),
        ev.text_delta("Checking."),
        ev.message_done("Checking."),
        ev.call_added(1, "call_a", "f"),
        ev.call_done(1, "call_a", "f", "{}"),
        ev.completed(),
    ]
    chunks = run(events)
    assert deltas(chunks)[0] == ROLE
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert sdk_accumulate(chunks).choices[0].message.content == "Checking."


def test_legacy_functions_stream_function_call_deltas() -> None:
    """``legacy_functions``: one ``delta.function_call`` (name, then argument pieces), a second call
    dropped, ``finish_reason: function_call``; the SDK accumulates ``message.function_call``."""
    chunks = run(GOLDEN_CASES["tool_calls_parallel"][0], legacy_functions=True)
    assert deltas(chunks) == [
        ({"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": ""}}, None),
        ({"function_call": {"arguments": '{"city":'}}, None),
        ({"function_call": {"arguments": '"Paris"}'}}, None),
        ({}, "function_call"),
    ]  # fmt: skip
    final = sdk_accumulate(chunks).choices[0]
    assert final.finish_reason == "function_call"
    assert final.message.function_call is not None
    assert (final.message.function_call.name, final.message.function_call.arguments) == (
        "get_weather",
        '{"city":"Paris"}',
    )
    assert final.message.tool_calls is None
    assert final.message.content is None


def test_tool_call_only_as_done_item() -> None:
    chunks = run([ev.call_done(0, "call_1", "shell_command", '{"command":"ls"}'), ev.completed()])
    assert deltas(chunks) == [
        ({"role": "assistant", "content": None,
          "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                          "function": {"name": "shell_command", "arguments": '{"command":"ls"}'}}]}, None),
        ({}, "tool_calls"),
    ]  # fmt: skip


def test_tool_call_done_fills_in_missing_arguments_and_deltas_match_by_output_index() -> None:
    events = [
        ev.call_added(3, "call_1", "f", item_id="fc_1"),
        {"type": "response.function_call_arguments.delta", "output_index": 3, "delta": '{"a"'},
        ev.call_done(3, "call_1", "f", '{"a":1}', item_id="fc_1"),
        ev.completed(),
    ]
    final = sdk_accumulate(run(events))
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"a":1}'


def test_text_then_tool_call() -> None:
    events = [ev.message_added(0), ev.text_delta("Let me look."), ev.message_done("Let me look."),
              ev.call_added(1, "call_1", "f"), ev.call_done(1, "call_1", "f", "{}"), ev.completed()]  # fmt: skip
    final = sdk_accumulate(run(events))
    assert final.choices[0].message.content == "Let me look."
    assert final.choices[0].finish_reason == "tool_calls"


# -- reasoning -----------------------------------------------------------------------------------------

REASONING = [
    ev.reasoning_added(0),
    ev.summary_delta("one"),
    ev.summary_delta(" more", 0),
    ev.summary_delta("two", 1),
    ev.reasoning_done(0, ["one more", "two"]),
    ev.message_added(1),
    ev.text_delta("Answer", 1),
    ev.completed(),
]


def test_reasoning_content_mode() -> None:
    assert deltas(run(REASONING, reasoning_mode="content")) == [
        ROLE,
        ({"reasoning_content": "one"}, None),
        ({"reasoning_content": " more"}, None),
        ({"reasoning_content": "\n\ntwo"}, None),
        ({"content": "Answer"}, None),
        ({}, "stop"),
    ]


def test_reasoning_think_mode() -> None:
    assert content(run(REASONING, reasoning_mode="think")) == "<think>\none more\n\ntwo\n</think>\n\nAnswer"


def test_reasoning_think_mode_closes_before_tool_calls_and_at_the_end() -> None:
    with_call = [*REASONING[:5], ev.call_added(1, "c", "f"), ev.completed()]
    chunks = run(with_call, reasoning_mode="think")
    assert content(chunks) == "<think>\none more\n\ntwo\n</think>\n\n"
    assert deltas(chunks)[-3][0] == {"content": "\n</think>\n\n"}
    only_reasoning = run([*REASONING[:5], ev.completed()], reasoning_mode="think")
    assert content(only_reasoning) == "<think>\none more\n\ntwo\n</think>\n\n"


def test_reasoning_hidden_mode() -> None:
    assert deltas(run(REASONING, reasoning_mode="hidden")) == [
        ROLE,
        ({"content": "Answer"}, None),
        ({}, "stop"),
    ]


def test_reasoning_done_item_without_deltas_carries_the_summary() -> None:
    events = [ev.reasoning_done(0, ["a", "b"]), ev.completed()]
    chunks = run(events)
    assert [d for d, _ in deltas(chunks)[1:-1]] == [
        {"reasoning_content": "a"},
        {"reasoning_content": "\n\nb"},
    ]


# -- end of stream -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("max_output_tokens", "length"), ("content_filter", "content_filter"), ("other", "stop")],
)
def test_incomplete_finish_reasons(reason: str, finish: str) -> None:
    translator = make(include_usage=True)
    chunks = [*translator.feed(ev.text_delta("partial")), *translator.feed(ev.incomplete(reason))]
    assert deltas(chunks)[-2:] == [({}, finish), ("usage", ev.CHAT_USAGE)]
    assert translator.done and translator.error is None and translator.finish_reason == finish


def test_failure_mid_stream_sets_error_and_refuses_more_input() -> None:
    translator = make(include_usage=True)
    assert content(translator.feed(ev.text_delta("par"))) == "par"
    assert translator.feed(ev.failed("rate_limit_exceeded", "slow down", resets_at=1700000100.5)) == []
    assert translator.done is True
    assert translator.error == {
        "message": "slow down",
        "type": "rate_limit_error",
        "code": "rate_limit_exceeded",
        "param": None,
        "resets_at": 1700000100,
    }
    with pytest.raises(RuntimeError, match="done"):
        translator.feed(ev.text_delta("more"))
    assert translator.finish() == []
    assert translator.error is not None


def test_failure_before_output_produces_no_chunk() -> None:
    translator = make()
    assert translator.feed(ev.created()) == []
    assert translator.feed(ev.failed("context_length_exceeded", "too long")) == []
    assert translator.error == {
        "message": "too long",
        "type": "invalid_request_error",
        "code": "context_length_exceeded",
        "param": None,
    }


@pytest.mark.parametrize(
    "event",
    [
        {"type": "error", "code": "server_error", "message": "oops", "param": None},
        {
            "type": "error",
            "status": 500,
            "error": {"type": "server_error", "code": "server_error", "message": "oops"},
        },
    ],
)
def test_error_events(event: dict[str, Any]) -> None:
    translator = make()
    translator.feed(event)
    assert translator.error is not None
    assert (translator.error["message"], translator.error["type"], translator.error["code"]) == (
        "oops",
        "server_error",
        "server_error",
    )


def test_failed_without_details_still_gives_a_message() -> None:
    translator = make()
    translator.feed({"type": "response.failed", "response": {"status": "failed", "error": None}})
    assert (
        translator.error is not None
        and translator.error["message"]
        and translator.error["type"] == "server_error"
    )


def test_stream_cut_before_completed_sets_truncation_error() -> None:
    translator = make(stop=["XYZ"])
    assert content(translator.feed(ev.text_delta("abcXY"))) == "abc"
    assert content(translator.finish()) == "XY", "held-back text is not lost"
    assert translator.done and translator.error is not None
    assert translator.error["type"] == "upstream_error"


def test_feed_after_completed_raises() -> None:
    translator = make()
    translator.feed(ev.completed())
    with pytest.raises(RuntimeError):
        translator.feed(ev.completed())
    assert translator.finish() == []


def test_model_follows_the_upstream() -> None:
    translator = make()
    translator.feed(ev.created("gpt-5.5-2026-04-01"))
    assert translator.model == "gpt-5.5-2026-04-01"
    assert translator.feed(ev.text_delta("x"))[0]["model"] == "gpt-5.5-2026-04-01"


# -- stop sequences ------------------------------------------------------------------------------------


def test_stop_in_one_delta() -> None:
    translator = make(stop=["END"], include_usage=True)
    chunks = translator.feed(ev.text_delta("hello END world"))
    assert deltas(chunks) == [ROLE, ({"content": "hello "}, None), ({}, "stop")]
    assert translator.stop_hit and not translator.done
    assert translator.feed(ev.text_delta("more")) == []
    assert translator.feed(ev.call_added(1, "c", "f")) == []
    assert deltas(translator.feed(ev.completed())) == [("usage", ev.CHAT_USAGE)]
    assert translator.done and translator.error is None


def test_stop_split_across_deltas_and_false_starts() -> None:
    chunks = run([ev.text_delta("abc E"), ev.text_delta("N"), ev.text_delta("X EN"), ev.text_delta("D tail")],
                 stop=["END"])  # fmt: skip
    assert content(chunks) == "abc ENX "
    assert deltas(chunks)[-1] == ({}, "stop")
    assert [d for d, _ in deltas(chunks)].count({}) == 1


def test_earliest_of_several_stops_wins_and_stop_at_start_sends_nothing() -> None:
    assert content(run([ev.text_delta("one two three")], stop=["three", "two"])) == "one "
    chunks = run([ev.text_delta("STOP now"), ev.completed()], stop=["STOP"])
    assert deltas(chunks) == [ROLE, ({}, "stop")]


def test_stop_after_stop_hit_finish_returns_nothing_and_caller_may_close() -> None:
    translator = make(stop=["."])
    translator.feed(ev.text_delta("Hi. there"))
    assert translator.stop_hit
    assert translator.finish() == []
    assert translator.done and translator.error is None


def test_stop_not_applied_to_reasoning_or_tool_arguments() -> None:
    events = [
        ev.summary_delta("thinking END"),
        ev.call_added(0, "c", "f"),
        ev.args_delta(0, '{"x":"END"}', "fc_c"),
        ev.completed(),
    ]
    final = sdk_accumulate(run(events, stop=["END"], reasoning_mode="content"))
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"x":"END"}'
    assert final.choices[0].finish_reason == "tool_calls"
    think = run(
        [ev.summary_delta("END?"), ev.text_delta("ok END"), ev.completed()],
        stop=["END"],
        reasoning_mode="think",
    )
    assert content(think) == "<think>\nEND?\n</think>\n\nok "


def test_failure_after_stop_is_not_an_error() -> None:
    translator = make(stop=["!"])
    translator.feed(ev.text_delta("hey!"))
    assert translator.feed(ev.failed()) == []
    assert translator.done and translator.error is None


@given(
    text=st.text(alphabet="abE ND", max_size=40),
    stop=st.sampled_from(["END", "N", "EE", "a b", "DD D"]),
    cuts=st.lists(st.integers(0, 40), max_size=8),
)
@settings(max_examples=300)
def test_stop_property_any_split(text: str, stop: str, cuts: list[int]) -> None:
    """However the text is split into deltas, the output is the text up to the first stop match."""
    bounds = [0, *sorted(c for c in set(cuts) if c <= len(text)), len(text)]
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    chunks = run([ev.text_delta(p) for p in pieces] + [ev.completed()], stop=[stop])
    i = text.find(stop)
    assert content(chunks) == (text[:i] if i >= 0 else text)
    assert deltas(chunks)[-1] == ({}, "stop")


# -- usage ---------------------------------------------------------------------------------------------


def test_chat_usage_mapping() -> None:
    assert chat_usage(ev.USAGE) == ev.CHAT_USAGE
    assert chat_usage(None) is None
    assert chat_usage({"input_tokens": 3, "output_tokens": 2, "input_tokens_details": None}) == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
