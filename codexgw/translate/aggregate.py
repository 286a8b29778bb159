"""Whole-response aggregation for clients that asked for ``stream: false`` (design.md §3).

* :class:`ResponseAggregator` folds the upstream events (codex-protocol.md §7) into the final Response
  object of ``POST /v1/responses``.
* :class:`ChatCompletionBuilder` (fed event by event, so the route can stop reading at a stop match)
  and :func:`chat_completion_from_events` build the ``chat.completion`` object by running the
  :class:`~codexgw.translate.chat_chunks.ChatChunkTranslator` and accumulating its chunks the way the
  openai SDK does, so a non-streamed answer always equals the streamed one accumulated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from codexgw.errors import CodexgwError, UpstreamConnectionError, UpstreamError
from codexgw.translate.chat_chunks import SYSTEM_FINGERPRINT, ChatChunkTranslator, ReasoningMode, chat_usage
from codexgw.translate.failures import TRUNCATED, OpenAIError, failure_exception, response_error

__all__ = [
    "ChatAccumulator",
    "ChatCompletionBuilder",
    "ResponseAggregator",
    "chat_completion_from_events",
    "chat_usage",
]


class ResponseAggregator:
    """Fold upstream Responses events into the final Response object.

    Attributes:
        done: a terminal event (``response.completed``/``incomplete``/``failed``, ``error``) was seen.
        error: the OpenAI error object when the upstream failed, else ``None``.
        items: the ``output_item.done`` items so far, in ``output_index`` order.

    ``response.incomplete`` is not an error: like OpenAI, the response is returned with
    ``status: "incomplete"`` and its ``incomplete_details``.
    """

    def __init__(self) -> None:
        self.done = False
        self.error: OpenAIError | None = None
        self._response: dict[str, Any] | None = None
        self._items: dict[int, dict[str, Any]] = {}

    @property
    def items(self) -> list[dict[str, Any]]:
        return [self._items[k] for k in sorted(self._items)]

    def feed(self, event: dict[str, Any]) -> None:
        """Take one upstream event. Events after the terminal one are ignored."""
        if self.done:
            return
        kind = event.get("type")
        if kind == "response.output_item.done":
            item = event.get("item")
            if isinstance(item, dict):
                index = event.get("output_index")
                if not isinstance(index, int) or index in self._items:
                    index = max(self._items, default=-1) + 1
                self._items[index] = item
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response")
            self._response = dict(response) if isinstance(response, dict) else {}
            if not self._response.get("output"):
                self._response["output"] = self.items
            self.done = True
        elif kind in ("response.failed", "error"):
            self.error = response_error(event)
            self.done = True

    @property
    def response(self) -> dict[str, Any]:
        """The final Response object (``output`` rebuilt from the done items when the upstream's is empty).

        Raises:
            CodexgwError: the upstream failed (mapped by :func:`~.failures.failure_exception`:
                400/429/503/502), or :class:`UpstreamConnectionError` if the stream ended early.
        """
        if self.error is not None:
            raise failure_exception(self.error)
        if self._response is None:
            raise UpstreamConnectionError(TRUNCATED["message"])
        return self._response

    def final_response(self) -> dict[str, Any]:
        """A copy of :attr:`response`, once the upstream's stream has ended.

        Raises:
            UpstreamError: the stream ended before a terminal event (502 ``upstream_error``).
            CodexgwError: the upstream failed (as :attr:`response`).
        """
        if not self.done:
            raise UpstreamError(TRUNCATED["message"])
        return dict(self.response)


class ChatAccumulator:
    """Accumulate ``chat.completion.chunk`` dicts the way the openai SDK does (concatenate strings,
    merge tool calls by ``index``), into a ``chat.completion`` object."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.function_call: dict[str, str] | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        self.model = chunk.get("model", self.model)
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            if delta.get("refusal"):
                self.refusal.append(delta["refusal"])
            if delta.get("reasoning_content"):
                self.reasoning.append(delta["reasoning_content"])
            for call in delta.get("tool_calls") or ():
                self._add_call(call)
            legacy = delta.get("function_call")
            if legacy:
                if self.function_call is None:
                    self.function_call = {"name": "", "arguments": ""}
                self.function_call["name"] += legacy.get("name") or ""
                self.function_call["arguments"] += legacy.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _add_call(self, call: dict[str, Any]) -> None:
        """Merge one ``tool_calls`` delta entry: a function call's ``function`` pieces, or a custom
        tool's ``custom`` ones (``{"id", "type": "custom", "custom": {"name", "input"}}``)."""
        custom = call.get("type") == "custom" or "custom" in call
        acc = self.tool_calls.get(call["index"])
        if acc is None:
            if custom:
                acc = {"id": "", "type": "custom", "custom": {"name": "", "input": ""}}
            else:
                acc = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            self.tool_calls[call["index"]] = acc
        acc["id"] += call.get("id") or ""
        if custom:
            piece = call.get("custom") or {}
            acc["custom"]["name"] += piece.get("name") or ""
            acc["custom"]["input"] += piece.get("input") or ""
            return
        function = call.get("function") or {}
        acc["function"]["name"] += function.get("name") or ""
        acc["function"]["arguments"] += function.get("arguments") or ""

    def completion(self, *, completion_id: str, created: int, model: str) -> dict[str, Any]:
        """``{"id", "object": "chat.completion", "created", "model", "system_fingerprint",
        "choices": [{"index": 0, "message": {"role", "content", ["reasoning_content"], ["tool_calls"],
        "refusal": None, "annotations": []}, "logprobs": None, "finish_reason"}], "usage"}``.

        ``content`` is ``None`` when the answer is only tool calls or a refusal (as OpenAI answers);
        ``refusal`` is the refusal text, else ``None``; a legacy ``function_call`` ``{"name",
        "arguments"}`` replaces ``tool_calls`` when one was streamed.
        """
        tool_calls = [self.tool_calls[k] for k in sorted(self.tool_calls)]
        content = "".join(self.content)
        refusal = "".join(self.refusal) or None
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content if content or not (tool_calls or self.function_call or refusal) else None,
            "refusal": refusal,
            "annotations": [],
        }
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if tool_calls:
            message["tool_calls"] = tool_calls
        if self.function_call is not None:
            message["function_call"] = self.function_call
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": self.model or model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason or "stop",
                }
            ],
            "usage": self.usage,
        }


