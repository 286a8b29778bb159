"""End to end: Chat Completions fidelity (issue 4) with the official ``openai`` SDK against codexgw.

Every test runs a real codexgw in front of the fake Codex backend (tests/fakes), which is as strict as
the real one: a request it accepts is one the ChatGPT backend would accept (codex-protocol.md §6.3).
Each test checks both sides: what the SDK sees, and what reached the fake.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
import trio
from pydantic import BaseModel

from tests.conftest import Env, in_thread
from tests.fakes import DropMidStream, Failed, Hold, Incomplete, Text, ToolCall, Usage

pytestmark = pytest.mark.trio

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "Weather in Paris?"}]
REASONING_HEADER = "x-codexgw-reasoning"


def upstream_body(env: Env, index: int = -1) -> dict[str, Any]:
    """The JSON body of a ``/codex/responses`` call the fake received."""
    body = env.fake.responses_requests()[index].json
    assert isinstance(body, dict)
    return body


def collect(stream: Any) -> list[Any]:
    """Iterate an SDK stream to its end (run in a worker thread)."""
    return list(stream)


def streamed_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks: list[Any]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


async def sse_lines(env: Env, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[str]:
    """POST a chat request with httpx and return the raw SSE lines of the answer."""
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{env.url}/v1/chat/completions", json=body, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.text.splitlines()


def sse_payloads(lines: list[str]) -> list[Any]:
    """The ``data:`` payloads of raw SSE lines, JSON-decoded except ``[DONE]``."""
    out: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# -- tools -------------------------------------------------------------------------------------------


async def test_tool_round_trip_not_streamed(env: Env) -> None:
    """tools → the fake's function call → SDK ``tool_calls``; the follow-up with the assistant
    tool_calls message and a ``tool`` message reaches the fake as ``function_call`` +
    ``function_call_output`` with the same ``call_id``, and the fake's answer comes back."""
    env.add_account("alice")
    env.fake.script(
        None, ToolCall("get_weather", '{"city":"Paris"}', call_id="call_w1"), Text("Sunny, 21 C.")
    )
    await env.start()
    client = env.openai()
    first = await in_thread(
        client.chat.completions.create,
        model="gpt-5.5",
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        parallel_tool_calls=False,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_w1", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = upstream_body(env)
    assert sent["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
            "strict": False,
        }
    ]
    assert sent["tool_choice"] == "auto"
    assert sent["parallel_tool_calls"] is False

    follow_up = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    second = await in_thread(
        client.chat.completions.create, model="gpt-5.5", messages=follow_up, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == "Sunny, 21 C."
    assert second.choices[0].finish_reason == "stop"
    items = upstream_body(env)["input"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1] == {
        "type": "function_call",
        "call_id": "call_w1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert items[2] == {"type": "function_call_output", "call_id": "call_w1", "output": '{"temp_c": 21}'}


async def test_tool_round_trip_streamed(env: Env) -> None:
    """Streamed: the call's id, type and name come in its first ``delta.tool_calls[0]``, argument pieces
    follow at the same index, text before the call streams as content; ``finish_reason: tool_calls``.
    The streamed follow-up reaches the fake with the matching call id."""
    env.add_account("alice")
    env.fake.script(
        None,
        ToolCall("get_weather", '{"city":"Paris","unit":"C"}', call_id="call_s1", text_before="Checking."),
        Text("Sunny.", chunks=["Sun", "ny."]),
    )
    await env.start()
    client = env.openai()
    chunks = await in_thread(
        lambda: collect(
            client.chat.completions.create(
                model="gpt-5.5", messages=ASK, tools=[WEATHER_TOOL], tool_choice="required", stream=True
            )
        )
    )
    assert streamed_text(chunks) == "Checking."
    assert finish_reasons(chunks) == ["tool_calls"]
    pieces = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert len(pieces) > 2, "arguments should stream in several deltas"
    head, rest = pieces[0], pieces[1:]
    assert (head.index, head.id, head.type, head.function.name) == (0, "call_s1", "function", "get_weather")
    assert all(p.index == 0 and p.id is None and p.function.name is None for p in rest)
    arguments = "".join(p.function.arguments or "" for p in pieces)
    assert json.loads(arguments) == {"city": "Paris", "unit": "C"}
    assert upstream_body(env)["tool_choice"] == "required"

    assistant = {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": head.id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        ],
    }
    tool_msg = {"role": "tool", "tool_call_id": head.id, "content": "sunny"}
    chunks = await in_thread(
        lambda: collect(
            client.chat.completions.create(
                model="gpt-5.5", messages=[*ASK, assistant, tool_msg], tools=[WEATHER_TOOL], stream=True
            )
        )
    )
    assert streamed_text(chunks) == "Sunny."
    items = upstream_body(env)["input"]
    assert [(i["type"], i.get("role")) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("function_call", None),
        ("function_call_output", None),
    ]
    assert items[2]["call_id"] == items[3]["call_id"] == "call_s1"


async def test_named_tool_choice_and_legacy_functions(env: Env) -> None:
    """A named ``tool_choice`` and the legacy ``functions``/``function_call`` reach the fake as
    Responses function tools with a ``{"type": "function", "name"}`` choice."""
    env.add_account("alice")
    env.fake.script(None, ToolCall("get_weather", '{"city":"Oslo"}'), ToolCall("get_weather", "{}"))
    await env.start()
    client = env.openai()
    done = await in_thread(
        client.chat.completions.create,
        model="gpt-5.5",
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert done.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert upstream_body(env)["tool_choice"] == {"type": "function", "name": "get_weather"}

    await in_thread(
        client.chat.completions.create,
        model="gpt-5.5",
        messages=ASK,
        functions=[WEATHER_TOOL["function"]],
        function_call={"name": "get_weather"},
    )
    sent = upstream_body(env)
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"] == {"type": "function", "name": "get_weather"}


async def test_legacy_functions_answer_with_function_call(env: Env) -> None:
    """A request with only the deprecated ``functions`` is answered the legacy way, streamed and not:
    ``message.function_call`` and ``finish_reason: function_call``; the follow-up ``function``
    message reaches the fake as a ``function_call_output`` answering that call."""
    env.add_account("alice")
    env.fake.script(
        None,
        ToolCall("get_weather", '{"city":"Oslo"}'),
        ToolCall("get_weather", '{"city":"Rome"}'),
        Text("Cold."),
    )
    await env.start()
    client = env.openai()
    functions = [WEATHER_TOOL["function"]]
    done = await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ASK, functions=functions)
    choice = done.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call is not None
    assert (choice.message.function_call.name, choice.message.function_call.arguments) == (
        "get_weather",
        '{"city":"Oslo"}',
    )
    assert choice.message.tool_calls is None
    assert upstream_body(env)["parallel_tool_calls"] is False

    chunks = await in_thread(
        lambda: collect(
            client.chat.completions.create(model="gpt-5.5", messages=ASK, functions=functions, stream=True)
        )
    )
    assert finish_reasons(chunks) == ["function_call"]
    pieces = [
        c.choices[0].delta.function_call for c in chunks if c.choices and c.choices[0].delta.function_call
    ]
    assert pieces[0].name == "get_weather"
    assert "".join(p.arguments or "" for p in pieces) == '{"city":"Rome"}'

    follow_up = [
        *ASK,
        {"role": "assistant", "content": None, "function_call": choice.message.function_call.model_dump()},
        {"role": "function", "name": "get_weather", "content": "-3 C"},
    ]
    answer = await in_thread(
        client.chat.completions.create, model="gpt-5.5", messages=follow_up, functions=functions
    )
    assert answer.choices[0].message.content == "Cold."
    items = upstream_body(env)["input"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1]["call_id"] == items[2]["call_id"]


# -- SDK helpers: stream() and parse() ---------------------------------------------------------------


class Person(BaseModel):
    name: str
    age: int


async def test_stream_helper_events_and_final_completion(env: Env) -> None:
    """``chat.completions.stream()`` yields chunk and content events and a final completion."""
    env.add_account("alice")
    env.fake.script(None, Text("alpha beta gamma", chunks=["alpha ", "beta ", "gamma"]))
    await env.start()
    client = env.openai()

    def run() -> tuple[list[Any], Any]:
        with client.chat.completions.stream(model="gpt-5.5", messages=ASK) as stream:
            events = list(stream)
            return events, stream.get_final_completion()

    events, final = await in_thread(run)
    kinds = [e.type for e in events]
    assert "content.done" in kinds
    # the role chunk carries content "" (as OpenAI's does), so the first content.delta is empty
    assert [e.delta for e in events if e.type == "content.delta" and e.delta] == ["alpha ", "beta ", "gamma"]
    assert final.choices[0].message.content == "alpha beta gamma"
    assert final.choices[0].finish_reason == "stop"
    assert final.id.startswith("chatcmpl-")


async def test_stream_helper_parses_strict_tool_arguments(env: Env) -> None:
    """With a strict pydantic tool, the stream helper parses the streamed arguments into the model."""
    env.add_account("alice")
    env.fake.script(None, ToolCall("Person", '{"name":"Ada","age":36}', call_id="call_p"))
    await env.start()
    client = env.openai()

    def run() -> tuple[list[str], Any]:
        with client.chat.completions.stream(
            model="gpt-5.5", messages=ASK, tools=[openai.pydantic_function_tool(Person)]
        ) as stream:
            kinds = [e.type for e in stream]
            return kinds, stream.get_final_completion()

    kinds, final = await in_thread(run)
    assert "tool_calls.function.arguments.done" in kinds
    [call] = final.choices[0].message.tool_calls
    assert final.choices[0].message.content is None  # as OpenAI answers a call-only turn
    assert call.id == "call_p"
    assert call.function.parsed_arguments == Person(name="Ada", age=36)
    assert upstream_body(env)["tools"][0]["strict"] is True


async def test_parse_with_a_pydantic_model(env: Env) -> None:
    """``chat.completions.parse()`` sends ``text.format`` json_schema (strict) and parses the JSON."""
    env.add_account("alice")
    env.fake.script(None, Text('{"name":"x","age":3}'))
    await env.start()
    client = env.openai()
    done = await in_thread(
        client.chat.completions.parse, model="gpt-5.5", messages=ASK, response_format=Person
    )
    assert done.choices[0].message.parsed == Person(name="x", age=3)
    fmt = upstream_body(env)["text"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["name"] == "Person"
    assert fmt["strict"] is True
    assert fmt["schema"]["properties"].keys() == {"name", "age"}
    assert fmt["schema"]["additionalProperties"] is False


async def test_json_object_response_format(env: Env) -> None:
    """``response_format: json_object`` becomes ``text.format: {"type": "json_object"}``."""
    env.add_account("alice")
    env.fake.script(None, Text('{"ok": true}'))
    await env.start()
    done = await in_thread(
        env.openai().chat.completions.create,
        model="gpt-5.5",
        messages=[{"role": "user", "content": "Answer in JSON"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(done.choices[0].message.content) == {"ok": True}
    assert upstream_body(env)["text"]["format"] == {"type": "json_object"}


# -- images ------------------------------------------------------------------------------------------

PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


async def test_image_parts_reach_the_fake_as_input_image(env: Env) -> None:
    """``image_url`` parts (a data URL and an https URL with ``detail``) become ``input_image``."""
    env.add_account("alice")
    env.fake.script(None, Text("Two images."))
    await env.start()
    done = await in_thread(
        env.openai().chat.completions.create,
        model="gpt-5.5",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": PIXEL}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.png", "detail": "high"},
                    },
                ],
            }
        ],
    )
    assert done.choices[0].message.content == "Two images."
    [message] = upstream_body(env)["input"]
    assert message["content"] == [
        {"type": "input_text", "text": "Compare"},
        {"type": "input_image", "image_url": PIXEL, "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "high"},
    ]


async def test_audio_part_is_refused_naming_it(env: Env) -> None:
    """An ``input_audio`` part is a 400 naming ``messages[0].content[1]``; nothing goes upstream."""
    env.add_account("alice")
    await env.start()
    with pytest.raises(openai.BadRequestError) as info:
        await in_thread(
            env.openai().chat.completions.create,
            model="gpt-5.5",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    ],
                }
            ],
        )
    assert info.value.param == "messages[0].content[1]"
    assert env.fake.responses_requests() == []


