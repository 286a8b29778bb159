"""A fake OpenAI OAuth issuer and ChatGPT Codex backend for codexgw's tests and ``make demo``.

Written independently of codexgw, from ``codex-protocol.md``, and at least as strict as the real
service. Typical use::

    fake = FakeUpstream(clock=lambda: now)
    account = fake.add_account(email="a@example.com")
    base_url = await nursery.start(serve_fake, fake)
    fake.script(account, UsageLimit(resets_in_s=600), Text("hi"))

Run standalone with ``python -m tests.fakes --accounts 2 --auth-json-dir DIR``.
"""

from .app import FakeApp, serve_fake
from .behaviours import (
    Behaviour,
    CustomToolCall,
    DropMidStream,
    Failed,
    Forbidden,
    Hold,
    Incomplete,
    Refusal,
    ServerError,
    Text,
    ToolCall,
    Unauthorized,
    Usage,
    UsageLimit,
    UsageNotIncluded,
)
from .jwt import CLIENT_ID, decode_claims
from .state import FakeAccount, FakeUpstream, RecordedRequest, TokenRequest

__all__ = [
    "CLIENT_ID",
    "Behaviour",
    "CustomToolCall",
    "DropMidStream",
    "Failed",
    "FakeAccount",
    "FakeApp",
    "FakeUpstream",
    "Forbidden",
    "Hold",
    "Incomplete",
    "RecordedRequest",
    "Refusal",
    "ServerError",
    "Text",
    "TokenRequest",
    "ToolCall",
    "Unauthorized",
    "Usage",
    "UsageLimit",
    "UsageNotIncluded",
    "decode_claims",
    "serve_fake",
]
