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
    assert (await in_thread(client.models.retrieve, "codex-mini")).id == "codex-mini"  # an alias
    assert (await in_thread(client.models.retrieve, "mini-high")).id == "mini-high"
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


GRAMMAR_TOOL = {
    "type": "custom",
    "custom": {
        "name": "apply_patch",
        "description": "Apply a patch",
        "format": {
            "type": "grammar",
            "grammar": {"syntax": "lark", "definition": 'start: "*** Begin Patch" /.+/'},
        },
    },
}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"


async def test_custom_tool_round_trips_through_the_sdk(env: Env) -> None:
    """A chat ``custom`` tool goes upstream as a Responses custom tool; the model's
    ``custom_tool_call`` comes back as ``tool_calls[{type: "custom"}]``, streamed and not; the
    client's result goes back as a ``custom_tool_call_output`` the backend pairs with the call."""
    from tests.fakes import CustomToolCall

    env.add_account("alice")
    env.fake.script(
        None,
        CustomToolCall("apply_patch", PATCH, call_id="call_p1"),
        CustomToolCall("apply_patch", PATCH, call_id="call_p2"),
        Text("Patched."),
    )
    await env.start()
    client = env.openai()
    ask = [{"role": "user", "content": "add a.txt"}]
    done = await in_thread(
        client.chat.completions.create, model="gpt-5.5", messages=ask, tools=[GRAMMAR_TOOL]
    )
    (call,) = done.choices[0].message.tool_calls
    assert (call.type, call.id, call.custom.name, call.custom.input) == (
        "custom",
        "call_p1",
        "apply_patch",
        PATCH,
    )
    assert done.choices[0].finish_reason == "tool_calls" and done.choices[0].message.content is None
    tools = env.fake.responses_requests()[-1].json["tools"]
    assert tools == [
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Apply a patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" /.+/'},
        }
    ]

    chunks = await in_thread(
        lambda: list(
            client.chat.completions.create(model="gpt-5.5", messages=ask, tools=[GRAMMAR_TOOL], stream=True)
        )
    )
    pieces = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert pieces[0].type == "custom" and pieces[0].id == "call_p2"
    assert "".join((p.model_extra or {}).get("custom", {}).get("input", "") for p in pieces) == PATCH

    follow = [
        *ask,
        done.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_p1", "content": "Success. Added a.txt"},
    ]
    answer = await in_thread(
        client.chat.completions.create, model="gpt-5.5", messages=follow, tools=[GRAMMAR_TOOL]
    )
    assert answer.choices[0].message.content == "Patched."
    sent = env.fake.responses_requests()[-1].json["input"]
    assert sent[1:] == [
        {"type": "custom_tool_call", "call_id": "call_p1", "name": "apply_patch", "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": "call_p1", "output": "Success. Added a.txt"},
    ]