# -- reasoning ---------------------------------------------------------------------------------------

SUMMARY = "Thinking about Paris weather."
ANSWER = "It is sunny."


async def _reasoning_answers(env: Env, headers: dict[str, str]) -> tuple[dict[str, Any], list[Any]]:
    """The non-streamed message (raw JSON) and the streamed chunks (raw JSON) for a reasoning answer."""
    env.fake.script(
        None,
        Text(ANSWER, reasoning_summary=SUMMARY),
        Text(ANSWER, reasoning_summary=SUMMARY, chunks=["It ", "is ", "sunny."]),
    )
    raw = await in_thread(
        env.openai().chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=ASK,
        extra_headers=headers,
    )
    message = raw.http_response.json()["choices"][0]["message"]
    assert raw.parse().choices[0].message.model_extra.get("reasoning_content") == message.get(
        "reasoning_content"
    )
    chunks = sse_payloads(
        await sse_lines(env, {"model": "gpt-5.5", "messages": ASK, "stream": True}, headers)
    )
    assert chunks[-1] == "[DONE]"
    return message, [c for c in chunks[:-1] if c["choices"]]


async def test_reasoning_mode_content(env: Env) -> None:
    """``x-codexgw-reasoning: content`` puts the summary in ``reasoning_content`` (message and deltas)."""
    env.add_account("alice")
    await env.start()
    message, chunks = await _reasoning_answers(env, {REASONING_HEADER: "content"})
    assert message["reasoning_content"] == SUMMARY
    assert message["content"] == ANSWER
    assert "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks) == SUMMARY
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == ANSWER
    assert upstream_body(env)["reasoning"]["summary"] == "auto"


