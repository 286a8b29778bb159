"""SSE codec: the decoder against the WHATWG spec (any split, any line ending) and the encoders."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from codexgw.translate.sse import (
    SSEDecoder,
    SSEEvent,
    SSEProtocolError,
    encode_comment,
    encode_data_done,
    encode_event,
)


def reference_parse(body: bytes) -> list[SSEEvent]:
    """A literal transcription of the WHATWG "interpreting an event stream" algorithm (the oracle)."""
    text = body.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    lines.pop()  # text after the last line end is an incomplete line: discarded at EOF
    events: list[SSEEvent] = []
    data, event_type, last_id, retry = "", "", None, None
    for line in lines:
        if line == "":
            if data:
                events.append(
                    SSEEvent(event_type or None, data[:-1] if data.endswith("\n") else data, last_id, retry)
                )
            data, event_type, retry = "", "", None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            field, value = line, ""
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\0" not in value:
                last_id = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events


def decode_in_pieces(body: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    prev = 0
    for cut in [*sorted(cuts), len(body)]:  # duplicates give empty chunks, as a transport may
        events += decoder.decode(body[prev:cut])
        prev = cut
    return events


# -- strategies --------------------------------------------------------------------------------------

line_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12
) | st.sampled_from(['{"type":"response.output_text.delta","delta":"hé 😀"}', "[DONE]", "", " lead", "a:b"])
field_name = st.sampled_from(["data", "event", "id", "retry", "foo", "dat", ""])


@st.composite
def sse_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "nocolon", "comment", "blank", "retry"]))
    if kind == "field":
        space = draw(st.sampled_from(["", " ", "  "]))
        return f"{draw(field_name)}:{space}{draw(line_text)}"
    if kind == "nocolon":
        return draw(field_name)
    if kind == "comment":
        return ":" + draw(line_text)
    if kind == "retry":
        return f"retry: {draw(st.integers(0, 10**6))}"
    return ""


@st.composite
def sse_bodies(draw: st.DrawFn) -> bytes:
    """Any SSE body that ends at a blank line (so nothing is pending at EOF)."""
    lines = draw(st.lists(sse_lines(), max_size=25))
    endings = draw(
        st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines) + 2, max_size=len(lines) + 2)
    )
    text = "".join(line + end for line, end in zip(lines, endings, strict=False))
    text += endings[-2] + endings[-1] if lines else ""
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode()


@given(body=sse_bodies(), data=st.data())
@settings(max_examples=400)
@example(body=b"data: a\r\n\r\n", data=None)
def test_decoder_matches_spec_for_any_split(body: bytes, data: st.DataObject | None) -> None:
    """Any split of any SSE body gives exactly the events the spec algorithm gives, and flush is clean."""
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=8)) if data else [len(body) - 1]
    expected = reference_parse(body)
    assert decode_in_pieces(body, cuts) == expected
    decoder = SSEDecoder()
    got = [ev for i in range(len(body)) for ev in decoder.decode(body[i : i + 1])]
    assert got == expected
    assert decoder.flush() == []


@given(body=sse_bodies(), data=st.data())
@settings(max_examples=200)
def test_decode_raw_blocks_reparse_to_the_same_events(body: bytes, data: st.DataObject) -> None:
    """The raw blocks, concatenated, are a valid SSE body with the same events; each pairs with its event."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    decoder = SSEDecoder()
    pairs = []
    prev = 0
    for cut in [*cuts, len(body)]:
        pairs += decoder.decode_raw(body[prev:cut])
        prev = cut
    assert [ev for ev, _ in pairs] == reference_parse(body)
    for event, raw in pairs:
        assert raw.endswith(b"\n\n")
        assert b"\r" not in raw
        reparsed = SSEDecoder().decode(raw)
        assert [(e.event, e.data, e.retry) for e in reparsed] == [(event.event, event.data, event.retry)]


def test_decode_raw_is_byte_identical_for_lf_streams() -> None:
    body = (
        b'event: response.created\ndata: {"type":"response.created"}\n\n'
        b": keepalive\n\n"
        b'event: response.output_text.delta\ndata: {"delta":"hi"}\n\n'
    )
    pairs = SSEDecoder().decode_raw(body)
    assert [raw for _, raw in pairs] == [
        b'event: response.created\ndata: {"type":"response.created"}\n\n',
        b'event: response.output_text.delta\ndata: {"delta":"hi"}\n\n',
    ]
    assert [ev.event for ev, _ in pairs] == ["response.created", "response.output_text.delta"]


