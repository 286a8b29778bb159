"""Codex backend Responses events → ``chat.completion.chunk`` objects, one event at a time (sans-IO).

Theory of operation
-------------------
:class:`ChatStreamTranslator` is fed each upstream event (the parsed JSON of one SSE ``data``,
codex-protocol.md §7) and returns the chunks to send, shaped exactly as OpenAI streams them::

    {"id", "object": "chat.completion.chunk", "created", "model", "system_fingerprint",
     "choices": [{"index": 0, "delta": {…}, "logprobs": None, "finish_reason": None | str}],
     ["usage": None]}                       # "usage" key only when include_usage (OpenAI does the same)

States: *waiting* (nothing sent yet) → *streaming* (role chunk sent) → *done*; a stop-sequence match
moves to *stopped* (the final chunk is sent, later output is ignored, ``stop_hit`` tells the caller it
may close the upstream; ``response.completed`` still yields the usage chunk). ``response.failed`` or
``error`` ends in *done* with :attr:`error` set. Feeding a done translator raises ``RuntimeError``
(a core that failed stays failed).

* The role chunk ``{"role": "assistant", "content": ""}`` is sent lazily, with the first output, so an
  upstream that fails before any output produces no chunk (the caller can still answer with an HTTP
  error or fail over). When that first output is a tool call, the role rides on the call's chunk with
  ``"content": None``, as OpenAI streams it.
* ``response.output_text.delta`` → ``delta.content``. ``response.output_item.done`` for a message or a
  function call sends any text/arguments that no delta carried (streams with only ``done`` items).
* function calls → ``delta.tool_calls`` ``[{index, id, type, function: {name, arguments: ""}}]`` at
  ``output_item.added``, then ``[{index, function: {arguments: delta}}]`` per arguments delta.
* reasoning summary deltas → ``delta.reasoning_content`` (mode ``content``), or
  ``<think>\\n…\\n</think>\\n\\n`` inside ``content`` (mode ``think``), or nothing
  (``hidden``); summary parts are joined by a blank line.
* stop sequences cut the text before the first match, even across deltas: the longest suffix that
  could start a match is held back until the next delta proves or disproves it.
* ``finish_reason``: ``length``/``content_filter`` for ``response.incomplete`` with that reason, else
  ``tool_calls`` when a call was made, else ``stop``.
* ``legacy_functions`` (the request used the deprecated ``functions``): the call is streamed as
  ``delta.function_call`` ``{name, arguments}`` then ``{arguments}`` pieces, ``finish_reason:
  "function_call"``, as OpenAI answers such requests; the format holds one call, so later ones are
  dropped (the request asks the backend for no parallel calls).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any, Literal, get_args

from codexgw.translate.failures import TRUNCATED, OpenAIError, response_error

__all__ = [
    "REASONING_MODES",
    "SYSTEM_FINGERPRINT",
    "ChatStreamTranslator",
    "ReasoningMode",
    "chat_usage",
    "sse_data",
]

SYSTEM_FINGERPRINT = "fp_codexgw"
ReasoningMode = Literal["content", "think", "hidden"]
REASONING_MODES: tuple[str, ...] = get_args(ReasoningMode)
"""How Chat Completions show reasoning summaries: ``reasoning_content``, ``<think>`` in ``content``, or not at all."""
THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"


_CONTENT_SLOT = "@@codexgw-content@@"
_DELTA_KEY = re.compile(r'"delta"\s*:\s*"')


def sse_data(payload: Any) -> bytes:
    """``data: <compact JSON>\\n\\n``: one SSE event as OpenAI streams it."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def chat_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Responses ``usage`` (codex-protocol.md §7) → Chat Completions ``usage``; ``None`` stays ``None``.

    ``{"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens",
    "prompt_tokens_details": {"cached_tokens"}, "completion_tokens_details": {"reasoning_tokens"}}``.
    """
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("input_tokens") or 0
    completion = usage.get("output_tokens") or 0
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


class _ToolCall:
    __slots__ = ("index", "sent")

    def __init__(self, index: int, sent: int) -> None:
        self.index = index
        self.sent = sent  # characters of arguments already sent


class ChatStreamTranslator:
    """Translate one upstream response into chat completion chunks (see the module docstring).

    Attributes:
        done: a terminal event was handled (completed, incomplete, failed, error), or :meth:`finish`
            was called.
        error: the OpenAI error object ``{"message", "type", "code", "param"}`` when the upstream failed
            (the caller ends the stream with ``data: {"error": …}`` and no ``[DONE]``), else ``None``.
        stop_hit: a stop sequence matched; the final chunk is already out, the upstream may be closed.
        model: the model named in chunks, updated from the upstream's ``response.model``.
        usage: the chat ``usage`` once the upstream reported it.
        finish_reason: the finish reason sent, once sent.
    """

    def __init__(
        self,
        *,
        completion_id: str,
        created: int,
        model: str,
        include_usage: bool = False,
        reasoning_mode: ReasoningMode = "content",
        stop: Sequence[str] = (),
        legacy_functions: bool = False,
    ) -> None:
        self.completion_id = completion_id
        self.legacy_functions = legacy_functions
        self.created = created
        self.model = model
        self.include_usage = include_usage
        self.reasoning_mode = reasoning_mode
        self.done = False
        self.error: OpenAIError | None = None
        self.stop_hit = False
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._stops = tuple(s for s in stop if s)
        self._held = ""  # text held back: it may be the start of a stop sequence
        self._started = False
        self._think_open = False
        self._msg_chars = 0  # text characters streamed for the current message item
        self._reasoning_chars = 0  # reasoning characters streamed for the current reasoning item
        self._reasoning_key: tuple[Any, Any] | None = None
        self._tools: list[_ToolCall] = []
        self._tool_keys: dict[tuple[str, Any], _ToolCall] = {}
        self._template: tuple[str, bytes, bytes] | None = None  # (model, prefix, suffix)
        self._handlers: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
            "response.output_text.delta": self._on_text_delta,
            "response.refusal.delta": self._on_text_delta,
            "response.function_call_arguments.delta": self._on_arguments_delta,
            "response.reasoning_summary_text.delta": self._on_reasoning_delta,
            "response.reasoning_text.delta": self._on_reasoning_delta,
            "response.output_item.added": self._on_item_added,
            "response.output_item.done": self._on_item_done,
            "response.created": self._on_response_update,
            "response.in_progress": self._on_response_update,
            "response.completed": self._on_completed,
            "response.incomplete": self._on_incomplete,
            "response.failed": self._on_failed,
            "error": self._on_failed,
        }
        self.handled_events = frozenset(self._handlers)
        """The event types :meth:`feed` acts on; it returns ``[]`` for any other (callers may skip
        parsing those)."""

    # -- public ------------------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Handle one upstream event; return the chunks to send (often one, possibly none).

        Raises:
            RuntimeError: the translator is already done (completed or failed).
        """
        if self.done:
            raise RuntimeError(f"ChatStreamTranslator is done; cannot feed {event.get('type')!r}")
        handler = self._handlers.get(event.get("type"))  # type: ignore[arg-type]
        return handler(event) if handler is not None else []

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
        if not self._plain_text():
            return None
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
        return self._content_bytes(data[start:end]) if end > start else b""

    def _plain_text(self) -> bool:
        return self._started and not self._stops and not self._think_open and not self.done

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

    def finish(self) -> list[dict[str, Any]]:
        """Call at the end of the upstream stream; returns any last chunks.

        After ``response.completed`` (or a stop match) the final chunks have already been returned by
        :meth:`feed`, so this returns ``[]``. If the stream ended without a terminal event, held-back
        text is sent and :attr:`error` is set to a "stream closed before response.completed" error.
        """
        if self.done:
            return []
        self.done = True
        if self.stop_hit:
            return []
        out = self._flush_held()
        self.error = dict(TRUNCATED)  # type: ignore[assignment]
        return out

    # -- chunk builders ----------------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any] | None, finish_reason: str | None = None) -> dict[str, Any]:
        """A chunk with one choice; ``delta=None`` gives the usage chunk (``choices: []``)."""
        chunk = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = self.usage if delta is None else None
        return chunk

    def _open(self) -> list[dict[str, Any]]:
        """The role chunk, the first time output is sent; then ``[]``."""
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _close_think(self) -> list[dict[str, Any]]:
        if not self._think_open:
            return []
        self._think_open = False
        return [self._chunk({"content": THINK_CLOSE})]

    def _flush_held(self) -> list[dict[str, Any]]:
        if not self._held:
            return []
        text, self._held = self._held, ""
        return [*self._open(), self._chunk({"content": text})]

    # -- text --------------------------------------------------------------------------------------

    def _on_text_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        self._msg_chars += len(delta)
        if self._started and not self._stops and not self._think_open:
            return [self._chunk({"content": delta})]
        return self._text(delta)

    def _text(self, text: str) -> list[dict[str, Any]]:
        if self.stop_hit:
            return []
        out = self._open()
        prefix = ""
        if self._think_open:
            self._think_open = False
            prefix = THINK_CLOSE
        if self._stops:
            text = self._cut_at_stop(text)
        if prefix or text:
            out.append(self._chunk({"content": prefix + text}))
        if self.stop_hit:
            self.finish_reason = "stop"
            out.append(self._chunk({}, "stop"))
        return out

    def _cut_at_stop(self, text: str) -> str:
        """The part of ``self._held + text`` to send now; sets ``stop_hit`` on a match."""
        s = self._held + text
        first = -1
        for stop in self._stops:
            i = s.find(stop)
            if i >= 0 and (first < 0 or i < first):
                first = i
        if first >= 0:
            self._held = ""
            self.stop_hit = True
            return s[:first]
        hold = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(s)), hold, -1):
                if s.endswith(stop[:k]):
                    hold = k
                    break
        if hold:
            self._held = s[-hold:]
            return s[:-hold]
        self._held = ""
        return s

    # -- reasoning ---------------------------------------------------------------------------------

    def _on_reasoning_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        self._reasoning_chars += len(delta)
        key = (event.get("item_id"), event.get("summary_index", event.get("content_index")))
        return self._reasoning(delta, key)

    def _reasoning(self, text: str, key: tuple[Any, Any]) -> list[dict[str, Any]]:
        if self.reasoning_mode == "hidden" or self.stop_hit:
            return []
        separator = "\n\n" if self._reasoning_key is not None and key != self._reasoning_key else ""
        self._reasoning_key = key
        if self.reasoning_mode == "content":
            return [*self._open(), self._chunk({"reasoning_content": separator + text})]
        out = [*self._open(), *self._flush_held()]
        if not self._think_open:
            self._think_open = True
            separator = THINK_OPEN
        out.append(self._chunk({"content": separator + text}))
        return out

    # -- items and tool calls ----------------------------------------------------------------------

    def _find_tool(self, item_id: Any, output_index: Any, call_id: Any) -> _ToolCall | None:
        keys = self._tool_keys
        return keys.get(("id", item_id)) or keys.get(("oi", output_index)) or keys.get(("call", call_id))

    def _start_tool(self, item: dict[str, Any], output_index: Any) -> list[dict[str, Any]]:
        if self.stop_hit or (self.legacy_functions and self._tools):
            return []
        # A call as the very first output carries the role itself, with ``content: null`` (as OpenAI
        # streams it), so the accumulated message has ``content: None`` like the non-streamed one.
        opening = {} if self._started else {"role": "assistant", "content": None}
        self._started = True
        out = [*self._flush_held(), *self._close_think()]
        arguments = item.get("arguments") if isinstance(item.get("arguments"), str) else ""
        tool = _ToolCall(len(self._tools), len(arguments))
        self._tools.append(tool)
        for kind, key in (("id", item.get("id")), ("oi", output_index), ("call", item.get("call_id"))):
            if key is not None:
                self._tool_keys[(kind, key)] = tool
        function = {"name": item.get("name") or "", "arguments": arguments}
        if self.legacy_functions:
            out.append(self._chunk({**opening, "function_call": function}))
            return out
        call = {"index": tool.index, "id": item.get("call_id") or item.get("id") or "", "type": "function"}
        out.append(self._chunk({**opening, "tool_calls": [{**call, "function": function}]}))
        return out

    def _arguments(self, tool: _ToolCall, delta: str) -> list[dict[str, Any]]:
        tool.sent += len(delta)
        if self.legacy_functions:
            return [self._chunk({"function_call": {"arguments": delta}})]
        return [self._chunk({"tool_calls": [{"index": tool.index, "function": {"arguments": delta}}]})]

    def _on_arguments_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str) or self.stop_hit:
            return []
        tool = self._find_tool(event.get("item_id"), event.get("output_index"), event.get("call_id"))
        return self._arguments(tool, delta) if tool is not None else []

    def _on_item_added(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item = event.get("item")
        if not isinstance(item, dict):
            return []
        kind = item.get("type")
        if kind == "function_call":
            return self._start_tool(item, event.get("output_index"))
        if kind == "message":
            self._msg_chars = 0
        elif kind == "reasoning":
            self._reasoning_chars = 0
        return []

    def _on_item_done(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item = event.get("item")
        if not isinstance(item, dict) or self.stop_hit:
            return []
        kind = item.get("type")
        if kind == "function_call":
            tool = self._find_tool(item.get("id"), event.get("output_index"), item.get("call_id"))
            if tool is None:
                return self._start_tool(item, event.get("output_index"))
            arguments = item.get("arguments")
            if isinstance(arguments, str) and len(arguments) > tool.sent:
                return self._arguments(tool, arguments[tool.sent :])
            return []
        if kind == "message":
            seen, self._msg_chars = self._msg_chars, 0
            text = "".join(
                part.get("text") or part.get("refusal") or ""
                for part in item.get("content") or ()
                if isinstance(part, dict) and part.get("type") in ("output_text", "refusal")
            )
            return self._text(text[seen:]) if len(text) > seen else []
        if kind == "reasoning":
            seen, self._reasoning_chars = self._reasoning_chars, 0
            if seen:
                return []
            out: list[dict[str, Any]] = []
            for i, part in enumerate(item.get("summary") or ()):
                if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                    out += self._reasoning(part["text"], (item.get("id"), i))
            return out
        return []

    # -- terminal events ---------------------------------------------------------------------------

    def _on_response_update(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        response = event.get("response")
        if isinstance(response, dict) and isinstance(response.get("model"), str) and response["model"]:
            self.model = response["model"]
        return []

    def _end(self, event: dict[str, Any], finish_reason: str) -> list[dict[str, Any]]:
        self._on_response_update(event)
        response = event.get("response")
        self.usage = chat_usage(response.get("usage") if isinstance(response, dict) else None)
        out: list[dict[str, Any]] = []
        if not self.stop_hit:
            out += [*self._open(), *self._flush_held(), *self._close_think()]
            self.finish_reason = finish_reason
            out.append(self._chunk({}, finish_reason))
        if self.include_usage and self.usage is not None:
            out.append(self._chunk(None))
        self.done = True
        return out

    def _on_completed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if not self._tools:
            return self._end(event, "stop")
        return self._end(event, "function_call" if self.legacy_functions else "tool_calls")

    def _on_incomplete(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        response = event.get("response")
        details = response.get("incomplete_details") if isinstance(response, dict) else None
        reason = details.get("reason") if isinstance(details, dict) else None
        if reason == "max_output_tokens":
            return self._end(event, "length")
        if reason == "content_filter":
            return self._end(event, "content_filter")
        return self._on_completed(event)

    def _on_failed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self.done = True
        if self.stop_hit:
            return []
        out = self._flush_held()
        self.error = response_error(event)
        return out
