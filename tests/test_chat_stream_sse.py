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
