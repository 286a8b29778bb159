"""Non-streamed answers: ResponseAggregator and chat_completion_from_events (translate/aggregate.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from codexgw.errors import (
    InvalidRequestError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UsageLimitError,
)
from codexgw.translate.aggregate import ChatCompletionBuilder, ResponseAggregator, chat_completion_from_events
from codexgw.translate.chat_stream import ChatStreamTranslator
from tests.golden import events as ev

# -- ResponseAggregator --------------------------------------------------------------------------------


def aggregate(events: list[dict[str, Any]]) -> ResponseAggregator:
    agg = ResponseAggregator()
    for event in events:
        agg.feed(event)
    return agg


def test_response_is_the_completed_response() -> None:
    output = [ev.message_item("hi")]
    agg = aggregate([ev.created(), ev.message_done("hi"), ev.completed(output=output)])
    assert agg.done and agg.error is None
    assert agg.response == ev.completed(output=output)["response"]


def test_empty_output_is_rebuilt_from_done_items_in_output_index_order() -> None:
    agg = aggregate(
        [
            ev.created(),
            ev.call_done(2, "call_1", "f", "{}"),
            ev.reasoning_done(0, ["s"]),
            ev.message_done("text", 1),
            ev.completed(),
        ]
    )
    response = agg.response
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["usage"] == ev.USAGE
    assert response["status"] == "completed"


def test_done_items_without_output_index_keep_arrival_order() -> None:
    first = {"type": "response.output_item.done", "item": ev.message_item("a", "m1")}
    second = {"type": "response.output_item.done", "item": ev.message_item("b", "m2")}
    assert [i["id"] for i in aggregate([first, second, ev.completed()]).response["output"]] == ["m1", "m2"]


def test_incomplete_is_returned_as_a_response() -> None:
    agg = aggregate([ev.message_done("part"), ev.incomplete("max_output_tokens")])
    assert agg.error is None
    assert agg.response["status"] == "incomplete"
    assert agg.response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert agg.response["output"][0]["content"][0]["text"] == "part"


@pytest.mark.parametrize(
    ("event", "exc_type", "status"),
    [
        (ev.failed("context_length_exceeded", "too long"), UpstreamStatusError, 400),
        (ev.failed("rate_limit_exceeded", "slow"), UpstreamStatusError, 429),
        (ev.failed("server_is_overloaded", "busy"), UpstreamStatusError, 503),
        (
            ev.failed("usage_limit_reached", "limit", resets_at=1800000000, plan_type="plus"),
            UsageLimitError,
            429,
        ),
        (ev.failed("server_error", "boom"), UpstreamError, 502),
        ({"type": "error", "code": "invalid_prompt", "message": "bad"}, UpstreamStatusError, 400),
    ],
)
def test_failed_response_raises_the_mapped_error(event: dict[str, Any], exc_type: type, status: int) -> None:
    agg = aggregate([ev.created(), event, ev.completed()])
    assert agg.done and agg.error is not None
    with pytest.raises(exc_type) as info:
        _ = agg.response
    assert info.value.status == status
    body = info.value.to_body()["error"]
    assert body["message"] == event.get("message") or event["response"]["error"]["message"]
    if exc_type is UsageLimitError:
        assert body["resets_at"] == 1800000000 and body["plan_type"] == "plus"


def test_context_length_error_body_keeps_the_code() -> None:
    agg = aggregate([ev.failed("context_length_exceeded", "too long")])
    with pytest.raises(UpstreamStatusError) as info:
        _ = agg.response
    assert info.value.to_body()["error"] == {
        "message": "too long",
        "type": "invalid_request_error",
        "param": None,
        "code": "context_length_exceeded",
    }


def test_truncated_stream_raises_connection_error() -> None:
    agg = aggregate([ev.created(), ev.message_done("x")])
    assert not agg.done
    with pytest.raises(UpstreamConnectionError):
        _ = agg.response


# -- chat_completion_from_events ----------------------------------------------------------------------


def complete(events: list[dict[str, Any]], **opts: Any) -> dict[str, Any]:
    opts.setdefault("reasoning_mode", "content")
    opts.setdefault("stop", ())
    return chat_completion_from_events(
        events, completion_id="chatcmpl-1", created=1700000000, model="gpt-5.5", **opts
    )


def test_golden_chat_completion() -> None:
    events = [
        ev.created("gpt-5.5"),
        ev.reasoning_added(0),
        ev.summary_delta("plan"),
        ev.reasoning_done(0, ["plan"]),
        ev.message_added(1),
        ev.text_delta("Hi", 1),
        ev.message_done("Hi", 1),
        ev.call_added(2, "call_1", "f"),
        ev.args_delta(2, '{"a":1}', "fc_call_1"),
        ev.call_done(2, "call_1", "f", '{"a":1}'),
        ev.completed(),
    ]
    completion = complete(events)
    assert completion == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-5.5",
        "system_fingerprint": "fp_codexgw",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi",
                    "refusal": None,
                    "annotations": [],
                    "reasoning_content": "plan",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": ev.CHAT_USAGE,
    }
    ChatCompletion.model_validate(completion)


def test_tool_calls_only_gives_null_content() -> None:
    completion = complete([ev.call_done(0, "c", "f", "{}"), ev.completed()])
    assert completion["choices"][0]["message"]["content"] is None


def test_plain_answer_has_no_reasoning_or_tool_keys() -> None:
    message = complete([ev.message_done("ok"), ev.completed()])["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "ok", "refusal": None, "annotations": []}


def test_think_and_hidden_modes() -> None:
    events = [ev.summary_delta("hmm"), ev.text_delta("ok"), ev.completed()]
    assert complete(events, reasoning_mode="think")["choices"][0]["message"]["content"] == (
        "<think>\nhmm\n</think>\n\nok"
    )
    hidden = complete(events, reasoning_mode="hidden")["choices"][0]["message"]
    assert hidden["content"] == "ok" and "reasoning_content" not in hidden


def test_stop_keeps_usage_from_the_completed_event() -> None:
    completion = complete([ev.text_delta("a.b"), ev.text_delta("c"), ev.completed()], stop=["."])
    assert completion["choices"][0]["message"]["content"] == "a"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == ev.CHAT_USAGE


def test_stop_without_completed_event_is_fine() -> None:
    completion = complete([ev.text_delta("a.b")], stop=["."])
    assert completion["choices"][0]["message"]["content"] == "a"
    assert completion["usage"] is None


def test_builder_is_done_at_a_stop_match_so_the_route_can_close_the_upstream() -> None:
    """Fed one event at a time, the builder says ``done`` as soon as a stop sequence matched (split
    over two deltas here), before any terminal event; the completion is then complete."""
    builder = ChatCompletionBuilder(
        completion_id="chatcmpl-1", created=1700000000, model="gpt-5.5", stop=["END"]
    )
    builder.feed(ev.created())
    builder.feed(ev.text_delta("Hello E"))
    assert not builder.done
    builder.feed(ev.text_delta("ND more"))
    assert builder.done
    completion = builder.completion()
    assert completion["choices"][0]["message"]["content"] == "Hello "
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] is None


def test_builder_equals_chat_completion_from_events() -> None:
    events = [ev.created(), ev.message_added(0), ev.text_delta("Hi"), ev.message_done("Hi"), ev.completed()]
    builder = ChatCompletionBuilder(completion_id="chatcmpl-1", created=1700000000, model="gpt-5.5")
    for event in events:
        assert not builder.done
        builder.feed(event)
    assert builder.done
    builder.feed(ev.text_delta("ignored after the terminal event"))
    assert builder.completion() == complete(events)


def test_builder_raises_the_upstream_failure() -> None:
    builder = ChatCompletionBuilder(completion_id="chatcmpl-1", created=1700000000, model="gpt-5.5")
    builder.feed(ev.failed("context_length_exceeded", "too long"))
    assert builder.done
    with pytest.raises(UpstreamStatusError):
        builder.completion()


def test_legacy_function_call_message() -> None:
    """With ``legacy_functions`` the non-streamed message has ``function_call`` and no ``tool_calls``."""
    events = [ev.call_added(0, "call_a", "f"), ev.call_done(0, "call_a", "f", '{"x":1}'), ev.completed()]
    choice = complete(events, legacy_functions=True)["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {"name": "f", "arguments": '{"x":1}'}
    assert choice["message"]["content"] is None
    assert "tool_calls" not in choice["message"]
    ChatCompletion.model_validate(complete(events, legacy_functions=True))


def test_length_finish_reason() -> None:
    assert (
        complete([ev.text_delta("a"), ev.incomplete("max_output_tokens")])["choices"][0]["finish_reason"]
        == "length"
    )


def test_failure_and_truncation_raise() -> None:
    with pytest.raises(UpstreamStatusError) as info:
        complete([ev.text_delta("a"), ev.failed("context_length_exceeded", "too long")])
    assert info.value.status == 400
    with pytest.raises(UpstreamConnectionError):
        complete([ev.created(), ev.text_delta("a")])
    assert not issubclass(UpstreamStatusError, InvalidRequestError)


# -- property: streamed chunks accumulated == non-streamed completion ----------------------------------


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    return [text[a:b] for a, b in itertools.pairwise(bounds)] or [""]


@st.composite
def upstream_streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A random upstream event sequence plus the ground truth it encodes."""
    events: list[dict[str, Any]] = [ev.created()]
    truth: dict[str, Any] = {"text": "", "reasoning": [], "calls": [], "segments": []}
    words = st.text(alphabet='ab c\n{}"é😀', max_size=12)
    for index in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["message", "call", "reasoning"]))
        with_deltas = draw(st.booleans())
        cuts = draw(st.lists(st.integers(0, 12), max_size=4))
        if kind == "message":
            text = draw(words)
            item_id = f"msg_{index}"
            events.append(ev.message_added(index, item_id))
            if with_deltas:
                events += [ev.text_delta(p, index, item_id) for p in split(text, cuts)]
            events.append(ev.message_done(text, index, item_id))
            truth["text"] += text
            truth["segments"].append(("text", text))
        elif kind == "call":
            args = draw(words)
            call_id, item_id = f"call_{index}", f"fc_{index}"
            if draw(st.booleans()) or with_deltas:
                events.append(ev.call_added(index, call_id, "fn", item_id))
            if with_deltas:
                events += [ev.args_delta(index, p, item_id) for p in split(args, cuts)]
            events.append(ev.call_done(index, call_id, "fn", args, item_id))
            truth["calls"].append((call_id, "fn", args))
            truth["segments"].append(("call", args))
        else:
            parts = draw(st.lists(st.text(alphabet="xyz ", min_size=1, max_size=6), min_size=1, max_size=3))
            item_id = f"rs_{index}"
            events.append(ev.reasoning_added(index, item_id))
            if with_deltas:
                for k, part in enumerate(parts):
                    events += [ev.summary_delta(p, k, item_id) for p in split(part, cuts)]
            events.append(ev.reasoning_done(index, parts, item_id))
            truth["reasoning"] += parts
            truth["segments"].append(("reasoning", parts))
    end = draw(st.sampled_from(["completed", "completed", "length", "content_filter"]))
    events.append(ev.completed() if end == "completed" else ev.incomplete(
        "max_output_tokens" if end == "length" else end))  # fmt: skip
    truth["finish"] = {"length": "length", "content_filter": "content_filter"}.get(
        end, "tool_calls" if truth["calls"] else "stop"
    )
    return events, truth


