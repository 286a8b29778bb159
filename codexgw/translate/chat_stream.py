"""The chat stream as SSE bytes, and the relay's handler of a Chat Completions stream (sans-IO).

:class:`ChatStreamTranslator` is the :class:`~codexgw.translate.chat_chunks.ChatChunkTranslator`
(upstream events → ``chat.completion.chunk`` dicts, see there) with the chunks encoded as OpenAI
streams them, ``data: <compact JSON>\\n\\n`` (codex-protocol.md §12.2), and the per-stream handler
interface :func:`codexgw.upstream.relay.relay` drives: :meth:`~ChatStreamTranslator.feed_batch` per
batch of upstream events, :meth:`~ChatStreamTranslator.end` for the last write (the final chunks and
``data: [DONE]``, or ``data: {"error": …}`` and no ``[DONE]`` after an upstream failure: the openai
SDK raises ``APIError`` on it), :meth:`~ChatStreamTranslator.fail`,
:meth:`~ChatStreamTranslator.client_closed`.

Speed: this is the relay's hot path (``bench/``). A plain text delta, by far the most common event,
is spliced from the event's raw JSON into a byte template of its chunk (no JSON decoding, no dict);
events the translator does not act on are skipped without being parsed.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring_ascii
from typing import Any

from codexgw.errors import CodexgwError
from codexgw.translate.chat_chunks import (
    REASONING_MODES,
    SYSTEM_FINGERPRINT,
    ChatChunkTranslator,
    ReasoningMode,
    chat_usage,
)
from codexgw.translate.events import Batch, event_json
from codexgw.translate.sse import encode_comment, encode_data_done
from codexgw.translate.stream_state import StreamEvent, StreamState

__all__ = [
    "DONE",
    "REASONING_MODES",
    "SYSTEM_FINGERPRINT",
    "ChatStreamTranslator",
    "ReasoningMode",
    "chat_usage",
    "responses_usage",
    "sse_data",
]

DONE = encode_data_done()
"""The terminal ``data: [DONE]`` of a chat stream (codex-protocol.md §12.2)."""
TEXT_DELTA = "response.output_text.delta"

_STREAMING = StreamState.STREAMING
_CONTENT_SLOT = "@@codexgw-content@@"
_DELTA_KEY = re.compile(r'"delta"\s*:\s*"')


def sse_data(payload: Any) -> bytes:
    """``data: <compact JSON>\\n\\n``: one SSE event as OpenAI streams it."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def responses_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat ``usage`` → the Responses ``{"input_tokens", "output_tokens", "input_tokens_details":
    {"cached_tokens"}, "output_tokens_details": {"reasoning_tokens"}}`` the access log, the metrics
    and the key's usage counters count (``None`` for none; details only when the chat usage has them)."""
    if not usage:
        return None
    out: dict[str, Any] = {
        "input_tokens": usage.get("prompt_tokens"),
        "output_tokens": usage.get("completion_tokens"),
    }
    prompt, completion = usage.get("prompt_tokens_details"), usage.get("completion_tokens_details")
    if isinstance(prompt, dict) and "cached_tokens" in prompt:
        out["input_tokens_details"] = {"cached_tokens": prompt["cached_tokens"]}
    if isinstance(completion, dict) and "reasoning_tokens" in completion:
        out["output_tokens_details"] = {"reasoning_tokens": completion["reasoning_tokens"]}
    return out


