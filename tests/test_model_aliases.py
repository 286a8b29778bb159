"""Model aliases (codexgw.translate.model_names): resolution, and end to end through the openai SDK
on every route (chat, responses, compact) and in /v1/models."""

from __future__ import annotations

import pytest

from codexgw.translate.chat_request import chat_to_responses
from codexgw.translate.model_names import (
    DEFAULT_ALIASES,
    SMALL_CODEX_MODEL,
    check_alias,
    merged_aliases,
    resolve_model,
)
from codexgw.translate.params import prepare_responses_request
from codexgw.upstream.catalog import BUILTIN_MODELS, openai_model_list
from tests.conftest import Env, in_thread
from tests.fakes import Text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("codex-mini", "gpt-5.4-mini"),
        ("compact", "gpt-5.4-mini"),
        ("codex-compact", "gpt-5.4-mini"),
        ("codex", "gpt-5.4-mini"),
        ("mini", "gpt-5.4-mini"),
        ("mini-high", "gpt-5.4-mini-high"),
        ("gpt-5.5", "gpt-5.5"),
        ("gpt-5.5-high", "gpt-5.5-high"),
        ("unknown-model", "unknown-model"),
    ],
)
def test_default_aliases(name: str, expected: str) -> None:
    assert resolve_model(name) == expected


def test_user_aliases_override_and_carry_efforts() -> None:
    aliases = merged_aliases({"fast": "gpt-5.4-mini-low", "codex": "gpt-5.3-codex"})
    assert resolve_model("fast", aliases) == "gpt-5.4-mini-low"
    assert resolve_model("fast-xhigh", aliases) == "gpt-5.4-mini-xhigh"  # the client's suffix wins
    assert resolve_model("codex", aliases) == "gpt-5.3-codex"
    assert resolve_model("codex-mini", aliases) == SMALL_CODEX_MODEL
    assert check_alias("two words", "x") and check_alias("a", "") and check_alias("a", "a")
    assert check_alias("fast", "gpt-5.4-mini") is None


def test_translators_resolve_aliases() -> None:
    chat = chat_to_responses(
        {"model": "mini-high", "messages": [{"role": "user", "content": "hi"}]}, default_instructions=""
    )
    assert chat.body["model"] == "gpt-5.4-mini" and chat.body["reasoning"]["effort"] == "high"
    responses = prepare_responses_request(
        {"model": "fast", "input": "hi"}, default_instructions="", aliases={"fast": "gpt-5.4-mini-low"}
    )
    assert responses.body["model"] == "gpt-5.4-mini" and responses.body["reasoning"]["effort"] == "low"


def test_model_list_shows_aliases_once() -> None:
    ids = [m["id"] for m in openai_model_list(BUILTIN_MODELS)["data"]]
    assert set(DEFAULT_ALIASES) <= set(ids) and len(ids) == len(set(ids))
    assert ids.index("gpt-5.5") < ids.index("codex-mini")  # real models first
    custom = [m["id"] for m in openai_model_list(BUILTIN_MODELS, aliases={"fast": "gpt-5.5"})["data"]]
    assert "fast" in custom and "codex-mini" not in custom


async def test_aliases_through_the_openai_sdk(env: Env) -> None:
    """Every route accepts a built-in and a configured alias and sends the real model upstream."""
    env.add_account("alice")
    env.fake.script(None, Text("one"), Text("two"))
    await env.start(model_aliases=merged_aliases({"fast": "gpt-5.4-mini-low"}))
    client = env.openai()
    listed = [m.id for m in await in_thread(client.models.list)]
    assert {"codex-mini", "compact", "fast"} <= set(listed)

    chat = await in_thread(
        client.chat.completions.create, model="codex-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content == "one"
    assert env.fake.responses_requests()[-1].json["model"] == "gpt-5.4-mini"

    response = await in_thread(client.responses.create, model="fast", input="hi")
    assert response.output_text == "two"
    sent = env.fake.responses_requests()[-1].json
    assert sent["model"] == "gpt-5.4-mini" and sent["reasoning"]["effort"] == "low"

    await in_thread(client.responses.compact, model="compact", input=[{"role": "user", "content": "long"}])
    [compact] = [r for r in env.fake.requests if r.path.endswith("/codex/responses/compact")]
    assert compact.json["model"] == "gpt-5.4-mini"