class ChatCompletionBuilder:
    """Build the non-streamed ``chat.completion`` one upstream event at a time (sans-IO).

    The route feeds events while it reads the upstream and stops reading as soon as :attr:`done`
    is true: after the terminal event, or as soon as a stop sequence matched, so the upstream can be
    closed without waiting for the rest of the generation (issue 4: "the upstream stream is closed").

    Attributes:
        done: no more events are needed (terminal event seen, or a stop sequence matched).
    """

    def __init__(
        self,
        *,
        completion_id: str,
        created: int,
        model: str,
        reasoning_mode: ReasoningMode = "content",
        stop: Sequence[str] = (),
        legacy_functions: bool = False,
        pin_model: bool = False,
    ) -> None:
        self.completion_id = completion_id
        self.created = created
        self._translator = ChatChunkTranslator(
            completion_id=completion_id,
            created=created,
            model=model,
            include_usage=True,
            reasoning_mode=reasoning_mode,
            stop=stop,
            legacy_functions=legacy_functions,
            pin_model=pin_model,
        )
        self._acc = ChatAccumulator()

    @property
    def done(self) -> bool:
        return self._translator.state.finished

    def feed(self, event: dict[str, Any]) -> None:
        """Take one upstream event (parsed SSE data); events after the terminal one are ignored.

        Events after a stop match are still accepted (their output is ignored), so a caller that has
        them anyway gets the ``usage`` of ``response.completed``; one that stops reading at
        :attr:`done` answers with ``usage: None``, the upstream never having reported it.
        """
        if self._translator.done:
            return
        for chunk in self._translator.feed(event):
            self._acc.add(chunk)

    def completion(self) -> dict[str, Any]:
        """The ``chat.completion`` (shape: :meth:`ChatAccumulator.completion`); call once, at the end.

        Raises:
            CodexgwError: the upstream failed (see :func:`~.failures.failure_exception`), or the
                events ended without ``response.completed`` or a stop match
                (:class:`UpstreamConnectionError`).
        """
        translator = self._translator
        for chunk in translator.finish():
            self._acc.add(chunk)
        if translator.error is not None:
            error: CodexgwError = (
                UpstreamConnectionError(TRUNCATED["message"])
                if translator.error == TRUNCATED
                else failure_exception(translator.error)
            )
            raise error
        return self._acc.completion(
            completion_id=self.completion_id, created=self.created, model=translator.model
        )


def chat_completion_from_events(
    events: Iterable[dict[str, Any]],
    *,
    completion_id: str,
    created: int,
    model: str,
    reasoning_mode: ReasoningMode = "content",
    stop: Sequence[str] = (),
    legacy_functions: bool = False,
) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` for upstream events (shape: :meth:`ChatAccumulator.completion`).

    Built by feeding a :class:`ChatChunkTranslator` (with ``include_usage``) and accumulating its
    chunks, so it equals the accumulated stream (see :class:`ChatCompletionBuilder`). Events after the
    terminal one, or after a stop match, are ignored.

    Raises:
        CodexgwError: the upstream failed (see :func:`~.failures.failure_exception`), or the events
            end without ``response.completed`` (:class:`UpstreamConnectionError`).
    """
    builder = ChatCompletionBuilder(
        completion_id=completion_id,
        created=created,
        model=model,
        reasoning_mode=reasoning_mode,
        stop=stop,
        legacy_functions=legacy_functions,
    )
    for event in events:
        builder.feed(event)
    return builder.completion()
