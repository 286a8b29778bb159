"""The dashboard's speed targets (issue 13), ``python -m bench --only dashboard``.

- **Pool page, 100 accounts:** a codexgw server with 100 stored logins and one admin; headless
  Chromium (Debian's, driven by Playwright as in ``tests/browser``) logs in, then loads ``/dashboard``
  again and again. Each load is timed from navigation start to the ``codexgw:pool-rendered`` mark the
  page sets after the first paint with every row filled from ``/api/accounts`` and ``/api/pool``.
  Target: p50 under 300 ms.
- **Idle CPU:** the same server's CPU time over a quiet window with no page open (so no client on
  ``/api/events``), against a server started with ``--no-dashboard``. Target: no more than it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .env import ROOT, Bench, free_port, stop, wait_port, write_auth_json
from .procstat import cpu_seconds

ACCOUNTS = 100
PASSWORD = "bench-password-1"
CHROMIUM = "/usr/lib/chromium/chromium"


def make_store(store: Path, work: Path) -> None:
    """``ACCOUNTS`` logins (``acct000``…) and the admin ``bench``, written straight into the store."""
    from codexgw.store.importers import load_codex_auth_json
    from codexgw.store.sqlite import Store
    from codexgw.store.users import add_user, new_password_hash

    db = Store.open(store)
    for i in range(ACCOUNTS):
        path = work / f"auth-{i}.json"
        write_auth_json(path)
        db.upsert_account(load_codex_auth_json(path), name=f"acct{i:03d}")
    add_user(db, "bench", "admin", new_password_hash(PASSWORD), now=time.time())


def start(bench: Bench, store: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    upstream = f"http://127.0.0.1:{bench.upstream_port}"
    log = open(bench.work / f"dashboard-server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "codexgw", "--store", str(store), "serve", "--port", str(port),
         "--upstream", f"{upstream}/backend-api", "--auth-url", upstream, "--probe-interval", "0", *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
    )  # fmt: skip
    wait_port(port, 30, proc)
    return proc, port


def page_loads(url: str, loads: int) -> list[float]:
    """Milliseconds from navigation start to the pool page's rendered mark, per load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"],
        )  # fmt: skip
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(url + "/dashboard/login")
        page.fill("#login-user", "bench")
        page.fill("#login-password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(url + "/dashboard")
        times = []
        for _ in range(loads + 2):  # the first two warm the caches
            page.goto(url + "/dashboard")
            page.locator("body[data-ready=yes]").wait_for()
            # The mark follows the next frame; polled from here (wait_for_function would need unsafe-eval).
            while not page.evaluate("performance.getEntriesByName('codexgw:pool-rendered').length"):
                time.sleep(0.005)
            rows = page.locator("#account-rows tr").count()
            if rows != ACCOUNTS:
                raise RuntimeError(f"the pool page showed {rows} rows, not {ACCOUNTS}")
            times.append(page.evaluate("performance.getEntriesByName('codexgw:pool-rendered')[0].startTime"))
        browser.close()
    return times[2:]


def idle_cpu_pct(pid: int, window_s: float) -> float:
    before = cpu_seconds(pid) or 0.0
    time.sleep(window_s)
    return round(100.0 * ((cpu_seconds(pid) or 0.0) - before) / window_s, 2)


def measure(bench: Bench, quick: bool) -> dict:
    """The two rows' numbers: page load ms (p50, max, all) and idle CPU % with and without."""
    if not os.access(CHROMIUM, os.X_OK):
        return {"error": f"{CHROMIUM} not found (apt-get install --no-install-recommends chromium)"}
    work = bench.work / "dashboard"
    work.mkdir(exist_ok=True)
    store = work / "store"
    make_store(store, work)
    window = 5.0 if quick else 15.0
    out: dict = {"accounts": ACCOUNTS, "idle_window_s": window}
    proc, port = start(bench, store)
    try:
        times = page_loads(f"http://127.0.0.1:{port}", 5 if quick else 20)
        out.update(load_p50_ms=round(statistics.median(times), 1), load_max_ms=round(max(times), 1),
                   loads_ms=[round(t, 1) for t in times])  # fmt: skip
        time.sleep(2)  # the page's event stream closes with the browser
        out["idle_cpu_pct"] = idle_cpu_pct(proc.pid, window)
    finally:
        stop(proc)
    proc, _port = start(bench, store, "--no-dashboard")
    try:
        time.sleep(2)
        out["idle_cpu_pct_no_dashboard"] = idle_cpu_pct(proc.pid, window)
    finally:
        stop(proc)
    return out
