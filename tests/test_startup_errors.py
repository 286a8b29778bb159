"""``codexgw serve`` that cannot start: one ``error: …`` line saying what to do, exit status 2.

Each case runs the real command in a subprocess (``python -m codexgw``), as a user would: a busy
port, a privileged port, an address not on this machine, a host that does not resolve, a TLS key
that does not match its certificate, a certificate that is no PEM. None may print a traceback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexgw.cli.startup import explain
from codexgw.config import Settings
from codexgw.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    Store.open(tmp_path / "store")
    return tmp_path / "store"


def serve(store_dir: Path, *args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "codexgw", "--store", str(store_dir), "serve", "--probe-interval", "0"]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEXGW_")}
    if user is not None:  # the test's config directory belongs to root: give the user a readable one
        env["XDG_CONFIG_HOME"] = str(store_dir.parent)
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exit status 2 and exactly one ``error:`` line, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    others = [line for line in result.stderr.splitlines() if line and not line.startswith("error: ")]
    assert all(" INFO " in line or " WARNING " in line for line in others), result.stderr
    return errors[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_busy_port(store_dir: Path, busy_port: int) -> None:
    line = one_error_line(serve(store_dir, "--port", str(busy_port)))
    assert line == f"error: port {busy_port} is already in use on 127.0.0.1; choose another with --port"


def test_address_not_on_this_machine(store_dir: Path) -> None:
    line = one_error_line(serve(store_dir, "--host", "192.0.2.1", "--api-key", "k-0123456789abcdef"))  # TEST-NET-1
    assert line.startswith("error: 192.0.2.1 is not an address of this machine; choose another with --host")


def test_host_that_does_not_resolve(store_dir: Path) -> None:
    line = one_error_line(serve(store_dir, "--host", "no-such-host.invalid", "--api-key", "k-0123456789abcdef"))
    assert line.startswith("error: cannot resolve host 'no-such-host.invalid'")
    assert "--host" in line


def test_privileged_port(tmp_path: Path) -> None:
    """Ports below 1024 need root: as root, the command runs as the user nobody (setpriv)."""
    user = None
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot try a privileged port unprivileged")
        user = 65534
        probe = [
            "setpriv",
            f"--reuid={user}",
            f"--regid={user}",
            "--clear-groups",
            sys.executable,
            "-c",
            "import codexgw",
        ]
        if subprocess.run(probe, capture_output=True, cwd="/", timeout=60).returncode != 0:
            pytest.skip("the user nobody cannot read this checkout (a private directory above it)")
    start = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    if start.exists() and int(start.read_text()) <= 80:
        pytest.skip("this machine lets anyone listen on port 80")
    home = Path(tempfile.mkdtemp(prefix="codexgw-priv-"))
    try:
        Store.open(home / "store")
        if user is not None:
            home.chmod(0o755)
            for path in (home, home / "store", *(home / "store").iterdir()):
                os.chown(path, user, user)
        line = one_error_line(serve(home / "store", "--port", "80", user=user))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert line.startswith("error: no permission to listen on 127.0.0.1:80: ports below 1024 need root")
    assert "--port" in line


def certificate(directory: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_certificate_and_key_that_do_not_match(store_dir: Path, tmp_path: Path) -> None:
    cert, _ = certificate(tmp_path, "one")
    _, other_key = certificate(tmp_path, "two")
    line = one_error_line(
        serve(store_dir, "--port", "0", "--certfile", str(cert), "--keyfile", str(other_key))
    )
    assert line == (
        f"error: the TLS key {other_key} does not belong to the certificate {cert}; pass the matching --keyfile"
    )


def test_a_certificate_that_is_no_pem(store_dir: Path, tmp_path: Path) -> None:
    _, key = certificate(tmp_path, "one")
    bogus = tmp_path / "cert.pem"
    bogus.write_text("not a certificate\n")
    line = one_error_line(serve(store_dir, "--port", "0", "--certfile", str(bogus), "--keyfile", str(key)))
    assert line == f"error: {bogus} is not a PEM certificate (-----BEGIN ...); pass one with --certfile"


def test_other_errors_are_not_explained_away() -> None:
    settings = Settings(port=8080)
    assert explain(ValueError("boom"), settings) is None
    assert explain(OSError(5, "I/O error"), settings) is None
    assert "--port" in (explain(OSError(13, "Permission denied"), settings) or "")