class ChatStreamTranslator(ChatChunkTranslator):
    """:class:`~codexgw.translate.chat_chunks.ChatChunkTranslator` with SSE bytes out; the chat
    stream's handler for :func:`codexgw.upstream.relay.relay` (same arguments).

    Attributes:
        drains: ``False``: the relay stops reading the upstream once :attr:`state` is finished (a
            stop match aborts the generation; the terminal event is the last one anyway).
    """

    drains = False
    heartbeat = encode_comment("keep-alive")
    """What the relay writes after a silence: an SSE comment (design §3)."""
    _template: tuple[str, bytes, bytes] | None = None  # (model, prefix, suffix), made on first use

    # -- SSE bytes ---------------------------------------------------------------------------------

    def feed_sse(self, event: dict[str, Any]) -> bytes:
        """:meth:`feed`, encoded: the chunks as SSE ``data:`` events (``b""`` for none).

        The common chunk (a plain text delta) is spliced into a byte template of its chunk instead
        of being built as a dict and JSON-encoded; the bytes are the same as :func:`sse_data` of
        the chunk :meth:`feed` would return.

        Raises:
            RuntimeError: the translator is already done (completed or failed).
        """
        if event.get("type") == "response.output_text.delta" and self._plain_text():
            delta = event.get("delta")
            if not delta or not isinstance(delta, str):
                return b""
            return self._content_bytes(delta)
        chunks = self.feed(event)
        return b"".join(sse_data(chunk) for chunk in chunks) if chunks else b""

    def feed_text_delta_data(self, data: str) -> bytes | None:
        """The fastest path: a ``response.output_text.delta`` event given as its raw JSON ``data``.

        Returns what :meth:`feed_sse` would return for ``json.loads(data)``, without decoding the
        JSON, when the text is plain streaming (no stop sequences, no open ``<think>``) and the
        ``delta`` string has no escapes (then its characters are the JSON text between the quotes).
        Otherwise returns ``None``: the caller parses the event and calls :meth:`feed_sse`.

        ``data`` must be the ``data`` of an event whose type is ``response.output_text.delta``, a
        JSON object as the backend sends it (codex-protocol.md §7). The first ``"delta":"`` in it
        is the top-level field: the other fields are strings (which cannot contain an unescaped
        quote) and ``logprobs``, whose entries have no ``delta`` key.
        """
        if self.state is not _STREAMING or self._stop is not None or self._think_open:
            return None  # not plain text streaming (inlined _plain_text: the hot path)
        at = data.find('"delta"')
        if at < 0:
            return None
        if data.startswith(':"', at + 7):  # compact JSON, as the backend writes it
            start = at + 9
        else:
            key = _DELTA_KEY.match(data, at)
            if key is None:
                return None
            start = key.end()
        end = data.find('"', start)
        if end < 0 or data.find("\\", start, end) >= 0:
            return None
        if end == start:
            return b""
        delta = data[start:end]  # then as _content_bytes(delta), inlined: one call less per delta
        self._msg_chars += len(delta)
        template = self._template
        if template is None or template[0] != self.model:
            template = self._template = self._content_template()
        return template[1] + encode_basestring_ascii(delta).encode() + template[2]

    def _plain_text(self) -> bool:
        return self.state is _STREAMING and self._stop is None and not self._think_open

    def _content_bytes(self, delta: str) -> bytes:
        """A content delta's chunk, spliced into the byte template of the current model."""
        self._msg_chars += len(delta)
        template = self._template
        if template is None or template[0] != self.model:
            template = self._template = self._content_template()
        return template[1] + encode_basestring_ascii(delta).encode() + template[2]

    def _content_template(self) -> tuple[str, bytes, bytes]:
        """``(model, prefix, suffix)``: a content-delta chunk's SSE bytes around its JSON string."""
        encoded = sse_data(self._chunk({"content": _CONTENT_SLOT}))
        prefix, _, suffix = encoded.rpartition(encode_basestring_ascii(_CONTENT_SLOT).encode())
        return self.model, prefix, suffix

    # -- the relay's stream handler ----------------------------------------------------------------

    def feed_batch(self, batch: Batch) -> bytes:
        """The SSE bytes for one batch of upstream events (``b""`` for none).

        Stops at the event that finishes the answer (:attr:`state` ``.finished``: terminal event or
        stop match); the rest of the batch is not looked at. Events :meth:`feed` does not act on
        are skipped unparsed (e.g. ``output_text.done``, which repeats the whole text).
        """
        out: list[bytes] = []
        handled = self.handled_events
        for event, _raw in batch:
            kind = event.event
            if kind is not None and kind not in handled:
                continue
            if kind == TEXT_DELTA and (chunk := self.feed_text_delta_data(event.data)) is not None:
                out.append(chunk)  # plain text streaming: no stop sequence, so never finished here
                continue
            data = event_json(event)
            if data is not None and (encoded := self.feed_sse(data)):
                out.append(encoded)
            if self.state.finished:
                break
        return b"".join(out)

    def take_kept(self) -> None:
        """Nothing to store: a chat completion is never kept for a later request."""
        return None

    def end(self, now: float) -> bytes:
        """The last bytes of the stream, once the answer finished or the upstream ended.

        Held-back text and ``data: {"error": …}`` (no ``[DONE]``) when the upstream failed or ended
        without a terminal event; else any last chunks and ``data: [DONE]``. ``now`` (epoch s) is
        unused: chat chunks carry the request's ``created``.
        """
        out = b"".join(sse_data(chunk) for chunk in self.finish())
        if self.error is not None:
            return out + sse_data({"error": self.error})
        return out + DONE

    def commit(self) -> None:
        """The keep-alive began before any output (:mod:`~codexgw.translate.stream_state`
        ``COMMITTED``): a failure now ends the stream in-band, with ``data: {"error": …}``."""
        self.state = self.state.after(StreamEvent.COMMIT)

    def fail(self, error: CodexgwError, now: float) -> bytes:
        """The stream broke after output began (``error``: e.g. the upstream connection), or every
        account failed after the keep-alive began: the last bytes, ``data: {"error": …}`` (design
        §3; a usage limit keeps its ``resets_at`` and ``plan_type``) and no ``[DONE]``. ``now`` is
        unused."""
        self.error = error.to_body()["error"]  # type: ignore[assignment]
        self.state = self.state.after(StreamEvent.FAIL)
        return sse_data({"error": self.error})

    def client_closed(self) -> None:
        """The relay is torn down (the client left, or the stream is over): see the state table."""
        self.state = self.state.after(StreamEvent.CLIENT_CLOSE)

    def reported_usage(self) -> dict[str, Any] | None:
        """The upstream's usage as Responses ``{"input_tokens", "output_tokens"}``, if reported."""
        return responses_usage(self.usage)
