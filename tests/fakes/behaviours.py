"""Scripted behaviours for one ``POST /backend-api/codex/responses`` call.

A test queues behaviours with :meth:`FakeUpstream.script`; each call pops one. Every behaviour is a
frozen dataclass describing *what the real backend would do*, the wire shapes live in
:mod:`tests.fakes.sse` and :mod:`tests.fakes.backend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field

import trio


@dataclass(frozen=True)
class Usage:
    """Token counts to report in ``response.completed`` (codex-protocol.md §7). None = estimated."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Text:
    """A normal streamed assistant message (codex-protocol.md §7).

    ``chunks`` gives the exact text deltas (default: ~word-sized pieces of ``text``). ``model`` is
    the model reported in ``openai-model`` and the response object (default: the requested one);
    ``header_model`` overrides the ``openai-model`` header alone (§7: the model actually used, which
    may differ from the one the response object names).
    ``reasoning_summary`` adds a reasoning item (summary + ``encrypted_content``) before the message.
    """

    text: str
    _: KW_ONLY
    chunks: Sequence[str] | None = None
    model: str | None = None
    header_model: str | None = None
    reasoning_summary: str | None = None
    usage: Usage | dict[str, int] | None = None
    """Exact counts; a dict takes the :class:`Usage` field names."""


@dataclass(frozen=True)
class Refusal:
    """The model declines: an assistant message whose one content part is a ``refusal``, streamed as
    ``response.refusal.delta`` events then ``response.refusal.done`` (the Responses API's shape)."""

    text: str = "I'm sorry, but I can't help with that."


@dataclass(frozen=True)
class ToolCall:
    """A ``function_call`` output item, arguments streamed as ``response.function_call_arguments.delta``.

    ``text_before`` adds an assistant message item before the call.
    """

    name: str
    arguments: str
    _: KW_ONLY
    call_id: str | None = None
    text_before: str | None = None


@dataclass(frozen=True)
class CustomToolCall:
    """A ``custom_tool_call`` output item (a freeform tool such as Codex's ``apply_patch``).

    The input streams as ``response.custom_tool_call_input.delta`` events, then
    ``response.custom_tool_call_input.done`` (codex-protocol.md §6.3 tool shapes, §7).
    """

    name: str
    input: str
    _: KW_ONLY
    call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class UsageLimit:
    """HTTP 429 ``usage_limit_reached`` before streaming (codex-protocol.md §8.1, §8.2).

    Also marks the account as limited until ``resets_in_s`` from now (seen by ``/wham/usage``).
    ``plan_type`` defaults to the account's plan.
    """

    resets_in_s: int = 3600
    plan_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class Unauthorized:
    """HTTP 401 as the backend answers an expired/invalid token (codex-protocol.md §8.3)."""

    code: str = "token_expired"
    message: str = "Provided authentication token is expired. Please try signing in again."


@dataclass(frozen=True)
class Forbidden:
    """HTTP 403 before streaming, saying something about the account (codex-protocol.md §8.3).

    ``kind="deactivated"``: a JSON error with code ``account_deactivated`` (the account is banned);
    ``kind="cloudflare"``: a Cloudflare "you have been blocked" HTML page (transient, not a ban).
    """

    kind: str = "deactivated"


@dataclass(frozen=True, kw_only=True)
class UsageNotIncluded:
    """HTTP 429 ``usage_not_included``: the account's plan does not include Codex (§8.2, §8.3)."""

    plan_type: str = "free"


@dataclass(frozen=True)
class ServerError:
    """An HTTP error before streaming (codex-protocol.md §8.3).

    503 carries ``error.code = server_is_overloaded``; 502/504 are HTML gateway pages; 429 is a plain
    ``rate_limit_exceeded`` with ``Retry-After: 20`` (not a usage limit).
    """

    status: int = 500


@dataclass(frozen=True)
class DropMidStream:
    """Start a normal text stream, then cut the connection after ``after_events`` SSE events.

    The client sees a truncated chunked body with no ``response.completed`` (codex-protocol.md §8.3).
    """

    after_events: int = 3
    _: KW_ONLY
    text: str = "This answer will be cut off before it is complete."


@dataclass(frozen=True)
class Failed:
    """A ``response.failed`` event, then the stream closes (codex-protocol.md §7, §8.3).

    With ``after_output`` some text streams first; otherwise it follows ``response.in_progress``.
    """

    code: str = "server_is_overloaded"
    message: str = "Our servers are currently overloaded. Please try again later."
    _: KW_ONLY
    after_output: bool = False


@dataclass(frozen=True)
class Incomplete:
    """Some text, then ``response.incomplete`` with ``incomplete_details.reason`` (§7)."""

    reason: str = "max_output_tokens"
    _: KW_ONLY
    text: str = "This answer stops"


@dataclass(frozen=True, kw_only=True)
class Hold:
    """Block the request until ``release`` is set, then behave as ``then``.

    ``reached`` is set once the request is parked (before any byte of the answer is sent), so a
    test can wait for it instead of sleeping. With ``after_headers`` the 200 headers and the first
    ``after_events`` SSE events (default: ``response.created`` and ``response.in_progress``) are sent
    first and the hold happens mid-stream (e.g. after the first text delta: silence after output).
    """

    release: trio.Event = field(default_factory=trio.Event)
    then: Behaviour | None = None
    after_headers: bool = False
    after_events: int = 2
    reached: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        if self.after_headers and isinstance(
            self.then, UsageLimit | Unauthorized | ServerError | Forbidden | UsageNotIncluded | Hold
        ):
            raise ValueError("Hold(after_headers=True) needs a streaming `then` (Text, ToolCall, ...)")


Behaviour = (
    Text
    | Refusal
    | ToolCall
    | CustomToolCall
    | UsageLimit
    | Unauthorized
    | ServerError
    | Forbidden
    | UsageNotIncluded
    | DropMidStream
    | Failed
    | Incomplete
    | Hold
)
"""Everything :meth:`FakeUpstream.script` accepts."""

DEFAULT_TEXT = "Hello from the fake Codex backend."