async def test_reasoning_mode_think(env: Env) -> None:
    """``think`` wraps the summary in ``<think>…</think>`` at the start of ``content``."""
    env.add_account("alice")
    await env.start()
    message, chunks = await _reasoning_answers(env, {REASONING_HEADER: "think"})
    expected = f"<think>\n{SUMMARY}\n</think>\n\n{ANSWER}"
    assert message["content"] == expected
    assert "reasoning_content" not in message
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == expected
    assert not any("reasoning_content" in c["choices"][0]["delta"] for c in chunks)


async def test_reasoning_mode_hidden(env: Env) -> None:
    """``hidden`` omits the summary entirely."""
    env.add_account("alice")
    await env.start()
    message, chunks = await _reasoning_answers(env, {REASONING_HEADER: "hidden"})
    assert message["content"] == ANSWER
    assert "reasoning_content" not in message
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == ANSWER
    assert not any("reasoning_content" in c["choices"][0]["delta"] for c in chunks)


async def test_reasoning_mode_server_default_and_header_override(env: Env) -> None:
    """``serve --reasoning-mode think`` is the default; the header still wins per request."""
    env.add_account("alice")
    await env.start(reasoning_mode="think")
    message, _ = await _reasoning_answers(env, {})
    assert message["content"].startswith(f"<think>\n{SUMMARY}\n</think>")
    message, _ = await _reasoning_answers(env, {REASONING_HEADER: "Content"})
    assert message["content"] == ANSWER
    assert message["reasoning_content"] == SUMMARY


