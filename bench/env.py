"""The bench's processes: a temp store with one account, the fast upstream, the codexgw server.

Everything listens on 127.0.0.1 and is stopped by pid (SIGTERM, then SIGKILL) when the bench ends.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "codexgw.pyz"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt(claims: dict) -> str:
    """An unsigned-looking RS256 JWT like the issuer's (codex-protocol.md §4; tests/fakes/jwt.py)."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "bench"}).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(64))}"


def write_auth_json(path: Path, *, valid_s: float = 30 * 86400) -> None:
    """A Codex CLI ``auth.json`` whose access token stays valid for ``valid_s`` (no refresh during the run)."""
    now = int(time.time())
    account_id = str(uuid.uuid4())
    auth = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "pro", "chatgpt_user_id": "user-bench"}
    id_token = _jwt(
        {"email": "bench@example.com", "email_verified": True, "exp": now + int(valid_s), "iat": now,
         "iss": "https://auth.openai.com", "sub": "auth0|bench", AUTH_CLAIM: auth}
    )  # fmt: skip
    access_token = _jwt(
        {"exp": now + int(valid_s), "iat": now, "iss": "https://auth.openai.com", "sub": "auth0|bench",
         AUTH_CLAIM: auth, PROFILE_CLAIM: {"email": "bench@example.com", "email_verified": True}}
    )  # fmt: skip
    path.write_text(
        json.dumps(
            {
                "OPENAI_API_KEY": None,
                "tokens": {
                    "id_token": id_token,
                    "access_token": access_token,
                    "refresh_token": "rt_" + _b64url(secrets.token_bytes(48)),
                    "account_id": account_id,
                },
                "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            }
        )
    )


def plain_python() -> str:
    """A python3 outside the venv, as on a server with nothing installed (for the zipapp)."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(
    port: int, timeout_s: float, proc: subprocess.Popen | None = None, poll_s: float = 0.002
) -> float:
    """Poll until 127.0.0.1:port accepts a TCP connection; returns the seconds waited.

    Raises:
        RuntimeError: not accepting within ``timeout_s``, or ``proc`` exited first.
    """
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return time.perf_counter() - t0
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        time.sleep(poll_s)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


def stop(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: only this process, by its pid."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Bench:
    """Owns the temp directory and the long-running processes of one bench run."""

    def __init__(self, work: Path, *, server: str = "module", server_cmd: list[str] | None = None) -> None:
        self.work = work
        self.server_mode = server
        self.server_cmd = server_cmd
        self.store = work / "store"
        self.procs: list[subprocess.Popen] = []
        self.upstream_port = 0
        self.server_port = 0
        self.upstream: subprocess.Popen | None = None
        self.server: subprocess.Popen | None = None

    def codexgw_cmd(self) -> list[str]:
        if self.server_mode == "pyz":
            return [plain_python(), str(PYZ)]
        return [sys.executable, "-m", "codexgw"]

    def import_account(self) -> None:
        auth = self.work / "auth.json"
        write_auth_json(auth)
        env = clean_env() if self.server_mode == "pyz" else dict(os.environ)
        env["SHIV_ROOT"] = str(self.work / "shiv")
        subprocess.run(
            [*self.codexgw_cmd(), "--store", str(self.store), "accounts", "import", str(auth), "--name", "bench"],
            check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip

    def spawn_fast_upstream(self, name: str, *args: str) -> tuple[subprocess.Popen, int]:
        """Start ``bench/fast_upstream.py`` with ``args`` (logging to ``{name}.log``, kept in
        :attr:`procs`); the process and its bound port.

        Raises:
            RuntimeError: it exited or did not report its port within 20 s.
        """
        port_file = self.work / f"{name}.port"
        port_file.unlink(missing_ok=True)
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process' lifetime)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fast_upstream", "--port-file", str(port_file), "--max-runtime-s", "900",
             *args],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs.append(proc)
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the fast upstream did not start; see {name}.log")
            time.sleep(0.02)
        return proc, int(port_file.read_text())

    def start_upstream(self) -> None:
        self.upstream, self.upstream_port = self.spawn_fast_upstream("upstream")

    def server_args(self, port: int) -> list[str]:
        upstream = f"http://127.0.0.1:{self.upstream_port}"
        return [
            *(self.server_cmd or self.codexgw_cmd()), "--store", str(self.store), "serve", "--port", str(port),
            "--upstream", f"{upstream}/backend-api", "--auth-url", upstream,
        ]  # fmt: skip

    def start_server(self) -> None:
        self.server_port = free_port()
        env = clean_env() if self.server_mode == "pyz" else dict(os.environ)
        env["SHIV_ROOT"] = str(self.work / "shiv")
        log = open(self.work / "server.log", "wb")  # noqa: SIM115
        self.server = subprocess.Popen(
            self.server_args(self.server_port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(self.server)
        wait_port(self.server_port, 30, self.server)

    def server_log_problems(self) -> list[str]:
        path = self.work / "server.log"
        if not path.exists():
            return []
        lines = path.read_text(errors="replace").splitlines()
        bad = [x for x in lines if " WARNING " in x or " ERROR " in x or "Traceback" in x]
        return bad[:5] + ([f"... {len(bad) - 5} more"] if len(bad) > 5 else [])

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        self.procs.clear()


def raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def log(message: str) -> None:
    """One timestamped progress line of a bench run, on stdout."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
