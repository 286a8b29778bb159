"""`make demo`: the whole path on a machine with no ChatGPT login.

Starts the fake upstream (OAuth server + Codex backend from tests/fakes) with one demo account,
imports that account's Codex ``auth.json`` into a fresh store with the built ``dist/codexgw.pyz``,
serves it, and streams one chat completion through it, printing the text as it arrives.
Everything runs on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "codexgw.pyz"
DELTA_INTERVAL_MS = 150
"""The fake streams its answer a word at a time, this far apart, so a person sees tokens arrive."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"demo: timed out waiting for {what}")


def plain_python() -> str:
    """A python3 outside the venv, as on a server with nothing installed."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


def main() -> None:
    if not PYZ.exists():
        raise SystemExit("demo: dist/codexgw.pyz is missing; run `make pyz` first")
    work = Path(tempfile.mkdtemp(prefix="codexgw-demo-"))
    url_file = work / "fake-url"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print("1. starting the fake upstream (OAuth server + Codex backend) on 127.0.0.1")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.fakes", "--accounts", "1", "--auth-json-dir", str(work),
                 "--url-file", str(url_file), "--delta-interval-ms", str(DELTA_INTERVAL_MS)],
                cwd=ROOT, stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait_for(lambda: url_file.exists() and url_file.read_text().strip(), "the fake upstream")
        fake = url_file.read_text().strip()
        auth_json = sorted(work.glob("account*.json"))[0]
        store = work / "store"
        pyz = [plain_python(), str(PYZ), "--store", str(store)]

        print(f"2. importing the demo login: codexgw.pyz accounts import {auth_json.name} --name demo")
        subprocess.run([*pyz, "accounts", "import", str(auth_json), "--name", "demo"], check=True, env=env)
        subprocess.run([*pyz, "accounts", "list"], check=True, env=env)

        port = free_port()
        print(f"3. serving: codexgw.pyz serve --port {port} --upstream {fake}/backend-api --auth-url {fake}")
        server_log = (work / "serve.log").open("w")
        procs.append(
            subprocess.Popen(
                [*pyz, "serve", "--port", str(port), "--upstream", f"{fake}/backend-api", "--auth-url", fake],
                env=env,
                stderr=server_log,
            )
        )
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "codexgw to accept connections")

        print("4. streaming a chat completion through codexgw:\n")
        body = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "Say hello"}]}
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=30) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line[6:]).get("choices", []):
                        print(choice["delta"].get("content") or "", end="", flush=True)
        print("\n\ndemo: OK, the whole path works. See the README for the real quick start.")
        print("codexgw's log of this run:")
        print((work / "serve.log").read_text().rstrip())
    except BaseException:
        log_path = work / "serve.log"
        if log_path.exists():
            print(f"demo: failed; codexgw's log:\n{log_path.read_text()}", file=sys.stderr)
        raise
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