async def test_reasoning_mode_header_must_be_known(env: Env) -> None:
    """An unknown ``x-codexgw-reasoning`` value is a 400 naming the header."""
    env.add_account("alice")
    await env.start()
    with pytest.raises(openai.BadRequestError) as info:
        await in_thread(
            env.openai().chat.completions.create,
            model="gpt-5.5",
            messages=ASK,
            extra_headers={REASONING_HEADER: "loud"},
        )
    assert info.value.param == REASONING_HEADER


@pytest.mark.parametrize(
    ("model", "effort", "sent_effort"),
    [("gpt-5.5", "high", "high"), ("gpt-5.5-high", None, "high"), ("gpt-5.5-xhigh", "low", "xhigh")],
)
async def test_reasoning_effort_and_model_suffix(
    env: Env, model: str, effort: str | None, sent_effort: str
) -> None:
    """``reasoning_effort`` and a model suffix (which wins) reach the fake as ``reasoning.effort``."""
    env.add_account("alice")
    await env.start()
    extra = {"reasoning_effort": effort} if effort else {}
    done = await in_thread(env.openai().chat.completions.create, model=model, messages=ASK, **extra)
    sent = upstream_body(env)
    assert sent["model"] == "gpt-5.5"
    assert sent["reasoning"]["effort"] == sent_effort
    assert done.model == "gpt-5.5"


