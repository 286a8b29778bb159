"""Start-up times of ``codexgw.pyz``: ``--help``, and ``serve`` until it accepts TCP connections.

"First run" uses a fresh ``SHIV_ROOT`` (the zipapp unpacks its dependencies); "warm" reuses it and
reports the median of several runs. Runs the zipapp with a python3 outside the venv.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

from .env import PYZ, ROOT, Bench, clean_env, free_port, plain_python, stop, wait_port


def _help(shiv_root: Path) -> float:
    env = clean_env()
    env["SHIV_ROOT"] = str(shiv_root)
    t0 = time.perf_counter()
    subprocess.run(
        [plain_python(), str(PYZ), "--help"], env=env, check=True, stdout=subprocess.DEVNULL, timeout=60
    )
    return time.perf_counter() - t0


def _serve_ready(bench: Bench, shiv_root: Path, store: Path) -> float:
    env = clean_env()
    env["SHIV_ROOT"] = str(shiv_root)
    port = free_port()
    upstream = f"http://127.0.0.1:{bench.upstream_port}"
    command = [
        plain_python(), str(PYZ), "--store", str(store), "serve", "--port", str(port),
        "--upstream", f"{upstream}/backend-api", "--auth-url", upstream,
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 30, proc, poll_s=0.002)
        return time.perf_counter() - t0
    finally:
        stop(proc)


def stale_sources() -> list[str]:
    """Source files newer than the zipapp (it then measures older code)."""
    built = PYZ.stat().st_mtime
    return sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "codexgw").rglob("*.py") if p.stat().st_mtime > built
    )


def measure(bench: Bench, runs: int = 5) -> dict:
    """Return first-run and warm (median) times in ms, or a note when the zipapp is missing."""
    if not PYZ.exists():
        return {"error": "dist/codexgw.pyz is missing: run `make pyz` first"}
    out: dict = {"pyz_mtime": time.strftime("%Y-%m-%d %H:%M", time.localtime(PYZ.stat().st_mtime))}
    stale = stale_sources()
    if stale:
        out["pyz_older_than"] = stale[:5] + ([f"... {len(stale) - 5} more"] if len(stale) > 5 else [])
    fresh = bench.work / "shiv-first-help"
    out["help_first_ms"] = round(_help(fresh) * 1000, 1)
    out["help_warm_ms"] = round(statistics.median(_help(fresh) for _ in range(runs)) * 1000, 1)
    # The zipapp gets its own store: one written by a newer working tree may have a newer schema.
    store = bench.work / "pyz-store"
    env = clean_env()
    env["SHIV_ROOT"] = str(bench.work / "shiv-first-help")
    subprocess.run(
        [plain_python(), str(PYZ), "--store", str(store), "accounts", "import", str(bench.work / "auth.json"),
         "--name", "bench"],
        env=env, check=True, stdout=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    fresh = bench.work / "shiv-first-serve"
    out["serve_first_ms"] = round(_serve_ready(bench, fresh, store) * 1000, 1)
    warm = [_serve_ready(bench, fresh, store) for _ in range(runs)]
    out["serve_warm_ms"] = round(statistics.median(warm) * 1000, 1)
    return out
