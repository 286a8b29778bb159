"""End to end with the real Codex CLI (npm ``@openai/codex``) against codexgw and the fake upstream.

The CLI is installed once into ``.cache/codex`` (gitignored; ``npm install --prefix``) and runs with
the hermetic ``config.toml`` of codex-protocol.md §12.1 in a temporary ``CODEX_HOME``, so it contacts
nothing but codexgw on 127.0.0.1. Skipped only when ``npm`` is not installed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import Env
from tests.fakes import CustomToolCall, Failed, Hold, Text, ToolCall, UsageLimit

pytestmark = pytest.mark.trio

CODEX_VERSION = "0.171.0"
"""The Codex CLI release these tests pin (codex-protocol.md §12.1 was recorded with 0.169.0; what
Codex sends over the Responses WebSocket, which these tests rely on, was recorded with 0.171.0)."""
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "codex"
API_KEY = "test-gateway-key"


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """The ``codex`` executable, installed into ``.cache/codex`` on first use (~400 MB, then cached)."""
    binary = CACHE / "node_modules" / ".bin" / "codex"
    package = CACHE / "node_modules" / "@openai" / "codex" / "package.json"
    if binary.exists() and package.exists() and json.loads(package.read_text())["version"] == CODEX_VERSION:
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: these tests run the real Codex CLI (npm install @openai/codex)")
    CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", f"@openai/codex@{CODEX_VERSION}"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0 or not binary.exists():
        pytest.fail(f"npm install @openai/codex@{CODEX_VERSION} failed:\n{result.stdout}\n{result.stderr}")
    return binary


def write_config(home: Path, base_url: str, extra: str = "") -> None:
    """The hermetic config of codex-protocol.md §12.1 (``extra``: more lines for the provider)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f"""model = "gpt-5.5"
model_provider = "codexgw"
check_for_update_on_startup = false
[analytics]
enabled = false
[features]
plugins = false
remote_plugin = false
apps = false
in_app_updates = false
daemon_auto_start = false
[model_providers.codexgw]
name = "codexgw"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "CODEXGW_API_KEY"
stream_max_retries = 1
request_max_retries = 1
{extra}"""
    )