# -- stop sequences ----------------------------------------------------------------------------------

STOP_TEXT = "Hello world. END of the answer"
STOP_CHUNKS = ["Hello wor", "ld. E", "N", "D of", " the answer"]


async def test_stop_not_streamed(env: Env) -> None:
    """Non-streamed: the content is cut before the first match; ``finish_reason: stop``; ``stop`` is
    never sent upstream."""
    env.add_account("alice")
    env.fake.script(None, Text(STOP_TEXT))
    await env.start()
    done = await in_thread(
        env.openai().chat.completions.create, model="gpt-5.5", messages=ASK, stop=["zzz", "END"]
    )
    assert done.choices[0].message.content == "Hello world. "
    assert done.choices[0].finish_reason == "stop"
    assert "stop" not in upstream_body(env)


async def test_stop_streamed_split_across_deltas_closes_upstream(env: Env) -> None:
    """Streamed: a match split over three deltas (``E``/``N``/``D``) is found, the text before it
    is sent, the stream ends with ``finish_reason: stop`` and ``[DONE]``, and codexgw closes the
    upstream connection while the fake still has more to say."""
    env.add_account("alice")
    # events: created, in_progress, item.added, part.added, deltas at 4..8; hold before the last one
    hold = Hold(after_headers=True, after_events=8, then=Text(STOP_TEXT, chunks=STOP_CHUNKS))
    env.fake.script(None, hold)
    await env.start()
    client = env.openai(timeout=10)  # a missed stop would hang on the held stream: time out instead
    with trio.fail_after(20):
        chunks = await in_thread(
            lambda: collect(
                client.chat.completions.create(model="gpt-5.5", messages=ASK, stop="END", stream=True)
            )
        )
        await env.fake.wait_for(lambda: env.fake.client_disconnects >= 1)
    assert streamed_text(chunks) == "Hello world. "
    assert finish_reasons(chunks) == ["stop"]
    assert not hold.release.is_set()


async def test_stop_not_streamed_closes_upstream_early(env: Env) -> None:
    """Non-streamed: after a stop match codexgw answers at once and closes the upstream, without
    waiting for the rest of the generation."""
    env.add_account("alice")
    hold = Hold(after_headers=True, after_events=8, then=Text(STOP_TEXT, chunks=STOP_CHUNKS))
    env.fake.script(None, hold)
    await env.start()
    client = env.openai(timeout=30)
    async with trio.open_nursery() as nursery:
        result: list[Any] = []

        async def ask() -> None:
            result.append(
                await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ASK, stop="END")
            )

        nursery.start_soon(ask)
        try:
            with trio.fail_after(5):
                await env.fake.wait_for(lambda: env.fake.client_disconnects >= 1)
        finally:
            hold.release.set()  # never leave the SDK thread hanging
    assert result[0].choices[0].message.content == "Hello world. "


# -- failures, finish reasons ------------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", [Failed(after_output=True), DropMidStream(after_events=6)])
async def test_mid_stream_failure_raises_api_error(env: Env, behaviour: Any) -> None:
    """An upstream failure after the first byte ends the stream with ``data: {"error": …}`` and no
    ``[DONE]``; the SDK raises ``APIError`` after the partial text."""
    env.add_account("alice")
    env.fake.script(None, behaviour)
    await env.start()
    client = env.openai()
    seen: list[Any] = []

    def run() -> None:
        for chunk in client.chat.completions.create(model="gpt-5.5", messages=ASK, stream=True):
            seen.append(chunk)

    with pytest.raises(openai.APIError) as info:
        await in_thread(run)
    assert not isinstance(info.value, openai.APIStatusError)
    assert streamed_text(seen), "partial text before the failure is delivered"
    assert finish_reasons(seen) == []

    env.fake.script(None, behaviour)
    lines = await sse_lines(env, {"model": "gpt-5.5", "messages": ASK, "stream": True})
    payloads = sse_payloads(lines)
    assert "[DONE]" not in payloads
    assert set(payloads[-1]) == {"error"}
    assert payloads[-1]["error"]["message"]


