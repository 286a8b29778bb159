"""``POST /v1/chat/completions``: Chat Completions translated to and from the Codex Responses backend."""

from __future__ import annotations

import time
import uuid

from codexgw.api.common import response_headers
from codexgw.api.hot import Call, JSONReply, StreamReply
from codexgw.errors import InvalidRequestError
from codexgw.translate.aggregate import ChatCompletionBuilder
from codexgw.translate.chat_request import chat_to_responses
from codexgw.translate.chat_stream import REASONING_MODES, ChatStreamTranslator, responses_usage
from codexgw.translate.failures import failure_exception, openai_error
from codexgw.translate.params import Prepared
from codexgw.upstream.collected import collect_answer
from codexgw.upstream.failover import open_stream
from codexgw.upstream.keepalive import Opening, keep_alive_then_relay, open_or_wait
from codexgw.upstream.relay import collect, relay, upstream_closed
from codexgw.upstream.stream import UpstreamStream

REASONING_HEADER = "x-codexgw-reasoning"
PATHS = ("/v1/chat/completions", "/chat/completions")


def _name_model(translator: ChatStreamTranslator, stream: UpstreamStream) -> None:
    """Chunks name the upstream's ``OpenAI-Model`` when it sent one (§7), whatever the events say."""
    if stream.model:
        translator.model, translator.pin_model = stream.model, True


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
    body = await call.json_body()
    mode = _reasoning_mode(call)
    prepared = chat_to_responses(
        body, default_instructions=call.default_instructions, aliases=gw.settings.model_aliases
    )
    call.admit(str(body.get("model")), prepared.body)
    scope = call.exchange.scope
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    translator = ChatStreamTranslator(
        completion_id=completion_id,
        created=created,
        model=str(body.get("model")),
        include_usage=prepared.include_usage,
        reasoning_mode=mode,
        stop=prepared.stop,
        legacy_functions=prepared.legacy_functions,
    )
    if not prepared.stream:
        return await _whole(call, prepared, translator, mode)
    opened = await open_or_wait(
        gw,
        lambda: open_stream(gw, prepared.body, call.headers, scope=scope),
        wait_s=gw.settings.keepalive_after_s,
    )
    if isinstance(opened, Opening):  # no output yet after the keep-alive wait: commit (keepalive.py)
        call.exchange.model = translator.model

        def on_stream(stream: UpstreamStream) -> None:
            _name_model(translator, stream)
            call.exchange.account, call.exchange.model = stream.account.name, translator.model

        events = keep_alive_then_relay(
            gw, opened, translator, on_stream=on_stream, on_end=call.exchange.end_stream
        )
        return StreamReply(events, response_headers(None, prepared.dropped), opening=opened)
    stream = opened
    if stream.early_error is not None:  # failed before any output: an HTTP error, as OpenAI answers
        await upstream_closed(stream)
        raise failure_exception(openai_error(stream.early_error))
    headers = response_headers(stream, prepared.dropped)
    _name_model(translator, stream)
    model = translator.model
    call.exchange.account, call.exchange.model = stream.account.name, model
    events = relay(gw, stream, translator, on_end=call.exchange.end_stream)
    return StreamReply(events, headers, upstream=stream)


async def _whole(call: Call, prepared: Prepared, translator: ChatStreamTranslator, mode: str) -> JSONReply:
    """``stream: false``: the whole completion, failing over on a drop mid-answer
    (:func:`~codexgw.upstream.collected.collect_answer`: nothing reached the client yet)."""
    gw = call.gw

    async def read(stream: UpstreamStream) -> ChatCompletionBuilder:
        if stream.early_error is not None:  # failed before any output: an HTTP error, as OpenAI answers
            raise failure_exception(openai_error(stream.early_error))
        _name_model(translator, stream)
        builder = ChatCompletionBuilder(
            completion_id=translator.completion_id,
            created=translator.created,
            model=translator.model,
            reasoning_mode=mode,
            stop=prepared.stop,
            legacy_functions=prepared.legacy_functions,
            pin_model=translator.pin_model,
        )
        await collect(stream, builder.feed, until=lambda: builder.done)
        return builder

    stream, builder = await collect_answer(
        gw,
        lambda exclude: open_stream(gw, prepared.body, call.headers, scope=call.exchange.scope, exclude=exclude),
        read,
    )
    call.exchange.account, call.exchange.model = stream.account.name, translator.model
    completion = builder.completion()
    call.exchange.usage = responses_usage(completion.get("usage"))
    return JSONReply(completion, headers=response_headers(stream, prepared.dropped))
