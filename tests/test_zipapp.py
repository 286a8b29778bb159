"""The built ``codexgw.pyz`` run with a plain ``python3``: no venv on PATH, no PYTHONPATH.

This is the issue's "done when": import a Codex auth.json with the zipapp, serve with it against
the fake upstream, and let the official ``openai`` SDK talk to it (chat and responses, streamed
and not).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from build_zipapp import build

ROOT = Path(__file__).resolve().parent.parent


def plain_python() -> str:
    """The interpreter the venv was made from: a python3 with none of the project's packages."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


def clean_env(tmp: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=path, HOME=str(tmp), SHIV_ROOT=str(tmp / "shiv"))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dist") / "codexgw.pyz")


@pytest.fixture
def fake_url(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    url_file = tmp_path / "fake-url"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes", "--accounts", "1", "--auth-json-dir", str(tmp_path), "--url-file",
         str(url_file)],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (url_file.exists() and url_file.read_text().strip()):
            assert time.monotonic() < deadline, "the fake upstream did not start"
            assert proc.poll() is None, "the fake upstream exited"
            time.sleep(0.05)
        yield url_file.read_text().strip(), sorted(tmp_path.glob("account*.json"))[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pyz_runs_with_plain_python_and_serves_the_openai_sdk(
    pyz: Path, fake_url: tuple[str, Path], tmp_path: Path
) -> None:
    fake, auth_json = fake_url
    env = clean_env(tmp_path)
    python = plain_python()
    check = subprocess.run([python, "-c", "import quart"], env=env, capture_output=True)
    assert check.returncode != 0, "the plain python3 must not have the project's packages"

    store = tmp_path / "store"
    base = [python, str(pyz), "--store", str(store)]
    help_out = subprocess.run([*base, "--help"], env=env, capture_output=True, text=True, check=True)
    assert "serve" in help_out.stdout and "accounts" in help_out.stdout
    imported = subprocess.run(
        [*base, "accounts", "import", str(auth_json), "--name", "alice"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    assert "alice" in imported.stdout
    assert (store.stat().st_mode & 0o777) == 0o700

    port = free_port()
    server = subprocess.Popen(
        [*base, "serve", "--port", str(port), "--upstream", f"{fake}/backend-api", "--auth-url", fake],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else "server exited"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "codexgw.pyz serve did not come up"
            time.sleep(0.1)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "hi"}]
        chat = client.chat.completions.create(model="gpt-5.5", messages=messages)
        assert chat.choices[0].message.content
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="gpt-5.5", messages=messages, stream=True)
            if c.choices
        )
        assert streamed == chat.choices[0].message.content
        assert client.responses.create(model="gpt-5.5", input="hi").output_text
        kinds = [e.type for e in client.responses.create(model="gpt-5.5", input="hi", stream=True)]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    finally:
        server.terminate()
        assert server.wait(timeout=15) is not None


def _pythons_with_cryptography() -> list[str]:
    found = []
    for python in dict.fromkeys([plain_python(), "/usr/bin/python3"]):
        if (
            Path(python).exists()
            and subprocess.run([python, "-c", "import cryptography"], capture_output=True).returncode == 0
        ):
            found.append(python)
    return found


@pytest.mark.parametrize(
    "python",
    _pythons_with_cryptography()
    or [pytest.param("", marks=pytest.mark.skip("no python3 with cryptography"))],
)
def test_pyz_encrypts_the_store_with_the_systems_cryptography(
    python: str, pyz: Path, fake_url: tuple[str, Path], tmp_path: Path
) -> None:
    """The zipapp has no cryptography of its own; a python3 that has it (Debian's
    python3-cryptography) encrypts the store, and the key then opens it (encryption at rest)."""
    _fake, auth_json = fake_url
    env = clean_env(tmp_path)
    store = tmp_path / "store"
    base = [python, str(pyz), "--store", str(store)]
    assert (
        subprocess.run([*base, "accounts", "import", str(auth_json)], env=env, capture_output=True).returncode
        == 0
    )
    key = tmp_path / "store.key"
    done = subprocess.run(
        [*base, "store", "encrypt", "--generate-key-file", str(key)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    refresh = __import__("json").loads(auth_json.read_text())["tokens"]["refresh_token"]
    assert all(refresh.encode() not in p.read_bytes() for p in store.iterdir())
    locked = subprocess.run([*base, "accounts", "list"], env=env, capture_output=True, text=True)
    assert locked.returncode == 1 and "is encrypted" in locked.stderr and len(locked.stderr.splitlines()) == 1
    opened = subprocess.run(
        [*base, "accounts", "list"],
        env={**env, "CODEXGW_STORE_KEY_FILE": str(key)},
        capture_output=True,
        text=True,
    )
    assert opened.returncode == 0 and "user1@example.com" in opened.stdout