async def test_failure_not_streamed_is_an_http_error(env: Env) -> None:
    """Non-streamed, the same failure is an HTTP error (overloaded → 503) the SDK raises."""
    env.add_account("alice")
    env.fake.script(None, Failed(after_output=True))
    await env.start()
    with pytest.raises(openai.APIStatusError) as info:
        await in_thread(env.openai().chat.completions.create, model="gpt-5.5", messages=ASK)
    assert info.value.status_code == 503


@pytest.mark.parametrize(
    ("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")]
)
async def test_incomplete_finish_reasons(env: Env, reason: str, finish: str) -> None:
    """``response.incomplete`` maps to ``length`` / ``content_filter``, streamed and not."""
    env.add_account("alice")
    env.fake.script(None, Incomplete(reason, text="Cut short"), Incomplete(reason, text="Cut short"))
    await env.start()
    client = env.openai()
    done = await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ASK)
    assert done.choices[0].finish_reason == finish
    assert done.choices[0].message.content == "Cut short"
    chunks = await in_thread(
        lambda: collect(client.chat.completions.create(model="gpt-5.5", messages=ASK, stream=True))
    )
    assert finish_reasons(chunks) == [finish]
    assert streamed_text(chunks) == "Cut short"


# -- parameters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ],
)
async def test_refused_params_are_400_naming_them(env: Env, extra: dict[str, Any], param: str) -> None:
    """``n`` > 1, ``logprobs``, ``top_logprobs`` and audio output are refused with the param named."""
    env.add_account("alice")
    await env.start()
    with pytest.raises(openai.BadRequestError) as info:
        await in_thread(env.openai().chat.completions.create, model="gpt-5.5", messages=ASK, **extra)
    assert info.value.param == param
    assert info.value.code is not None or info.value.type == "invalid_request_error"
    assert env.fake.responses_requests() == []


async def test_dropped_params_are_listed_and_priority_kept(env: Env) -> None:
    """Sampling and bookkeeping params are dropped and named in ``x-codexgw-dropped-params``;
    ``service_tier: priority``, ``prompt_cache_key`` and ``verbosity`` are forwarded."""
    env.add_account("alice")
    await env.start()
    client = env.openai()
    sent_params = {
        "temperature": 0.3,
        "top_p": 0.9,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.1,
        "max_completion_tokens": 50,
        "seed": 7,
        "logit_bias": {"50256": -100},
        "metadata": {"k": "v"},
        "user": "u-1",
        "store": True,
    }
    raw = await in_thread(
        client.chat.completions.with_raw_response.create,
        model="gpt-5.5",
        messages=ASK,
        service_tier="priority",
        prompt_cache_key="conv-1",
        verbosity="low",
        **sent_params,
    )
    dropped = [p.strip() for p in raw.headers["x-codexgw-dropped-params"].split(",")]
    assert sorted(dropped) == sorted(sent_params)
    body = upstream_body(env)
    assert not (set(sent_params) - {"store"}) & set(body)
    assert body["store"] is False  # the backend's own store: false, not the client's store: true
    assert body["service_tier"] == "priority"
    assert body["prompt_cache_key"] == "conv-1"
    assert body["text"] == {"verbosity": "low"}

    await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ASK, service_tier="flex")
    assert "service_tier" not in upstream_body(env)


# -- usage, ids, model -------------------------------------------------------------------------------

USAGE = Usage(input_tokens=120, output_tokens=45, cached_tokens=100, reasoning_tokens=30)


