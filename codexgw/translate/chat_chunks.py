"""Codex backend Responses events → ``chat.completion.chunk`` objects, one event at a time (sans-IO).

Theory of operation
-------------------
:class:`ChatChunkTranslator` is fed each upstream event (the parsed JSON of one SSE ``data``,
codex-protocol.md §7) and returns the chunks to send, shaped exactly as OpenAI streams them::

    {"id", "object": "chat.completion.chunk", "created", "model", "system_fingerprint",
     "choices": [{"index": 0, "delta": {…}, "logprobs": None, "finish_reason": None | str}],
     ["usage": None]}                       # "usage" key only when include_usage (OpenAI does the same)

States (:mod:`codexgw.translate.stream_state`, one table): ``BEFORE_OUTPUT`` (nothing sent yet;
``COMMITTED``: only keep-alive comments) → ``STREAMING`` (role chunk sent) → ``DONE``; a stop-sequence match moves to ``STOPPING`` (the final
chunk is sent, later output is ignored, ``stop_hit`` tells the caller it may close the upstream;
``response.completed`` still yields the usage chunk, then ``STOPPED``). ``response.failed`` or
``error`` ends in ``FAILED`` with :attr:`error` set. Feeding a done translator raises ``RuntimeError``
(a core that failed stays failed).

* The role chunk ``{"role": "assistant", "content": ""}`` is sent lazily, with the first output, so an
  upstream that fails before any output produces no chunk (the caller can still answer with an HTTP
  error or fail over). When that first output is a tool call, the role rides on the call's chunk with
  ``"content": None``, as OpenAI streams it.
* ``response.output_text.delta`` → ``delta.content``, ``response.refusal.delta`` → ``delta.refusal``
  (never in ``content``); ``response.output_item.done`` sends what no delta carried.
* function calls → ``delta.tool_calls`` ``[{index, id, type, function: {name, arguments: ""}}]``, then
  ``[{index, function: {arguments: delta}}]`` per piece; a ``custom_tool_call`` the same with
  ``type: "custom"``, ``custom: {name, input}`` (:class:`~codexgw.translate.chat_tools.ToolCalls`).
* reasoning summary deltas → ``delta.reasoning_content`` (mode ``content``), or
  ``<think>\\n…\\n</think>\\n\\n`` inside ``content`` (mode ``think``), or nothing
  (``hidden``); summary parts are joined by a blank line.
* stop sequences cut the text before the first match, even across deltas
  (:class:`~codexgw.translate.chat_stop.StopMatcher`).
* ``finish_reason``: ``length``/``content_filter`` for ``response.incomplete`` with that reason, else
  ``tool_calls`` when a call was made, else ``stop``.
* ``legacy_functions`` (the request used the deprecated ``functions``): the call is streamed as
  ``delta.function_call`` ``{name, arguments}`` then ``{arguments}`` pieces, ``finish_reason:
  "function_call"``, as OpenAI answers such requests; the format holds one call, so later ones are
  dropped (the request asks the backend for no parallel calls).

:class:`codexgw.translate.chat_stream.ChatStreamTranslator` adds the SSE bytes on top (and is what
the routes use).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

from codexgw.translate.chat_stop import StopMatcher
from codexgw.translate.chat_tools import CALL_FIELDS, ToolCall, ToolCalls
from codexgw.translate.failures import TRUNCATED, OpenAIError, response_error
from codexgw.translate.stream_state import StreamEvent, StreamState
from codexgw.translate.usage import chat_usage

__all__ = [
    "REASONING_MODES",
    "SYSTEM_FINGERPRINT",
    "ChatChunkTranslator",
    "ReasoningMode",
    "chat_usage",
]

SYSTEM_FINGERPRINT = "fp_codexgw"
ReasoningMode = Literal["content", "think", "hidden"]
REASONING_MODES: tuple[str, ...] = get_args(ReasoningMode)
"""How Chat Completions show reasoning summaries: ``reasoning_content``, ``<think>`` in ``content``, or not at all."""
THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"


_BEFORE_OUTPUT = StreamState.BEFORE_OUTPUT
_STREAMING = StreamState.STREAMING
_STOPPING = StreamState.STOPPING
_OUTPUT, _STOP, _END, _FAIL = StreamEvent.OUTPUT, StreamEvent.STOP, StreamEvent.END, StreamEvent.FAIL
_STOPPED_OUTCOME = StreamState.STOPPED.outcome
_INCOMPLETE_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}
"""``finish_reason`` for ``response.incomplete`` by ``incomplete_details.reason`` (else as completed)."""


class ChatChunkTranslator:
    """Translate one upstream response into chat completion chunks (see the module docstring).

    Attributes:
        state: the stream's :class:`~codexgw.translate.stream_state.StreamState`; ``state.finished``
            once the answer is decided (terminal event, stop match, :meth:`finish`).
        error: the OpenAI error object ``{"message", "type", "code", "param"}`` when the upstream failed
            (the caller ends the stream with ``data: {"error": …}`` and no ``[DONE]``), else ``None``.
        model: the model named in chunks: the upstream's ``OpenAI-Model`` header when the caller
            had one (``pin_model``), else the one asked for, updated from ``response.model``.
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
        pin_model: bool = False,
    ) -> None:
        self.completion_id = completion_id
        self.legacy_functions = legacy_functions
        self.pin_model = pin_model
        self.created = created
        self.model = model
        self.include_usage = include_usage
        self.reasoning_mode = reasoning_mode
        self.state = _BEFORE_OUTPUT
        self.error: OpenAIError | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        stops = tuple(s for s in stop if s)
        self._stop = StopMatcher(stops) if stops else None
        self._think_open = False
        self._msg_chars = 0  # text characters streamed for the current message item
        self._refusal_chars = 0  # refusal characters streamed for the current message item
        self._reasoning_chars = 0  # reasoning characters streamed for the current reasoning item
        self._reasoning_key: tuple[Any, Any] | None = None
        self._calls = ToolCalls(legacy_functions)
        self._handlers: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
            "response.output_text.delta": self._on_text_delta,
            "response.refusal.delta": self._on_refusal_delta,
            "response.function_call_arguments.delta": self._on_arguments_delta,
            "response.custom_tool_call_input.delta": self._on_arguments_delta,
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

    @property
    def done(self) -> bool:
        """No more input is taken: a terminal event was handled, or :meth:`finish` was called."""
        return self.state.finished and self.state is not _STOPPING

    @property
    def stop_hit(self) -> bool:
        """A stop sequence matched; the final chunk is already out, the upstream may be closed."""
        return self.state.outcome is _STOPPED_OUTCOME

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Handle one upstream event; return the chunks to send (often one, possibly none).

        Raises:
            RuntimeError: the translator is already done (completed or failed).
        """
        if self.state.finished and self.state is not _STOPPING:  # self.done, inlined
            raise RuntimeError(
                f"{type(self).__name__} is done ({self.state.value}); cannot feed {event.get('type')!r}"
            )
        handler = self._handlers.get(event.get("type"))  # type: ignore[arg-type]
        return handler(event) if handler is not None else []

    def finish(self) -> list[dict[str, Any]]:
        """Call at the end of the upstream stream; returns any last chunks.

        After ``response.completed`` (or a stop match) the final chunks have already been returned by
        :meth:`feed`, so this returns ``[]``. If the stream ended without a terminal event, held-back
        text is sent and :attr:`error` is set to a "stream closed before response.completed" error.
        """
        if self.done:
            return []
        if self.stop_hit:
            self.state = self.state.after(_END)
            return []
        out = self._flush_held()
        self.error = dict(TRUNCATED)  # type: ignore[assignment]
        self.state = self.state.after(_FAIL)
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
        if not self.state.awaiting_output:
            return []
        self.state = self.state.after(_OUTPUT)
        return [self._chunk({"role": "assistant", "content": ""})]

    def _close_think(self) -> list[dict[str, Any]]:
        if not self._think_open:
            return []
        self._think_open = False
        return [self._chunk({"content": THINK_CLOSE})]

    def _flush_held(self) -> list[dict[str, Any]]:
        if self._stop is None or not self._stop.held:
            return []
        return [*self._open(), self._chunk({"content": self._stop.take_held()})]

    # -- text --------------------------------------------------------------------------------------

    def _on_text_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        self._msg_chars += len(delta)
        if self.state is _STREAMING and self._stop is None and not self._think_open:
            return [self._chunk({"content": delta})]
        return self._text(delta)

    def _on_refusal_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        self._refusal_chars += len(delta)
        return self._refusal(delta)

    def _refusal(self, text: str) -> list[dict[str, Any]]:
        if self.stop_hit:
            return []
        return [*self._open(), *self._flush_held(), *self._close_think(), self._chunk({"refusal": text})]

    def _text(self, text: str) -> list[dict[str, Any]]:
        if self.stop_hit:
            return []
        out = self._open()
        prefix = ""
        if self._think_open:
            self._think_open = False
            prefix = THINK_CLOSE
        matched = False
        if self._stop is not None:
            text, matched = self._stop.cut(text)
        if prefix or text:
            out.append(self._chunk({"content": prefix + text}))
        if matched:
            self.state = self.state.after(_STOP)
            self.finish_reason = "stop"
            out.append(self._chunk({}, "stop"))
        return out

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

    def _start_tool(self, item: dict[str, Any], output_index: Any) -> list[dict[str, Any]]:
        if self.stop_hit or not self._calls.accepts_item(item):
            return []
        # A call as the very first output carries the role itself, with ``content: null`` (as OpenAI
        # streams it), so the accumulated message has ``content: None`` like the non-streamed one.
        opening: dict[str, Any] = {}
        if self.state.awaiting_output:
            opening = {"role": "assistant", "content": None}
            self.state = self.state.after(_OUTPUT)
        out = [*self._flush_held(), *self._close_think()]
        out.append(self._chunk({**opening, **self._calls.start(item, output_index)}))
        return out

    def _arguments(self, tool: ToolCall, delta: str) -> list[dict[str, Any]]:
        return [self._chunk(self._calls.arguments(tool, delta))]

    def _on_arguments_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta")
        if not delta or not isinstance(delta, str) or self.stop_hit:
            return []
        tool = self._calls.find(event.get("item_id"), event.get("output_index"), event.get("call_id"))
        return self._arguments(tool, delta) if tool is not None else []

    def _on_item_added(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item = event.get("item")
        if not isinstance(item, dict):
            return []
        kind = item.get("type")
        if kind in CALL_FIELDS:
            return self._start_tool(item, event.get("output_index"))
        if kind == "message":
            self._msg_chars = self._refusal_chars = 0
        elif kind == "reasoning":
            self._reasoning_chars = 0
        return []

    def _on_item_done(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        item = event.get("item")
        if not isinstance(item, dict) or self.stop_hit:
            return []
        kind = item.get("type")
        if kind in CALL_FIELDS:
            tool = self._calls.find(item.get("id"), event.get("output_index"), item.get("call_id"))
            if tool is None:
                return self._start_tool(item, event.get("output_index"))
            arguments = item.get(CALL_FIELDS[kind])
            if isinstance(arguments, str) and len(arguments) > tool.sent:
                return self._arguments(tool, arguments[tool.sent :])
            return []
        if kind == "message":
            seen, self._msg_chars = self._msg_chars, 0
            refused, self._refusal_chars = self._refusal_chars, 0
            parts = [part for part in item.get("content") or () if isinstance(part, dict)]
            text = "".join(p.get("text") or "" for p in parts if p.get("type") == "output_text")
            refusal = "".join(p.get("refusal") or "" for p in parts if p.get("type") == "refusal")
            out = self._text(text[seen:]) if len(text) > seen else []
            return out + self._refusal(refusal[refused:]) if len(refusal) > refused else out
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
        if (
            not self.pin_model
            and isinstance(response, dict)
            and isinstance(response.get("model"), str)
            and response["model"]
        ):
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
        self.state = self.state.after(_END)
        return out

    def _on_completed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if not self._calls.calls:
            return self._end(event, "stop")
        return self._end(event, "function_call" if self.legacy_functions else "tool_calls")

    def _on_incomplete(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        response = event.get("response")
        details = response.get("incomplete_details") if isinstance(response, dict) else None
        reason = details.get("reason") if isinstance(details, dict) else None
        finish_reason = _INCOMPLETE_FINISH.get(reason) if isinstance(reason, str) else None
        return self._end(event, finish_reason) if finish_reason else self._on_completed(event)

    def _on_failed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if self.stop_hit:  # the answer was over already: not an error
            self.state = self.state.after(_FAIL)
            return []
        out = self._flush_held()
        self.error = response_error(event)
        self.state = self.state.after(_FAIL)
        return out
