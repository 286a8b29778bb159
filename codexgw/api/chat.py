"""``POST /v1/chat/completions``: Chat Completions translated to and from the Codex Responses backend."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from codexgw.api.common import StreamLog, response_headers, upstream_closed
from codexgw.api.hot import Call, JSONReply, StreamReply
from codexgw.errors import CodexgwError, InvalidRequestError
from codexgw.translate.aggregate import ChatCompletionBuilder
from codexgw.translate.chat_request import chat_to_responses
from codexgw.translate.chat_stream import REASONING_MODES, ChatStreamTranslator, sse_data
from codexgw.translate.events import event_json
from codexgw.translate.failures import failure_exception, openai_error
from codexgw.translate.sse import encode_data_done
from codexgw.upstream.failover import open_stream
from codexgw.upstream.gateway import Gateway
from codexgw.upstream.heartbeat import HEARTBEAT, with_heartbeat
from codexgw.upstream.stream import UpstreamStream

REASONING_HEADER = "x-codexgw-reasoning"
PATHS = ("/v1/chat/completions", "/chat/completions")


def _reasoning_mode(call: Call) -> str:
    mode = call.headers.get(REASONING_HEADER, call.reasoning_mode).strip().lower()
    if mode not in REASONING_MODES:
        raise InvalidRequestError(
            f"{REASONING_HEADER} must be one of {', '.join(REASONING_MODES)}", param=REASONING_HEADER
        )
    return mode


async def create_chat_completion(call: Call) -> JSONReply | StreamReply:
    """``POST /v1/chat/completions``: streamed when the body says ``stream: true`` (codex-protocol.md
    §12.2). Served by :class:`codexgw.api.hot.HotRoutes`."""
    gw = call.gw
    body = call.json_body()
    mode = _reasoning_mode(call)
    prepared = chat_to_responses(
        body, default_instructions=call.default_instructions, aliases=gw.settings.model_aliases
    )
    stream = await open_stream(gw, prepared.body, call.headers)
    if stream.early_error is not None:  # failed before any output: an HTTP error, as OpenAI answers
        await upstream_closed(stream)
        raise failure_exception(openai_error(stream.early_error))
    headers = response_headers(stream, prepared.dropped)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model = stream.model or str(body.get("model"))
    translator = ChatStreamTranslator(
        completion_id=completion_id,
        created=created,
        model=model,
        include_usage=prepared.include_usage,
        reasoning_mode=mode,
        stop=prepared.stop,
        legacy_functions=prepared.legacy_functions,
    )
    call.account, call.model = stream.account.name, model
    if prepared.stream:
        log = StreamLog(
            call.method,
            call.path,
            call.started,
            stream.account.name,
            model,
            route=call.path,
            metrics=gw.metrics,
        )
        return StreamReply(_relay(gw, stream, translator, log), headers, upstream=stream)
    builder = ChatCompletionBuilder(
        completion_id=completion_id,
        created=created,
        model=model,
        reasoning_mode=mode,
        stop=prepared.stop,
        legacy_functions=prepared.legacy_functions,
    )
    try:
        await _collect(stream, builder)
    finally:
        await upstream_closed(stream)
    completion = builder.completion()
    call.usage = _responses_usage(completion.get("usage"))
    return JSONReply(completion, headers=headers)


_data = sse_data
TEXT_DELTA = "response.output_text.delta"
DONE = encode_data_done()
"""The terminal ``data: [DONE]`` of a chat stream (codex-protocol.md §12.2)."""


def _responses_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not usage:
        return None
    return {"input_tokens": usage.get("prompt_tokens"), "output_tokens": usage.get("completion_tokens")}


async def _relay(
    gw: Gateway, stream: UpstreamStream, translator: ChatStreamTranslator, log: StreamLog
) -> AsyncIterator[bytes]:
    """Translate upstream events into ``chat.completion.chunk`` SSE, ending with ``data: [DONE]``.

    An upstream failure after the first byte ends the stream with ``data: {"error": …}`` and no
    ``[DONE]`` (the openai SDK raises ``APIError`` on it; codex-protocol.md §12.2). A matched stop
    sequence ends the stream at once and closes the upstream.
    """
    log.outcome = "client_closed"
    last: list[bytes] = []  # the chunks of the batch that ended the answer: they go out with [DONE]
    try:
        heartbeat = with_heartbeat(stream.batches(), nursery=gw.nursery, interval_s=gw.settings.heartbeat_s)
        async with aclosing(heartbeat) as batches:  # a stop or the end breaks out: close it now, not at GC
            async for batch in batches:
                if batch is None:
                    yield HEARTBEAT
                    continue
                out: list[bytes] = []
                handled = translator.handled_events
                for event, _raw in batch:
                    if event.event is not None and event.event not in handled:
                        continue  # e.g. output_text.done, which repeats the whole text: no need to parse it
                    if (
                        event.event == TEXT_DELTA
                        and (fast := translator.feed_text_delta_data(event.data)) is not None
                    ):
                        out.append(fast)  # plain text streaming: no stop sequence, so never done here
                        continue
                    data = event_json(event)
                    if data is not None and (encoded := translator.feed_sse(data)):
                        out.append(encoded)
                    if translator.done or translator.stop_hit:
                        break
                del batch, event, _raw  # hold nothing while the upstream is silent
                data = None
                if translator.done or translator.stop_hit:
                    last = out
                    break
                if out:
                    yield b"".join(out)
                del out
        if not translator.done and not translator.stop_hit:
            # closed before response.completed: held-back text, and translator.error is set
            last.extend(_data(chunk) for chunk in translator.finish())
        if translator.error is not None:
            log.outcome = "failed"
            yield b"".join(last) + _data({"error": translator.error})
            return
        log.outcome = "stopped" if translator.stop_hit else "completed"
        yield b"".join(last) + b"".join(_data(chunk) for chunk in translator.finish()) + DONE
    except CodexgwError as exc:
        log.outcome = "failed"
        yield _data(exc.to_body())
    finally:
        log.usage = _responses_usage(translator.usage)
        log.emit()
        await upstream_closed(stream)


async def _collect(stream: UpstreamStream, builder: ChatCompletionBuilder) -> None:
    """Feed the upstream events to ``builder`` (``stream: false``) until it is done: the terminal
    event, or a stop-sequence match (the caller then closes the upstream without reading the rest)."""
    async with aclosing(stream.batches()) as batches:
        async for batch in batches:
            for event, _raw in batch:
                data = event_json(event)
                if data is not None:
                    builder.feed(data)
                if builder.done:
                    return
