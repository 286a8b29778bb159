"""``ChatStreamTranslator.feed_sse``: the byte-template fast path equals encoding :meth:`feed`'s chunks."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from codexgw.translate.chat_stream import ChatStreamTranslator, sse_data
from tests.golden import events as ev

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def _pair(**opts: Any) -> tuple[ChatStreamTranslator, ChatStreamTranslator]:
    def one() -> ChatStreamTranslator:
        return ChatStreamTranslator(completion_id="chatcmpl-1", created=1700000000, model='m "é"', **opts)

    return one(), one()


def _state(translator: ChatStreamTranslator) -> dict[str, Any]:
    skip = {"_template", "_handlers", "_tools", "_tool_keys"}
    return {k: v for k, v in vars(translator).items() if k not in skip}


EVENT = st.one_of(
    TEXT.map(ev.text_delta),
    TEXT.map(ev.summary_delta),
    st.sampled_from([ev.message_added(0), ev.reasoning_added(1), ev.created("gpt-5.5-other")]),
    st.tuples(st.integers(0, 3), TEXT).map(lambda t: ev.args_delta(2, t[1], "fc_1")),
    st.just(ev.call_added(2, "call_1", "f", "fc_1")),
    st.builds(lambda: {"type": "response.output_text.delta", "delta": 5}),
)


@given(
    events=st.lists(EVENT, max_size=25),
    end=st.sampled_from([ev.completed(), ev.incomplete("max_output_tokens"), ev.failed(), None]),
    include_usage=st.booleans(),
    mode=st.sampled_from(["content", "think", "hidden"]),
    stop=st.sampled_from([(), ("x",)]),
)
@settings(max_examples=300)
def test_feed_sse_matches_feed(
    events: list[dict[str, Any]],
    end: dict[str, Any] | None,
    include_usage: bool,
    mode: str,
    stop: tuple[str, ...],
) -> None:
    plain, fast = _pair(include_usage=include_usage, reasoning_mode=mode, stop=stop)
    for event in [*events, *([end] if end else [])]:
        if plain.done or plain.stop_hit:
            break
        expected = b"".join(sse_data(chunk) for chunk in plain.feed(event))
        assert fast.feed_sse(event) == expected
        assert _state(fast) == _state(plain)


def test_template_bytes_are_json_with_the_same_fields() -> None:
    translator = ChatStreamTranslator(completion_id="c", created=1, model="m", include_usage=True)
    translator.feed(ev.text_delta("a"))
    out = translator.feed_sse(ev.text_delta('é"\n\u2028'))
    assert out.startswith(b"data: ") and out.endswith(b"\n\n")
    assert json.loads(out[6:]) == translator._chunk({"content": 'é"\n\u2028'})
    translator.feed(ev.created("other"))  # the model changes: the template follows
    assert json.loads(translator.feed_sse(ev.text_delta("b"))[6:])["model"] == "other"


@given(
    events=st.lists(EVENT, max_size=25),
    end=st.sampled_from([ev.completed(), ev.failed(), None]),
    mode=st.sampled_from(["content", "think"]),
    stop=st.sampled_from([(), ("x",)]),
    compact=st.booleans(),
    ascii_only=st.booleans(),
)
@settings(max_examples=300)
def test_raw_text_delta_path_matches_feed(
    events: list[dict[str, Any]],
    end: dict[str, Any] | None,
    mode: str,
    stop: tuple[str, ...],
    compact: bool,
    ascii_only: bool,
) -> None:
    """Raw ``data`` as the backend might encode it (compact or not, escaped or not): same bytes, same state."""
    plain, fast = _pair(include_usage=True, reasoning_mode=mode, stop=stop)
    for event in [*events, *([end] if end else [])]:
        if plain.done or plain.stop_hit:
            break
        expected = b"".join(sse_data(chunk) for chunk in plain.feed(event))
        got = None
        if event.get("type") == "response.output_text.delta":
            data = json.dumps(event, ensure_ascii=ascii_only, separators=(",", ":") if compact else None)
            got = fast.feed_text_delta_data(data)
        if got is None:
            got = fast.feed_sse(event)
        assert got == expected
        assert _state(fast) == _state(plain)


def test_raw_text_delta_path_declines_what_it_cannot_splice() -> None:
    translator = ChatStreamTranslator(completion_id="c", created=1, model="m")
    assert translator.feed_text_delta_data(json.dumps(ev.text_delta("a"))) is None, (
        "nothing sent yet: the role chunk goes first"
    )
    translator.feed(ev.text_delta("a"))
    assert translator.feed_text_delta_data(json.dumps(ev.text_delta('say "hi"'))) is None, "escapes: parse it"
    assert translator.feed_text_delta_data('{"type":"response.output_text.delta","delta":5}') is None
    out = translator.feed_text_delta_data('{"type":"response.output_text.delta","item_id":"m","delta":"b c"}')
    assert out is not None and json.loads(out[6:])["choices"][0]["delta"] == {"content": "b c"}
    assert translator.feed_text_delta_data('{"type":"response.output_text.delta","delta":""}') == b""


# -- the relay's stream handler ------------------------------------------------------------------------


def _batch(*events: dict[str, Any]) -> list:
    from codexgw.translate.sse import SSEDecoder, encode_event

    return SSEDecoder().decode_raw(b"".join(encode_event(json.dumps(e), e["type"]) for e in events))


def test_feed_batch_is_the_events_fed_one_by_one_and_stops_where_the_answer_ends() -> None:
    from codexgw.translate.stream_state import StreamState

    plain, handler = _pair(stop=("END",), include_usage=True)
    events = [ev.created(), ev.message_added(0), ev.text_delta("a"), ev.text_delta("b END c"), ev.text_delta("z")]
    expected = b"".join(plain.feed_sse(e) for e in events[:4])
    assert handler.feed_batch(_batch(*events)) == expected, "the delta after the stop match is not read"
    assert handler.state is StreamState.STOPPING and handler.state.finished
    assert handler.end(0.0) == b"data: [DONE]\n\n"
    assert handler.state is StreamState.STOPPED


def test_feed_batch_skips_events_the_translator_does_not_handle() -> None:
    handler = ChatStreamTranslator(completion_id="c", created=1, model="m")
    assert handler.feed_batch(_batch({"type": "response.output_text.done", "text": "x"}, ev.created())) == b""
    assert not handler.state.finished


def test_end_after_completed_adds_done_and_after_a_failure_the_error() -> None:
    handler = ChatStreamTranslator(completion_id="c", created=1, model="m", include_usage=True)
    handler.feed_batch(_batch(ev.text_delta("hi"), ev.completed()))
    assert handler.end(0.0) == b"data: [DONE]\n\n"
    assert handler.reported_usage() == {  # with the details the key's usage counters take (issue 12)
        "input_tokens": 10,
        "output_tokens": 7,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens_details": {"reasoning_tokens": 3},
    }
    failing = ChatStreamTranslator(completion_id="c", created=1, model="m")
    failing.feed_batch(_batch(ev.text_delta("hi"), ev.failed("server_error", "boom")))
    tail = failing.end(0.0)
    assert b"[DONE]" not in tail and json.loads(tail[6:])["error"]["message"] == "boom"
    assert failing.state.outcome.value == "failed"


def test_end_of_a_cut_stream_sends_held_text_then_the_truncation_error() -> None:
    handler = ChatStreamTranslator(completion_id="c", created=1, model="m", stop=("XYZ",))
    handler.feed_batch(_batch(ev.text_delta("abcXY")))
    held, error = handler.end(0.0).split(b"\n\n")[:2]
    assert json.loads(held[6:])["choices"][0]["delta"] == {"content": "XY"}
    assert json.loads(error[6:])["error"]["type"] == "upstream_error"


def test_fail_and_client_closed() -> None:
    from codexgw.errors import UpstreamConnectionError

    handler = ChatStreamTranslator(completion_id="c", created=1, model="m")
    handler.feed_batch(_batch(ev.text_delta("hi")))
    tail = handler.fail(UpstreamConnectionError("reset"), 0.0)
    assert json.loads(tail[6:]) == UpstreamConnectionError("reset").to_body()
    handler.client_closed()
    assert handler.state.outcome.value == "failed", "the client leaving afterwards changes nothing"
    leaving = ChatStreamTranslator(completion_id="c", created=1, model="m")
    leaving.feed_batch(_batch(ev.text_delta("hi")))
    leaving.client_closed()
    assert leaving.state.outcome.value == "client_closed" and leaving.take_kept() is None