async def codex_exec(
    codex_bin: Path, env: Env, prompt: str, *args: str, provider_extra: str = ""
) -> subprocess.CompletedProcess[bytes]:
    """Run ``codex exec --skip-git-repo-check --ephemeral PROMPT`` with stdin closed (§12.1)."""
    work = env.tmp / "work"
    work.mkdir(exist_ok=True)
    write_config(env.tmp / "codex-home", env.url, provider_extra)
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(env.tmp),
        "CODEX_HOME": str(env.tmp / "codex-home"),
        "CODEXGW_API_KEY": API_KEY,
        "TZ": "UTC",
        "NO_COLOR": "1",
    }
    with trio.fail_after(120):
        return await trio.run_process(
            [str(codex_bin), "exec", "--skip-git-repo-check", "--ephemeral", *args, prompt],
            env=child_env,
            cwd=str(work),
            stdin=b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def output(result: subprocess.CompletedProcess[bytes]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout.decode()}\nstderr:\n{result.stderr.decode()}"


async def test_codex_exec_gets_a_text_answer(codex_bin: Path, env: Env) -> None:
    """``codex exec "say hi"`` prints the fake's answer; the gateway key is checked."""
    env.add_account("alice")
    env.fake.script(None, Text("Hi from codexgw."))
    await env.start(api_key=API_KEY)
    result = await codex_exec(codex_bin, env, "say hi")
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "Hi from codexgw."
    (upstream,) = env.fake.responses_requests()
    assert upstream.headers["originator"] == "codex_exec"
    assert upstream.headers["session_id"] == upstream.json["prompt_cache_key"]
    assert upstream.json["input"][-1]["content"][0]["text"] == "say hi"


async def test_codex_tool_round_trip(codex_bin: Path, env: Env) -> None:
    """The fake asks for ``exec_command``; Codex runs it and sends the output back in a follow-up."""
    env.add_account("alice")
    command = json.dumps({"cmd": "echo tool-ran-ok"})
    env.fake.script(None, ToolCall("exec_command", command, call_id="call_tool_1"), Text("The command ran."))
    await env.start()
    result = await codex_exec(codex_bin, env, "run echo", "--dangerously-bypass-approvals-and-sandbox")
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "The command ran."
    first, second = env.fake.responses_requests()
    items = second.json["input"][len(first.json["input"]) :]
    assert [i["type"] for i in items] == ["function_call", "function_call_output"]
    assert items[1]["call_id"] == "call_tool_1"
    assert "tool-ran-ok" in items[1]["output"]
    assert second.headers["session_id"] == first.headers["session_id"]


async def test_codex_apply_patch_custom_tool_round_trip(codex_bin: Path, env: Env) -> None:
    """The fake streams a freeform ``apply_patch`` call (``custom_tool_call``); Codex applies the patch
    in its workdir and sends the ``custom_tool_call_output`` back in a follow-up."""
    env.add_account("alice")
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch"
    env.fake.script(None, CustomToolCall("apply_patch", patch, call_id="call_patch_1"), Text("Patched."))
    await env.start()
    work = env.tmp / "work"
    result = await codex_exec(codex_bin, env, "add hello.txt", "-s", "workspace-write", "-C", str(work))
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "Patched."
    assert (work / "hello.txt").read_text() == "hi\n"
    first, second = env.fake.responses_requests()
    (tool,) = [t for t in first.json["tools"] if t.get("name") == "apply_patch"]
    assert tool["type"] == "custom" and tool["format"]["type"] == "grammar"
    items = second.json["input"][len(first.json["input"]) :]
    assert [i["type"] for i in items] == ["custom_tool_call", "custom_tool_call_output"]
    assert items[0]["input"] == patch and items[0]["name"] == "apply_patch"
    assert items[1]["call_id"] == "call_patch_1"
    assert "Success" in items[1]["output"] and "hello.txt" in items[1]["output"]


async def test_exhausted_pool_shows_codex_usage_limit_message(codex_bin: Path, env: Env) -> None:
    """Every account at its limit: HTTP 429 usage_limit_reached; Codex prints the reset time, no retry."""
    env.add_account("alice")
    env.fake.script(None, UsageLimit(resets_in_s=7200))
    await env.start()
    resets_at = env.clock.now + 7200
    result = await codex_exec(codex_bin, env, "say hi")
    assert result.returncode != 0, output(result)
    text = result.stderr.decode() + result.stdout.decode()
    assert "usage limit" in text, output(result)
    times = {
        dt.datetime.fromtimestamp(t, dt.UTC).strftime("%-I:%M %p")
        for t in (resets_at - 60, resets_at, resets_at + 60)
    }
    assert any(t in text for t in times), (times, output(result))
    assert len(env.fake.responses_requests()) == 1


async def test_stream_failing_before_output_fails_over_unseen(codex_bin: Path, env: Env) -> None:
    """The first account's stream fails (overloaded) before any output: the other account answers;
    Codex sees no error and does not retry."""
    env.add_account("alice")
    env.add_account("bob")
    env.fake.script(None, Failed("server_is_overloaded"), Text("Answer from the second account."))
    await env.start()
    result = await codex_exec(codex_bin, env, "say hi")
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "Answer from the second account."
    assert "Reconnecting" not in result.stderr.decode() and "ERROR" not in result.stderr.decode()
    served = [r.headers["chatgpt-account-id"] for r in env.fake.responses_requests()]
    assert len(served) == 2 and served[0] != served[1]


# -- over the Responses WebSocket (supports_websockets = true) ----------------------------------------

WS = "supports_websockets = true\n"


def ws_turns(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The access-log lines of WebSocket turns (``WS /v1/responses …``)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "codexgw.access" and r.getMessage().startswith("WS ")
    ]


async def test_codex_exec_over_websocket(
    codex_bin: Path, env: Env, caplog: pytest.LogCaptureFixture, pumps: list[Any]
) -> None:
    """Codex opens the WebSocket, warms up (answered by codexgw, no upstream call), then sends its
    turn as ``previous_response_id`` + the new items; codexgw sends the whole conversation upstream.
    The turn's frames are written from the relay's read loop, uncompressed on the socket Codex
    opened with permessage-deflate, and Codex reads them."""
    env.add_account("alice")
    env.fake.script(None, Text("Hi over the WebSocket."))
    await env.start(api_key=API_KEY)
    with caplog.at_level(logging.INFO, logger="codexgw.access"):
        result = await codex_exec(codex_bin, env, "say hi", provider_extra=WS)
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "Hi over the WebSocket."
    (upstream,) = env.fake.responses_requests()
    assert upstream.json["input"][0]["role"] == "developer"  # the warm-up's base instructions
    assert upstream.json["input"][-1]["content"][0]["text"] == "say hi"
    assert upstream.headers["originator"] == "codex_exec"
    assert not [r for r in caplog.records if r.name == "codexgw.access" and r.getMessage().startswith("POST")]
    assert len(ws_turns(caplog)) == 2  # the warm-up and the turn
    assert len(pumps) == 1


async def test_codex_tool_round_trip_over_websocket(
    codex_bin: Path, env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """The tool follow-up comes on the same socket with only the ``function_call_output``; codexgw
    expands it from the socket's turns (``store: false`` included)."""
    env.add_account("alice")
    command = json.dumps({"cmd": "echo tool-ran-ok"})
    env.fake.script(None, ToolCall("exec_command", command, call_id="call_ws_1"), Text("The command ran."))
    await env.start()
    with caplog.at_level(logging.INFO, logger="codexgw.access"):
        result = await codex_exec(
            codex_bin, env, "run echo", "--dangerously-bypass-approvals-and-sandbox", provider_extra=WS
        )
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "The command ran."
    first, second = env.fake.responses_requests()
    items = second.json["input"][len(first.json["input"]) :]
    assert [i["type"] for i in items] == ["function_call", "function_call_output"]
    assert items[1]["call_id"] == "call_ws_1" and "tool-ran-ok" in items[1]["output"]
    assert len(ws_turns(caplog)) == 3  # warm-up, turn, follow-up: one socket, no HTTP fallback


async def test_codex_shows_the_usage_limit_over_websocket(codex_bin: Path, env: Env) -> None:
    """Every account at its limit: an ``error`` event with status 429 and ``resets_at``; Codex prints
    its usage-limit message with the reset time and does not retry."""
    env.add_account("alice")
    env.fake.script(None, UsageLimit(resets_in_s=7200))
    await env.start()
    resets_at = env.clock.now + 7200
    result = await codex_exec(codex_bin, env, "say hi", provider_extra=WS)
    assert result.returncode != 0, output(result)
    text = result.stderr.decode() + result.stdout.decode()
    assert "usage limit" in text, output(result)
    times = {
        dt.datetime.fromtimestamp(t, dt.UTC).strftime("%-I:%M %p")
        for t in (resets_at - 60, resets_at, resets_at + 60)
    }
    assert any(t in text for t in times), (times, output(result))
    assert len(env.fake.responses_requests()) == 1


async def test_config_written_by_configure_codex_works(codex_bin: Path, env: Env) -> None:
    """``codexgw configure codex`` on a config without the provider gives Codex a working setup."""
    from click.testing import CliRunner

    from codexgw.cli.configure import configure

    env.add_account("alice")
    env.fake.script(None, Text("Configured."))
    await env.start(api_key=API_KEY)
    home = env.tmp / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        "check_for_update_on_startup = false\n[analytics]\nenabled = false\n[features]\nplugins = false\n"
        "remote_plugin = false\napps = false\nin_app_updates = false\ndaemon_auto_start = false\n"
    )
    result = CliRunner().invoke(
        configure,
        [
            "codex",
            "--codex-home",
            str(home),
            "--base-url",
            f"{env.url}/v1",
            "--model",
            "gpt-5.5",
            "--env-key",
        ],
    )
    assert result.exit_code == 0, result.output
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(env.tmp),
        "CODEX_HOME": str(home),
        "CODEXGW_API_KEY": API_KEY,
    }
    with trio.fail_after(120):
        ran = await trio.run_process(
            [str(codex_bin), "exec", "--skip-git-repo-check", "--ephemeral", "say hi"],
            env=child_env,
            cwd=str(env.tmp),
            stdin=b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert ran.returncode == 0, output(ran)
    assert ran.stdout.decode().strip() == "Configured."


# -- keep-alive before the first output ----------------------------------------------------------------


def release_when_committed(monkeypatch: pytest.MonkeyPatch, hold: Hold) -> None:
    """Release ``hold`` once codexgw committed a Responses stream to its keep-alive (the headers and
    the first comment are out), so the upstream's answer comes only after the comments began."""
    import codexgw.api.responses as route

    original = route.keep_alive_then_relay

    async def committed(*args: Any, **kwargs: Any) -> Any:
        hold.release.set()
        async for chunk in original(*args, **kwargs):
            yield chunk

    monkeypatch.setattr(route, "keep_alive_then_relay", committed)


async def test_codex_over_http_after_a_silent_start(
    codex_bin: Path, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A silent upstream: Codex gets the headers and comments, then the answer, as usual."""
    env.add_account("alice")
    hold = Hold(then=Text("Worth the wait."))
    env.fake.script(None, hold)
    release_when_committed(monkeypatch, hold)
    await env.start(keepalive_after_s=0.1, heartbeat_s=0.1)
    result = await codex_exec(codex_bin, env, "think")
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "Worth the wait."


async def test_codex_over_http_usage_limit_after_the_keepalive(
    codex_bin: Path, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every account at its limit, found out after the comments began: the stream ends with
    ``response.failed`` carrying the usage-limit code and reset. Codex 0.171 retries an in-stream
    failure once ("Reconnecting... 1/1"); the retry finds the account cooling and gets the HTTP 429
    at once, so Codex shows its usage-limit message with the reset time; the upstream sees one
    request."""
    env.add_account("alice")
    hold = Hold(then=UsageLimit(resets_in_s=7200))
    env.fake.script(None, hold)
    release_when_committed(monkeypatch, hold)
    await env.start(keepalive_after_s=0.1, heartbeat_s=0.1)
    resets_at = env.clock.now + 7200
    result = await codex_exec(codex_bin, env, "say hi")
    assert result.returncode != 0, output(result)
    text = result.stderr.decode() + result.stdout.decode()
    assert "usage limit" in text, output(result)
    times = {
        dt.datetime.fromtimestamp(t, dt.UTC).strftime("%-I:%M %p")
        for t in (resets_at - 60, resets_at, resets_at + 60)
    }
    assert any(t in text for t in times), (times, output(result))
    assert len(env.fake.responses_requests()) == 1


async def test_codex_websocket_survives_a_silence_longer_than_its_idle_timeout(
    codex_bin: Path, env: Env
) -> None:
    """Codex's idle timer counts text frames only (pings do not reset it): with a 1.5 s
    ``stream_idle_timeout_ms`` and an upstream silent for 3 s before its first output, codexgw's
    ``keepalive`` frames (every 0.3 s here) keep the turn alive on its one socket. The silence is
    real time: Codex is a separate process whose clock cannot be faked."""
    env.add_account("alice")
    hold = Hold(after_headers=True, then=Text("After a long think."))
    env.fake.script(None, hold)
    await env.start(keepalive_after_s=0.3, heartbeat_s=0.3)

    async def release_after_silence() -> None:
        await hold.reached.wait()
        await trio.sleep(3.0)
        hold.release.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_after_silence)
        result = await codex_exec(
            codex_bin, env, "think", provider_extra=WS + "stream_idle_timeout_ms = 1500\n"
        )
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "After a long think."
    assert "Reconnecting" not in result.stderr.decode() and "Falling back" not in result.stderr.decode()
    assert len(env.fake.responses_requests()) == 1
