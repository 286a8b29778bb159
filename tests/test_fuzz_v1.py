"""Hypothesis against a running gateway: no input to the ``/v1`` routes gets a 5xx (issue 16).

The fake upstream and ``codexgw serve`` run as processes (started once for the module); examples
are requests with generated methods, paths, bodies (JSON of the routes' fields and random values,
raw bytes, compressed or mislabelled), ``Content-Type``/``Content-Encoding`` and the headers codexgw
reads or relays, raw bytes included. Every answer must be below 500, and every error must be
OpenAI-shaped (``{"error": {"message", "type", "param", "code"}}``). The example count is bounded
(:data:`EXAMPLES`) so the module runs in well under 30 s.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = 300

PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/responses/compact", "/v1/models", "/v1/models/gpt-5.5",
         "/v1/embeddings", "/v1/modes", "/v1/responses/resp_123"]  # fmt: skip
FIELDS = ["model", "messages", "input", "stream", "tools", "tool_choice", "instructions", "reasoning",
          "prompt_cache_key", "previous_response_id", "store", "max_output_tokens", "temperature",
          "stream_options", "response_format", "text", "include", "n", "stop", "functions", "content",
          "role", "type", "name", "arguments", "parameters", "effort", "summary"]  # fmt: skip
HEADER_NAMES = ["session_id", "session-id", "x-codex-turn-metadata", "x-codex-turn-state", "originator",
                "authorization", "x-codexgw-reasoning", "openai-beta", "x-client-request-id",
                "x-codex-installation-id", "thread-id", "accept", "cookie"]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars
    | st.sampled_from(["gpt-5.5", "user", "assistant", "system", "tool", "function", "high", "message"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "x"])},
    optional={
        "content": json_values,
        "tool_calls": json_values,
        "name": json_values,
        "tool_call_id": json_values,
    },
)
plausible = st.fixed_dictionaries(
    {"model": st.sampled_from(["gpt-5.5", "gpt-5.4", "nope", ""]) | json_values},
    optional={
        "messages": st.lists(message, max_size=3) | json_values,
        "input": st.text(max_size=20) | st.lists(json_values, max_size=3),
        "stream": st.booleans() | json_values,
        **{name: json_values for name in FIELDS[4:16]},
    },
)


@st.composite
def valid_body(draw: st.DrawFn, path: str) -> dict[str, Any]:
    """A body the route accepts, with client text where it reaches the upstream's headers."""
    extra: dict[str, Any] = {"stream": draw(st.booleans())}
    if draw(st.booleans()):
        extra["prompt_cache_key"] = draw(st.text(min_size=1, max_size=20))
    if path == "/v1/chat/completions":
        return {
            "model": "gpt-5.5",
            "messages": [{"role": "user", "content": draw(st.text(max_size=20))}],
            **extra,
        }
    return {"model": "gpt-5.5", "input": draw(st.text(min_size=1, max_size=20)), **extra}


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["valid", "valid", "plausible", "any-json", "bytes", "text", "deep"]))
    path = draw(st.sampled_from(PATHS))
    if kind == "valid":
        path = draw(st.sampled_from(PATHS[:3]))
        body = json.dumps(draw(valid_body(path)), ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        )
    elif kind == "deep":
        depth = draw(st.integers(100, 50_000))
        body = b'{"model": "gpt-5.5", "input": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "plausible":
        body = json.dumps(draw(plausible)).encode()
    elif kind == "any-json":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = draw(st.text(max_size=100)).encode("utf-8", "surrogatepass")
    encoding = draw(st.sampled_from([None, None, "gzip", "deflate", "identity", "br", "zstd", "gzip-lie"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    elif encoding == "gzip-lie":  # says gzip, is not
        encoding = "gzip"
    headers = [(b"content-type", draw(st.sampled_from([b"application/json", b"application/json; charset=utf-8",
                                                        b"text/plain", b"application/x-www-form-urlencoded"])))]  # fmt: skip
    if encoding is not None:
        headers.append((b"content-encoding", encoding.encode()))
    extra = draw(
        st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.binary(min_size=1, max_size=40)), max_size=3)
    )
    for name, value in extra:
        value = bytes(b for b in value if b >= 0x20 and b != 0x7F).strip() or b"x"  # what HTTP/1.1 can carry
        headers.append((name.encode(), value))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH"]))
    return {"method": method, "path": path, "content": body, "headers": headers}


def _wait_for(path: Path, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().strip()
        time.sleep(0.05)
    raise TimeoutError(path)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake and ``codexgw serve`` as processes; the gateway's base URL."""
    tmp = tmp_path_factory.mktemp("fuzz")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CODEXGW_")}
    environ["XDG_CONFIG_HOME"] = str(tmp)
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "--accounts", "1", "--auth-json-dir", str(tmp),
         "--url-file", str(tmp / "fake.url")],
        cwd=ROOT, env=environ, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    server: subprocess.Popen[str] | None = None
    try:
        fake_url = _wait_for(tmp / "fake.url")
        store = str(tmp / "store")
        base = [sys.executable, "-m", "codexgw", "--store", store]
        subprocess.run([*base, "accounts", "import", str(tmp / "account1.json")], cwd=ROOT, env=environ,
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        server = subprocess.Popen(
            [*base, "serve", "--port", "0", "--upstream", f"{fake_url}/backend-api", "--auth-url", fake_url,
             "--probe-interval", "0", "--no-dashboard", "--log-level", "warning", "--keepalive-after", "0"],
            cwd=ROOT, env=environ, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stderr is not None
        url = ""
        while not url:
            line = server.stderr.readline()
            assert line, "codexgw serve exited before listening"
            if "/api/setup" in line:  # the setup-token notice names the URL
                url = line.split("POST ", 1)[1].split("/api/setup", 1)[0]
        yield url
    finally:
        for process in (server, fake):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(request=requests())
def test_no_v1_input_gets_a_5xx_and_every_error_is_openai_shaped(
    gateway_url: str, request: dict[str, Any]
) -> None:
    with httpx.Client(base_url=gateway_url, timeout=20) as client:
        r = client.request(
            request["method"], request["path"], content=request["content"], headers=request["headers"]
        )
    assert r.status_code < 500, (request, r.status_code, r.text[:500])
    if r.status_code >= 400:
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, r.text
        assert isinstance(error["message"], str) and error["message"]
