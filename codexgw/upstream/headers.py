"""Request headers the real Codex client sends to the backend (codex-protocol.md §6.2), and the ones relayed back (§7)."""

from __future__ import annotations

import hashlib
import platform
import uuid
from collections.abc import Mapping

from codexgw import __version__
from codexgw.config import CODEX_CLIENT_VERSION

DEFAULT_ORIGINATOR = "codex_cli_rs"
"""codex-protocol.md §6.2: the default ``originator``."""


RELAYED_REQUEST_HEADERS = (
    "x-codex-turn-state",
    "x-codex-turn-metadata",
    "x-codex-window-id",
    "x-codex-beta-features",
    "x-codex-parent-thread-id",
    "x-openai-subagent",
    "x-openai-memgen-request",
    "x-client-request-id",
    "thread-id",
)
"""Client headers passed upstream unchanged (codex-protocol.md §6.2), besides the session id."""


RELAYED_RESPONSE_HEADERS = (
    "openai-model",
    "x-codex-turn-state",
    "x-models-etag",
    "x-reasoning-included",
    "x-request-id",
    "x-oai-request-id",
)
"""Upstream response headers passed back to the client (codex-protocol.md §7)."""


MAX_HEADER_VALUE = 512
"""Longest client-chosen header value sent upstream as it is (characters); longer ones are hashed."""


def header_safe(value: str, *, as_uuid: bool = False) -> str:
    """A client-chosen value (a session id, a ``prompt_cache_key``, a relayed Codex header) in a
    form an HTTP header can carry (issue 16 item 6): unchanged when it is visible ASCII (spaces
    inside allowed) of at most :data:`MAX_HEADER_VALUE` characters; else its SHA-256, stable so a
    conversation keeps its prompt cache: ``sha256-`` and 32 hex digits, or (``as_uuid``, for the
    ``session_id``, which Codex sends as a UUID, codex-protocol.md §6.2) a version-4 UUID from it.
    """
    if value.isascii() and len(value) <= MAX_HEADER_VALUE and value.isprintable() and value.strip() == value:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
    if as_uuid:
        return str(uuid.UUID(bytes=digest[:16], version=4))
    return "sha256-" + digest[:16].hex()


def user_agent(originator: str = DEFAULT_ORIGINATOR) -> str:
    """Return a Codex-style ``User-Agent`` (codex-protocol.md §6.2) tagged with codexgw's version."""
    system = f"{platform.system()} {platform.release()}".strip()
    return f"{originator}/{CODEX_CLIENT_VERSION} ({system}; {platform.machine()}) codexgw/{__version__}"


def responses_headers(
    *,
    access_token: str,
    chatgpt_account_id: str | None,
    session_id: str,
    fedramp: bool = False,
    client_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the headers of ``POST {upstream}/codex/responses`` (codex-protocol.md §6.2).

    Args:
        access_token: the account's OAuth access token.
        chatgpt_account_id: the id_token's ``chatgpt_account_id`` (``ChatGPT-Account-ID``).
        session_id: conversation id for prompt caching (the client's, or one derived by the caller).
        fedramp: add ``X-OpenAI-Fedramp: true`` for FedRAMP accounts (§4).
        client_headers: the client's request headers (any case); the Codex turn headers among them
            are relayed, and a Codex client's ``originator`` is kept; these and ``session_id`` go
            through :func:`header_safe`.

    Returns:
        A dict of header names to values.
    """
    lower = {k.lower(): v for k, v in (client_headers or {}).items()}
    originator = header_safe(lower.get("originator") or DEFAULT_ORIGINATOR)
    headers = {
        "authorization": f"Bearer {access_token}",
        "originator": originator,
        "user-agent": user_agent(originator),
        "version": CODEX_CLIENT_VERSION,
        "session_id": header_safe(session_id, as_uuid=True),
        "accept": "text/event-stream",
        "content-type": "application/json",
    }
    if chatgpt_account_id:
        headers["chatgpt-account-id"] = chatgpt_account_id
    if fedramp:
        headers["x-openai-fedramp"] = "true"
    for name in RELAYED_REQUEST_HEADERS:
        value = lower.get(name)
        if value is not None:
            headers[name] = header_safe(value)
    return headers


def plain_headers(*, access_token: str, chatgpt_account_id: str | None) -> dict[str, str]:
    """Headers of the non-streaming backend calls, ``/codex/models`` and ``/wham/usage`` (codex-protocol.md §6.1):
    the Codex ``User-Agent``, the bearer token and the account id; no ``originator`` and no ``version``."""
    headers = {
        "authorization": f"Bearer {access_token}",
        "user-agent": user_agent(),
        "accept": "application/json",
    }
    if chatgpt_account_id:
        headers["chatgpt-account-id"] = chatgpt_account_id
    return headers
