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
import tempfile
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


def assert_dashboard_served(url: str) -> None:
    """The dashboard's pages and every static file (vendored uPlot and its licence too) come out of
    the zipapp byte for byte as they are in the source tree."""
    page = httpx.get(f"{url}/dashboard/login", timeout=5)
    assert page.status_code == 200 and "Log in" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    static = ROOT / "codexgw" / "dashboard" / "static"
    files = [p for p in static.rglob("*") if p.is_file()]
    assert {"uPlot.iife.min.js", "LICENSE", "app.css", "common.js"} <= {p.name for p in files}
    for path in files:
        got = httpx.get(f"{url}/dashboard/static/{path.relative_to(static).as_posix()}", timeout=5)
        assert (got.status_code, got.content) == (200, path.read_bytes()), path


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
        assert_dashboard_served(url)
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


# -- the archive's own __main__.py: old Pythons and read-only homes -----------------------------

MAIN = ROOT / "scripts" / "zipapp_main.py"


def old_pythons() -> list[Path]:
    """Interpreters older than 3.11 on this machine (pyenv's, or python3.X on PATH)."""
    found: dict[str, Path] = {}
    roots = [
        Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions",
        Path("/root/.pyenv/versions"),
    ]
    for root in roots:
        for candidate in sorted(root.glob("3.*/bin/python")) if root.is_dir() else []:
            minor = candidate.parent.parent.name.split(".")[1]
            if minor.isdigit() and 6 <= int(minor) <= 10:
                found.setdefault(minor, candidate)
    for minor in range(6, 11):
        path = shutil.which(f"python3.{minor}")
        if path:
            found.setdefault(str(minor), Path(path))
    return [found[k] for k in sorted(found, key=int)]


def test_the_entry_point_parses_on_python_3_6() -> None:
    import ast

    ast.parse(MAIN.read_text(), feature_version=(3, 6))
    subprocess.run([sys.executable, "-m", "py_compile", str(MAIN)], check=True)


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ((3, 9, 18), "codexgw needs Python >= 3.11 (found 3.9); run it with a newer python3"),
        ((3, 10, 13), "codexgw needs Python >= 3.11 (found 3.10); run it with a newer python3"),
        ((3, 11, 0), None),
        ((3, 13, 0), None),
    ],
)
def test_python_version_check_with_a_faked_version(version: tuple[int, ...], problem: str | None) -> None:
    import runpy

    check = runpy.run_path(str(MAIN), run_name="zipapp_main")["python_problem"]
    assert check(version) == problem


def test_unpack_check(tmp_path: Path) -> None:
    import runpy

    unpack_problem = runpy.run_path(str(MAIN), run_name="zipapp_main")["unpack_problem"]
    assert unpack_problem(str(tmp_path / "new" / "root" / "codexgw.pyz_abc")) is None  # creatable
    done = tmp_path / "done" / "codexgw.pyz_abc"
    (done / "site-packages").mkdir(parents=True)
    assert unpack_problem(str(done)) is None  # unpacked before


def test_old_pythons_are_told_in_one_line(pyz: Path) -> None:
    pythons = old_pythons()
    if not pythons:
        pytest.skip("no Python older than 3.11 on this machine (the faked-version test covers the check)")
    for python in pythons:
        result = subprocess.run([str(python), str(pyz), "--version"], capture_output=True, text=True)
        version = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert (result.returncode, result.stderr) == (
            1, f"error: codexgw needs Python >= 3.11 (found {version}); run it with a newer python3\n"
        ), python  # fmt: skip
        assert result.stdout == ""


def test_a_read_only_home_names_the_directory_and_shiv_root(pyz: Path, tmp_path: Path) -> None:
    """A service user whose home is read-only: one line naming it and SHIV_ROOT, no traceback."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: a read-only home cannot be tried")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    home = Path(tempfile.mkdtemp(prefix="codexgw-rohome-"))
    try:
        home.chmod(0o555)
        env = clean_env(tmp_path)
        env.pop("SHIV_ROOT")
        env["HOME"] = str(home)
        copy = home.parent / f"{home.name}.pyz"
        shutil.copy(pyz, copy)
        copy.chmod(0o755)
        result = subprocess.run(
            [*prefix, plain_python(), str(copy), "--version"], env=env, capture_output=True, text=True
        )
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr == (
            f"error: codexgw.pyz unpacks its libraries on first run into {home}/.shiv (~/.shiv), but {home} "
            "is not writable; set SHIV_ROOT to a writable directory, e.g. SHIV_ROOT=/var/tmp/codexgw-shiv\n"
        )
        writable = Path(tempfile.mkdtemp(prefix="codexgw-shivroot-"))
        writable.chmod(0o777)
        try:
            ok = subprocess.run(
                [*prefix, plain_python(), str(copy), "--version"],
                env={**env, "SHIV_ROOT": str(writable)}, capture_output=True, text=True,
            )  # fmt: skip
            assert ok.returncode == 0 and "version" in ok.stdout, ok.stderr
        finally:
            shutil.rmtree(writable, ignore_errors=True)
        copy.unlink()
    finally:
        home.chmod(0o755)
        shutil.rmtree(home, ignore_errors=True)


def test_the_archive_runs_the_entry_point(pyz: Path) -> None:
    import zipfile

    with zipfile.ZipFile(pyz) as archive:
        assert archive.read("__main__.py").decode() == MAIN.read_text()
        assert "_bootstrap/__init__.py" in archive.namelist()


def test_a_build_is_skipped_while_the_zipapp_is_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import build_zipapp

    source = tmp_path / "src.py"
    source.write_text("x")
    output = tmp_path / "out.pyz"
    monkeypatch.setattr(build_zipapp, "sources", lambda: [source])
    assert not build_zipapp.up_to_date(output)
    output.write_text("built")
    os.utime(source, (time.time() - 10, time.time() - 10))
    assert build_zipapp.up_to_date(output)
    os.utime(source, (time.time() + 10, time.time() + 10))
    assert not build_zipapp.up_to_date(output)


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