def think_content(segments: list[tuple[str, Any]]) -> str:
    """What ``think`` mode should put in ``content``: reasoning runs wrapped in <think> blocks."""
    out, is_open = "", False
    for kind, value in segments:
        if kind == "reasoning":
            out += ("\n\n" if is_open else "<think>\n") + "\n\n".join(value)
            is_open = True
        elif is_open and (kind == "call" or value):
            out += "\n</think>\n\n"
            is_open = False
        if kind == "text":
            out += value
    return out + ("\n</think>\n\n" if is_open else "")


@given(stream=upstream_streams(), mode=st.sampled_from(["content", "think", "hidden"]), usage=st.booleans())
@settings(max_examples=300, deadline=None)
def test_streamed_chunks_accumulate_to_the_non_streamed_completion(
    stream: tuple[list[dict[str, Any]], dict[str, Any]], mode: Any, usage: bool
) -> None:
    events, truth = stream
    translator = ChatStreamTranslator(
        completion_id="chatcmpl-1",
        created=1700000000,
        model="gpt-5.5",
        include_usage=usage,
        reasoning_mode=mode,
    )
    state = ChatCompletionStreamState()
    for event in events:
        for chunk in translator.feed(event):
            state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    for chunk in translator.finish():
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    streamed = state.current_completion_snapshot  # (get_final_completion raises on 'length')
    completion = complete(events, reasoning_mode=mode)
    ChatCompletion.model_validate(completion)
    message = completion["choices"][0]["message"]
    s_message = streamed.choices[0].message

    # the non-streamed answer equals the streamed one as the openai SDK accumulates it
    assert (s_message.content or "") == (message["content"] or "")
    assert getattr(s_message, "reasoning_content", None) == message.get("reasoning_content")
    s_calls = [(c.id, c.function.name, c.function.arguments) for c in s_message.tool_calls or ()]
    calls = [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", ())
    ]
    assert s_calls == calls
    assert streamed.choices[0].finish_reason == completion["choices"][0]["finish_reason"]
    if usage:
        assert (
            streamed.usage is not None and streamed.usage.model_dump(exclude_none=True) == completion["usage"]
        )

    # and both equal the ground truth the events encode
    assert (message["content"] or "") == (
        think_content(truth["segments"]) if mode == "think" else truth["text"]
    )
    reasoning = "\n\n".join(truth["reasoning"])
    assert message.get("reasoning_content") == (reasoning if mode == "content" and reasoning else None)
    assert calls == truth["calls"]
    assert completion["choices"][0]["finish_reason"] == truth["finish"]
    assert completion["usage"] == ev.CHAT_USAGE