async def test_usage_details_streamed_and_not(env: Env) -> None:
    """Usage carries ``cached_tokens`` and ``reasoning_tokens``, in the answer and the usage chunk."""
    env.add_account("alice")
    env.fake.script(None, Text("ok", usage=USAGE), Text("ok", usage=USAGE))
    await env.start()
    client = env.openai()
    done = await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ASK)
    chunks = await in_thread(
        lambda: collect(
            client.chat.completions.create(
                model="gpt-5.5", messages=ASK, stream=True, stream_options={"include_usage": True}
            )
        )
    )
    for usage in (done.usage, chunks[-1].usage):
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 45, 165)
        assert usage.prompt_tokens_details.cached_tokens == 100
        assert usage.completion_tokens_details.reasoning_tokens == 30
    assert chunks[-1].choices == []
    assert all(c.usage is None for c in chunks[:-1])


async def test_no_usage_chunk_without_include_usage(env: Env) -> None:
    """Without ``stream_options.include_usage`` no chunk carries usage (as OpenAI streams)."""
    env.add_account("alice")
    env.fake.script(None, Text("ok", usage=USAGE))
    await env.start()
    lines = await sse_lines(env, {"model": "gpt-5.5", "messages": ASK, "stream": True})
    chunks = [c for c in sse_payloads(lines) if c != "[DONE]"]
    assert all("usage" not in c and c["choices"] for c in chunks)


async def test_identity_fields_and_upstream_model(env: Env) -> None:
    """``id``, ``created``, ``system_fingerprint`` are set (one id for all chunks), and ``model`` is
    the upstream's ``OpenAI-Model`` when it names another model than the one asked for."""
    env.add_account("alice")
    env.fake.script(None, Text("ok", model="gpt-5.4"), Text("ok", model="gpt-5.4"))
    await env.start()
    client = env.openai()
    done = await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ASK)
    assert done.id.startswith("chatcmpl-")
    assert isinstance(done.created, int) and done.created > 1_600_000_000
    assert done.system_fingerprint
    assert done.model == "gpt-5.4"
    chunks = await in_thread(
        lambda: collect(client.chat.completions.create(model="gpt-5.5", messages=ASK, stream=True))
    )
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id != done.id
    assert {c.model for c in chunks} == {"gpt-5.4"}
    assert all(c.system_fingerprint and c.created for c in chunks)


# -- heartbeat ---------------------------------------------------------------------------------------


async def test_heartbeat_after_output_started(env: Env) -> None:
    """Upstream silence after the first text delta makes codexgw write ``: keep-alive`` comments;
    the stream then resumes and ends normally."""
    env.add_account("alice")
    hold = Hold(after_headers=True, after_events=5, then=Text("one two", chunks=["one ", "two"]))
    env.fake.script(None, hold)
    await env.start(heartbeat_s=0.05)
    body = {"model": "gpt-5.5", "messages": ASK, "stream": True}
    lines: list[str] = []
    with trio.fail_after(20):
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("POST", f"{env.url}/v1/chat/completions", json=body) as r,
        ):
            assert r.status_code == 200
            async for line in r.aiter_lines():
                lines.append(line)
                if line == ": keep-alive" and not hold.release.is_set():
                    hold.release.set()
    first_ping = lines.index(": keep-alive")
    before = [p for p in sse_payloads(lines[:first_ping]) if p != "[DONE]"]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in before) == "one "
    payloads = sse_payloads(lines)
    assert payloads[-1] == "[DONE]"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads[:-1]) == "one two"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_failure_before_output_that_is_not_failed_over_is_an_http_error(env: Env, stream: bool) -> None:
    """context_length_exceeded before any output: HTTP 400 before any stream starts (the SDK raises
    BadRequestError), and no other account is tried, since another account cannot help."""
    env.add_account("alice")
    env.add_account("bob")
    env.fake.script(None, Failed(code="context_length_exceeded", message="Your input exceeds the context window"))
    await env.start()
    client = env.openai()

    def run() -> None:
        result = client.chat.completions.create(
            model="gpt-5.5", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
        if stream:
            list(result)

    with pytest.raises(openai.BadRequestError) as caught:
        await in_thread(run)
    assert caught.value.status_code == 400
    assert "context window" in str(caught.value)
    assert len(env.fake.responses_requests()) == 1