def test_multiline_data_comments_and_fields_without_space() -> None:
    body = b":hello\nevent:x\ndata:one\ndata:  two\ndata\nid:7\nretry:1500\n\ndata: after\n\n"
    assert SSEDecoder().decode(body) == [
        SSEEvent("x", "one\n two\n", "7", 1500),
        SSEEvent(None, "after", "7", None),
    ]


def test_events_without_data_are_dropped_and_invalid_retry_and_nul_id_ignored() -> None:
    body = b"event: ping\n\nid: 1\n\nretry: 12a\ndata: x\n\nid: a\x00b\ndata: y\n\n"
    assert SSEDecoder().decode(body) == [SSEEvent(None, "x", "1", None), SSEEvent(None, "y", "1", None)]


def test_bom_is_stripped_once_even_byte_by_byte() -> None:
    body = "\ufeffdata: a\n\n".encode()
    decoder = SSEDecoder()
    assert [e for b in body for e in decoder.decode(bytes([b]))] == [SSEEvent(None, "a")]
    # a second BOM is part of the field name, so that line is an unknown field
    assert SSEDecoder().decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [SSEEvent(None, "b")]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: a\r") == []
    assert decoder.decode(b"") == []  # an empty read must not forget the pending \r
    assert decoder.decode(b"\n") == []
    assert decoder.decode(b"\r") == [SSEEvent(None, "a")]
    assert decoder.decode(b"\ndata: b\r\r") == [SSEEvent(None, "b")]


def test_utf8_split_inside_a_character() -> None:
    body = "data: héllo 😀\n\n".encode()
    decoder = SSEDecoder()
    assert [e for i in range(len(body)) for e in decoder.decode(body[i : i + 1])] == [
        SSEEvent(None, "héllo 😀")
    ]


@pytest.mark.parametrize("tail", [b"data: partial", b"data: x\n", b"event: a\ndata: x\n", b"data"])
def test_flush_raises_on_a_half_received_event(tail: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: ok\n\n" + tail) == [SSEEvent(None, "ok")]
    with pytest.raises(SSEProtocolError):
        decoder.flush()


@pytest.mark.parametrize("tail", [b"", b"\n", b": comment", b"event: x\n", b"id: 3\n", b"\r"])
def test_flush_is_clean_without_pending_data(tail: bytes) -> None:
    decoder = SSEDecoder()
    decoder.decode(b"data: ok\n\n" + tail)
    assert decoder.flush() == []


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(SSEProtocolError, ValueError)


@given(data=st.text(max_size=40), event=st.none() | st.from_regex(r"[a-z._]{1,20}", fullmatch=True))
def test_encode_event_round_trips(data: str, event: str | None) -> None:
    """What the encoder writes decodes to the same event (line breaks in data become \\n)."""
    decoded = SSEDecoder().decode(encode_event(data, event))
    normalized = data.replace("\r\n", "\n").replace("\r", "\n")
    assert decoded == [SSEEvent(event, normalized)]


def test_encoders_exact_bytes() -> None:
    assert encode_event('{"a":1}', "response.created") == b'event: response.created\ndata: {"a":1}\n\n'
    assert encode_event("a\nb") == b"data: a\ndata: b\n\n"
    assert encode_comment() == b":\n\n"
    assert encode_comment("keepalive") == b": keepalive\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"
    assert encode_data_done() == b"data: [DONE]\n\n"
    assert SSEDecoder().decode(encode_comment("x") + encode_data_done()) == [SSEEvent(None, "[DONE]")]
    with pytest.raises(ValueError):
        encode_event("x", "bad\nname")


LINE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=20
)


@given(name=LINE_TEXT, data=LINE_TEXT, last_id=st.one_of(st.none(), st.just("7")))
def test_one_line_event_fast_path_parses_as_the_general_rules(
    name: str, data: str, last_id: str | None
) -> None:
    """``event: X\\ndata: Y\\n\\n`` (the backend's framing) parses as the same block behind a comment line,
    which takes the general line-by-line rules."""
    block = f"event: {name}\ndata: {data}\n\n".encode()
    fast, general = SSEDecoder(), SSEDecoder()
    if last_id is not None:
        fast.decode(f"id: {last_id}\ndata: x\n\n".encode())
        general.decode(f"id: {last_id}\ndata: x\n\n".encode())
    assert fast.decode(block) == general.decode(b":\n" + block)
