"""End to end with the real Codex CLI (npm ``@openai/codex``) against codexgw and the fake upstream.

The CLI is installed once into ``.cache/codex`` (gitignored; ``npm install --prefix``) and runs with
the hermetic ``config.toml`` of codex-protocol.md §12.1 in a temporary ``CODEX_HOME``, so it contacts
nothing but codexgw on 127.0.0.1. Skipped only when ``npm`` is not installed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from tests.conftest import Env
from tests.fakes import CustomToolCall, Failed, Text, ToolCall, UsageLimit

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


async def test_websocket_provider_falls_back_to_http(codex_bin: Path, env: Env) -> None:
    """With ``supports_websockets = true`` Codex tries a WebSocket first; the 426 sends it to HTTP."""
    env.add_account("alice")
    env.fake.script(None, Text("Over HTTP after all."))
    await env.start()
    result = await codex_exec(codex_bin, env, "say hi", provider_extra="supports_websockets = true\n")
    assert result.returncode == 0, output(result)
    assert result.stdout.decode().strip() == "Over HTTP after all."
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
