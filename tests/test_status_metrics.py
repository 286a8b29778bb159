"""End to end: strategies and strict pinning from the store, GET /status, GET /metrics, the access log,
and ``codexgw status`` / ``accounts set|pin|unpin|strategy`` — with three fake accounts, and no token
string anywhere an operator can look."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from click.testing import CliRunner, Result

from codexgw.cli.main import main
from codexgw.cli.serve import _JsonFormatter
from codexgw.store import Store
from codexgw.store.pool_settings import read_pool_settings
from tests.conftest import Env, in_thread
from tests.fakes import FakeUpstream, Text, Usage, UsageLimit

TIMEOUT = httpx.Timeout(30.0)


def every_token(fake: FakeUpstream) -> list[str]:
    """Every access, refresh and id token the fake ever minted (current and rotated ones)."""
    return [*fake._access, *fake._refresh, *fake._id_tokens]


def assert_no_tokens(fake: FakeUpstream, *texts: str) -> None:
    tokens = every_token(fake)
    assert tokens
    for text in texts:
        for token in tokens:
            assert token not in text
            assert token[-24:] not in text  # not even a tail of one


def served_by(env: Env) -> list[str]:
    names = {a.chatgpt_account_id: a.email.split("@")[0] for a in env.fake.accounts}
    return [names[r.headers["chatgpt-account-id"]] for r in env.fake.responses_requests()]


def chat(topic: str, **kw: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": topic}], **kw}


def cli(env: Env, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(env.store_dir), *args], catch_exceptions=False)


async def get_json(env: Env, path: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        r = await client.get(f"{env.url}{path}", **kw)
    assert r.status_code == 200, r.text
    return r.json()


async def get_metrics(env: Env) -> str:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        r = await client.get(f"{env.url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return r.text


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_two_accounts_at_their_limit_send_all_traffic_to_the_third(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """alice and bob answer 429: every request lands on carol, no client error; /status, /metrics,
    the logs and ``codexgw status`` show it, and none of them shows a token."""
    caplog.set_level(logging.DEBUG)
    alice = env.add_account("alice")
    bob = env.add_account("bob", plan_type="pro")
    env.add_account("carol")
    env.fake.script(alice, UsageLimit(resets_in_s=600))
    env.fake.script(bob, UsageLimit(resets_in_s=1200))
    env.fake.script(None, *[Text("ok", usage=Usage(input_tokens=11, output_tokens=7))] * 5)
    await env.start(strategy="round-robin")
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for n in range(5):
            r = await client.post(
                f"{env.url}/v1/chat/completions", json=chat(f"topic {n}", stream=n % 2 == 1)
            )
            assert r.status_code == 200, r.text
    assert served_by(env) == ["alice", "bob", "carol", "carol", "carol", "carol", "carol"]

    status = await get_json(env, "/status")
    pool, rows = status["pool"], {r["name"]: r for r in status["accounts"]}
    assert pool["strategy"] == "round-robin" and pool["pinned"] is None
    assert pool["accounts"] == 3 and pool["usable"] == 1
    assert 0 < pool["headroom"]["accounts"] <= 1
    assert rows["alice"]["cooldown"]["reason"] == "usage_limit"
    assert abs(rows["alice"]["cooldown"]["until"] - (env.clock.now + 600)) <= 2
    assert abs(rows["bob"]["cooldown"]["in_s"] - 1200) <= 2
    assert not rows["alice"]["usable"] and rows["carol"]["usable"]
    assert rows["carol"]["requests"] == 5 and rows["carol"]["errors"] == 0
    assert rows["alice"]["errors"] == 1 and "usage limit" in rows["alice"]["last_error"].lower()
    assert rows["bob"]["plan_type"] == "pro" and rows["carol"]["email"] == "carol@example.com"
    window = rows["carol"]["quota"]["primary"]
    assert window["window_minutes"] == 300 and window["used_percent"] == 12 and window["resets_at"] > 0

    metrics = await get_metrics(env)
    assert metric(metrics, "codexgw_failovers_total", account="alice") == 1
    assert metric(metrics, "codexgw_failovers_total", account="bob", reason="usage_limit_reached") == 1
    assert metric(metrics, "codexgw_requests_total", route="/v1/chat/completions", account="carol") == 5
    assert metric(metrics, "codexgw_requests_total", status="200", model="gpt-5.5") == 5
    assert metric(metrics, "codexgw_tokens_total", kind="input", account="carol") == 55
    assert metric(metrics, "codexgw_tokens_total", kind="output") == 35
    assert 1190 <= metric(metrics, "codexgw_account_cooldown_seconds", account="bob") <= 1201
    assert metric(metrics, "codexgw_account_cooldown_seconds", account="carol") == 0
    assert metric(metrics, "codexgw_account_usable", account="carol") == 1
    assert metric(metrics, "codexgw_upstream_ttfb_seconds_count", account="carol") == 5
    assert metric(metrics, "codexgw_upstream_latency_seconds_count") == 7
    assert metric(metrics, "codexgw_active_streams") == 0
    assert metric(metrics, "codexgw_account_quota_used_percent", account="alice", window="primary") == 100

    shown = await in_thread(cli, env, "status", "--url", env.url)
    assert shown.exit_code == 0, shown.output
    assert "round-robin" in shown.output and "usable 1/3" in shown.output
    assert "cooling" in shown.output and "carol" in shown.output and "5h" in shown.output
    nothing = await in_thread(cli, env, "status", "--url", "127.0.0.1:1")  # an explicit --url: no fallback
    assert nothing.exit_code == 1
    assert nothing.stderr.startswith("error: no codexgw server answers at http://127.0.0.1:1")
    offline = await in_thread(cli, env, "status", "--offline")
    assert offline.exit_code == 0 and "from the store" in offline.output and "alice" in offline.output
    as_json = json.loads((await in_thread(cli, env, "status", "--url", env.url, "--json")).output)
    assert as_json["source"] == "server"
    assert_no_tokens(
        env.fake,
        json.dumps(status),
        metrics,
        caplog.text,
        shown.output,
        offline.output,
        "\n".join(_JsonFormatter().format(r) for r in caplog.records),
    )


async def test_a_pinned_account_that_429s_gives_the_client_429(env: Env) -> None:
    """Strict pin (set with ``accounts pin`` while serving): bob's usage limit reaches the client as
    429 and no other account is tried; ``unpin`` lets the strategy choose again."""
    env.add_account("alice")
    bob = env.add_account("bob", plan_type="pro")
    env.add_account("carol")
    await env.start()
    gw = env.gateway
    result = await in_thread(cli, env, "accounts", "pin", "bob")
    assert result.exit_code == 0 and result.output == "pinned bob\n"
    bob_id = next(i for i, a in gw.accounts.items() if a.name == "bob")
    await wait_until(lambda: gw.pool.pinned == bob_id)
    env.fake.script(bob, UsageLimit(resets_in_s=900))
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        r = await client.post(f"{env.url}/v1/chat/completions", json=chat("hi"))
        assert r.status_code == 429
        assert r.json()["error"]["type"] == "usage_limit_reached"
        assert r.json()["error"]["plan_type"] == "pro"
        r2 = await client.post(f"{env.url}/v1/chat/completions", json=chat("again"))
        assert r2.status_code == 429 and 890 <= int(r2.headers["retry-after"]) <= 901
        assert served_by(env) == ["bob"]
        status = await get_json(env, "/status")
        assert status["pool"]["pinned"] == "bob"
        assert [r["name"] for r in status["accounts"] if r["pinned"]] == ["bob"]
        metrics = await get_metrics(env)
        assert metric(metrics, "codexgw_requests_total", status="429") == 2
        assert metric(metrics, "codexgw_failovers_total") == 1  # the one move that ended at the pin

        assert (await in_thread(cli, env, "accounts", "unpin")).output == "unpinned\n"
        await wait_until(lambda: gw.pool.pinned is None)
        r3 = await client.post(f"{env.url}/v1/chat/completions", json=chat("free again"))
        assert r3.status_code == 200
    assert served_by(env)[-1] in ("alice", "carol")
    assert (await in_thread(cli, env, "accounts", "unpin")).output == "not pinned\n"


async def test_strategy_and_weight_from_the_cli_reach_a_running_server(env: Env) -> None:
    """``serve --strategy`` is saved; ``accounts strategy`` and ``accounts set --weight`` apply live."""
    env.add_account("alice")
    env.add_account("bob")
    await env.start(strategy="weighted")
    gw = env.gateway
    assert gw.pool.strategy_name == "weighted"
    assert read_pool_settings(gw.store).strategy == "weighted"
    result = await in_thread(cli, env, "accounts", "set", "bob", "--weight", "0.25")
    assert result.exit_code == 0 and result.output == "bob: weight 0.25\n"
    await wait_until(lambda: any(a.name == "bob" and a.weight == 0.25 for a in gw.accounts.values()))
    assert (await in_thread(cli, env, "accounts", "strategy", "quota")).output == "strategy quota\n"
    await wait_until(lambda: gw.pool.strategy_name == "quota")
    assert (await in_thread(cli, env, "accounts", "strategy")).output == "quota\n"
    status = await get_json(env, "/status")
    assert status["pool"]["strategy"] == "quota"
    assert {r["name"]: r["weight"] for r in status["accounts"]} == {"alice": 1.0, "bob": 0.25}
    bad = await in_thread(cli, env, "accounts", "set", "nobody", "--weight", "1")
    assert bad.exit_code == 1 and "no account named 'nobody'" in bad.output


async def test_status_and_metrics_need_the_api_key_when_one_is_set(env: Env) -> None:
    env.add_account("alice")
    await env.start(api_key="sk-gateway-key")
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for path in ("/status", "/metrics"):
            assert (await client.get(f"{env.url}{path}")).status_code == 401
            ok = await client.get(f"{env.url}{path}", headers={"authorization": "Bearer sk-gateway-key"})
            assert ok.status_code == 200
    refused = await in_thread(cli, env, "status", "--url", env.url)
    assert refused.exit_code == 1 and "--api-key" in refused.output
    shown = await in_thread(cli, env, "status", "--url", env.url, "--api-key", "sk-gateway-key")
    assert shown.exit_code == 0 and "alice" in shown.output


def test_metrics_registries_are_per_server() -> None:
    """Two gateways in one process count separately (no global registry)."""
    from codexgw.metrics import Metrics

    one, two = Metrics(), Metrics()
    one.count_failover("alice", "x")
    assert b"codexgw_failovers_total" in one.render()[0]
    assert b'account="alice"' not in two.render()[0]


async def test_access_log_one_line_per_request_with_fields(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """One ``codexgw.access`` line per request (streams when they end): method, path, status,
    account, model, tokens, duration; ``--log-format json`` carries the same as JSON keys."""
    caplog.set_level(logging.INFO, logger="codexgw.access")
    env.add_account("alice")
    env.fake.script(None, *[Text("ok", usage=Usage(input_tokens=3, output_tokens=2))] * 2)
    await env.start()
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        assert (await client.post(f"{env.url}/v1/chat/completions", json=chat("a"))).status_code == 200
        streamed = await client.post(f"{env.url}/v1/chat/completions", json=chat("b", stream=True))
        assert streamed.status_code == 200 and "[DONE]" in streamed.text
        assert (await client.get(f"{env.url}/nowhere")).status_code == 404
    lines = [r for r in caplog.records if r.name == "codexgw.access"]
    assert len(lines) == 3
    plain, stream, missing = (json.loads(_JsonFormatter().format(r)) for r in lines)
    assert plain["message"].startswith("POST /v1/chat/completions 200 account=alice model=gpt-5.5")
    assert (plain["account"], plain["model"], plain["tokens_in"], plain["tokens_out"]) == (
        "alice",
        "gpt-5.5",
        3,
        2,
    )
    assert plain["duration_ms"] >= 0 and plain["outcome"] is None
    assert stream["outcome"] == "completed" and stream["tokens_out"] == 2 and stream["status"] == 200
    assert (missing["status"], missing["path"], missing["account"]) == (404, "/nowhere", None)
    metrics = await get_metrics(env)
    assert metric(metrics, "codexgw_requests_total", route="unmatched", status="404") == 1


def test_status_from_store_without_a_server(tmp_path: Path) -> None:
    """``codexgw status --offline`` on an empty store says how to add an account (a store that does
    not exist is an error naming its path: a mistyped --store must not look like an empty pool)."""
    missing = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "status", "--offline"])
    assert missing.exit_code == 1 and f"error: no store at {tmp_path / 's'}" in missing.stderr
    Store.open(tmp_path / "s")
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "status", "--offline"])
    assert result.exit_code == 0
    assert "from the store" in result.output and "no accounts" in result.output
    assert "login pkce" in result.output and "accounts import" in result.output
