"""End to end, issue 18's gaps that real clients hit: what codexgw answers the ``openai`` SDK and
plain HTTP clients (model retrieval, modes, dropped ``reasoning`` keys, the upstream's model)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Env, in_thread
from tests.fakes import Text

pytestmark = pytest.mark.trio


async def test_unknown_reasoning_key_is_dropped_and_named(env: Env) -> None:
    """``reasoning.context`` (pydantic-ai) would be a 400 upstream: it is removed and named in
    ``x-codexgw-dropped-params``; ``effort`` goes on."""
    env.add_account("alice")
    env.fake.script(None, Text("ok"))
    await env.start()
    raw = await in_thread(
        env.openai().responses.with_raw_response.create,
        model="gpt-5.5",
        input="hi",
        reasoning={"effort": "low"},
        extra_body={"reasoning": {"effort": "low", "context": "all_turns"}},
    )
    assert raw.headers["x-codexgw-dropped-params"] == "reasoning.context"
    assert raw.parse().output_text == "ok"
    assert env.fake.responses_requests()[-1].json["reasoning"] == {"effort": "low"}


async def test_fake_rejects_unknown_reasoning_keys(env: Env) -> None:
    """The fake is as strict as the backend about ``reasoning`` (so the test above can fail)."""
    env.add_account("alice")
    await env.start()
    account = env.gateway.accounts[next(iter(env.gateway.accounts))]
    body = {
        "model": "gpt-5.5",
        "instructions": "x",
        "input": [],
        "stream": True,
        "store": False,
        "reasoning": {"context": "all_turns"},
    }
    headers = {
        "authorization": f"Bearer {account.access_token}",
        "chatgpt-account-id": account.chatgpt_account_id,
    }
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{env.fake_url}/backend-api/codex/responses", json=body, headers=headers)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "reasoning.context"
