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


async def test_sdk_models_retrieve(env: Env) -> None:
    """``client.models.retrieve`` works for a slug and an effort variant; an unknown id is a 404
    ``model_not_found`` the SDK raises as ``NotFoundError``."""
    import openai

    env.add_account("alice")
    await env.start()
    client = env.openai()
    model = await in_thread(client.models.retrieve, "gpt-5.5")
    assert (model.id, model.object, model.owned_by) == ("gpt-5.5", "model", "openai")
    assert (await in_thread(client.models.retrieve, "gpt-5.4-mini-high")).id == "gpt-5.4-mini-high"
    with pytest.raises(openai.NotFoundError) as info:
        await in_thread(client.models.retrieve, "gpt-4o")
    assert info.value.code == "model_not_found"
    assert info.value.body["param"] == "model" and info.value.body["type"] == "invalid_request_error"


async def test_modes_endpoint(env: Env) -> None:
    """``GET /v1/modes`` (codex-gateway-pool's): the modes, their efforts and the models taking them."""
    env.add_account("alice")
    await env.start()
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{env.url}/v1/modes")
    assert r.status_code == 200
    doc = r.json()
    assert doc["default_reasoning_mode"] == "normal"
    assert [m["id"] for m in doc["data"]] == ["fast", "normal", "high", "very_high"]
    assert "gpt-5.5" in doc["data"][3]["models"] and "codex-auto-review" not in doc["data"][3]["models"]


async def test_chat_reasoning_mode_and_max_output_tokens(env: Env) -> None:
    """codex-gateway-pool's chat fields: ``reasoning_mode`` becomes ``reasoning.effort``,
    ``max_output_tokens`` is dropped and named."""
    env.add_account("alice")
    env.fake.script(None, Text("OK"))
    await env.start()
    body = {
        "model": "gpt-5.5",
        "messages": [{"role": "user", "content": "Reply with OK only."}],
        "max_output_tokens": 32,
        "reasoning_mode": "very_high",
    }
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{env.url}/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "OK"
    assert r.headers["x-codexgw-dropped-params"] == "max_output_tokens"
    assert env.fake.responses_requests()[-1].json["reasoning"]["effort"] == "xhigh"


async def test_answers_name_the_upstream_openai_model(env: Env) -> None:
    """``OpenAI-Model`` (the model that served, §7) names the chat chunks, the chat completion and the
    aggregated Responses answer, even when the events' ``response.model`` says the one asked for."""
    env.add_account("alice")
    served = "gpt-5.5-2026-11-30"
    env.fake.script(None, *[Text("ok", header_model=served) for _ in range(3)])
    await env.start()
    client = env.openai()
    ask = [{"role": "user", "content": "hi"}]
    done = await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ask)
    assert done.model == served
    chunks = await in_thread(
        lambda: list(client.chat.completions.create(model="gpt-5.5", messages=ask, stream=True))
    )
    assert {c.model for c in chunks} == {served}
    response = await in_thread(client.responses.create, model="gpt-5.5", input="hi")
    assert response.model == served and response.output_text == "ok"


async def test_refusal_round_trips_through_the_sdk(env: Env) -> None:
    """A refusal comes back in ``refusal`` (``message.refusal``, ``delta.refusal``), not in ``content``;
    sent back as the assistant's turn it goes upstream as a ``refusal`` part."""
    from tests.fakes import Refusal

    env.add_account("alice")
    no = "I'm sorry, but I can't help with that."
    env.fake.script(None, Refusal(no), Refusal(no), Text("Fine."))
    await env.start()
    client = env.openai()
    ask = [{"role": "user", "content": "do something bad"}]
    done = await in_thread(client.chat.completions.create, model="gpt-5.5", messages=ask)
    message = done.choices[0].message
    assert (message.content, message.refusal) == (None, no)
    chunks = await in_thread(
        lambda: list(client.chat.completions.create(model="gpt-5.5", messages=ask, stream=True))
    )
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == no
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""
    follow = [*ask, message.model_dump(exclude_none=True), {"role": "user", "content": "ok, something else"}]
    answer = await in_thread(client.chat.completions.create, model="gpt-5.5", messages=follow)
    assert answer.choices[0].message.content == "Fine."
    sent = env.fake.responses_requests()[-1].json["input"]
    assert sent[1] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": no}],
    }
