"""The teams bench (issue 12): CPU a scoped key adds per request, against the single ``--api-key``.

Two measures:

* ``micro``: in this process, the request path's teams work alone, as ``HotRoutes`` and the
  exchange run it (``Teams.authenticate``, the policy's ``admit`` with every limit and an
  allowlist, ``answer_headers``, and ``Teams.finished``: ledger, limiter release, per-key metrics),
  for a scoped key with limits among 100 stored keys vs the ``--api-key`` secret. CPU per request.
* ``server`` (:func:`run`): a codexgw server with ``--api-key`` and a stored scoped key (owner,
  every limit, never reached; an allowlist; an effort ceiling), driven by the load client at
  concurrency 16 with one-delta streams through each key in turn, twice; the server's CPU per
  completed request, and the difference.

Target: the scoped key adds at most 50 µs of CPU per request (issue 12 "Speed").
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

from .env import ROOT, Bench, free_port, stop, wait_port

MASTER = "bench-master-key"
TARGET_US = 50.0
USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 120},
}


def micro(n: int = 20_000) -> dict[str, float]:
    """µs of CPU per request of the teams work, scoped key vs ``--api-key`` (see the module docstring)."""
    from codexgw.metrics import Metrics
    from codexgw.policy.keys import ApiKey, KeyRing, key_digest, key_prefix, secret_from
    from codexgw.upstream.teams import Teams

    class _NoEvents:
        listening = False

    secrets = [secret_from(os.urandom(32)) for _ in range(100)]
    keys = [
        ApiKey(
            name=f"k{i}",
            prefix=key_prefix(s),
            digest=key_digest(s),
            owner="bench-user",
            models=frozenset({"gpt-5.5"}),
            rpm=10**9,
            tpm=10**12,
            tokens_per_day=10**15,
            max_streams=10**6,
            max_effort="xhigh",
        )
        for i, s in enumerate(secrets)
    ]
    now = time.time()
    teams = Teams(None, metrics=Metrics(), events=_NoEvents(), master_key=MASTER, clock=lambda: now)  # type: ignore[arg-type]
    teams.ring = KeyRing(keys, MASTER)
    teams.scopes = {k.name: frozenset({1}) for k in keys}
    out: dict[str, float] = {}
    for label, token in (("api_key", MASTER), ("scoped", secrets[57])):
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

        def one(headers: dict[str, str] = headers) -> None:
            key, _scope = teams.authenticate(headers)
            body = {"model": "gpt-5.5", "reasoning": {"effort": "medium", "summary": "auto"}}
            admitted = teams.policy.admit(key, model="gpt-5.5", body=body, now=now)
            teams.answer_headers(key, admitted)  # type: ignore[arg-type]
            teams.finished(
                key=key,
                admitted=True,
                accounted=True,
                status=200,
                failed=False,
                account="bench",
                model="gpt-5.5",
                usage=USAGE,
                fields={},
            )

        for _ in range(1000):
            one()
        t0 = time.process_time()
        for _ in range(n):
            one()
        out[label] = round((time.process_time() - t0) / n * 1e6, 2)
    out["added"] = round(out["scoped"] - out["api_key"], 2)
    return out


def _cli(bench: Bench, *args: str, stdin: str | None = None) -> str:
    env = dict(os.environ)
    env["SHIV_ROOT"] = str(bench.work / "shiv")
    proc = subprocess.run(
        [*bench.codexgw_cmd(), "--store", str(bench.store), *args],
        input=stdin, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout


def run(bench: Bench, client: Any, quick: bool) -> dict[str, Any]:
    """Both measures; ``client`` runs one load-client process (``bench.run.client``)."""
    result: dict[str, Any] = {"micro_us": micro(5_000 if quick else 20_000), "target_us": TARGET_US}
    _cli(bench, "users", "add", "bench-user", "--password-stdin", stdin="bench-password\n")
    _cli(bench, "accounts", "set", "bench", "--owner", "bench-user")
    created = _cli(
        bench, "keys", "create", "bench-scoped", "--owner", "bench-user", "--models", "gpt-5.5",
        "--rpm", "100000000", "--tpm", "100000000000", "--tokens-per-day", "1000000000000",
        "--max-streams", "100000", "--max-effort", "xhigh",
    )  # fmt: skip
    scoped = created.strip().splitlines()[-1]
    port = free_port()
    env = dict(os.environ)
    env["SHIV_ROOT"] = str(bench.work / "shiv")
    log = open(bench.work / "server-keys.log", "wb")  # noqa: SIM115 (closed with the process' lifetime)
    server = subprocess.Popen(
        [*bench.server_args(port), "--api-key", MASTER],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, 30, server)
        per_request: dict[str, list[float]] = {"api_key": [], "scoped": []}
        duration = "2" if quick else "4"
        for _round in range(2 if quick else 3):
            for label, secret in (("api_key", MASTER), ("scoped", scoped)):
                out = client(
                    "throughput", port, "responses", "--concurrency", "16", "--duration-s", duration,
                    "--warmup-s", "1", "--deltas", "1", "--pids", str(server.pid), "--api-key", secret,
                )  # fmt: skip
                cpu = out.get("cpu_s", {}).get(str(server.pid))
                if out["completed"] and cpu is not None and not out["errors"]:
                    per_request[label].append(cpu / out["completed"] * 1e6)
        server_us = {k: round(statistics.median(v), 1) if v else None for k, v in per_request.items()}
        if server_us["api_key"] is not None and server_us["scoped"] is not None:
            server_us["added"] = round(server_us["scoped"] - server_us["api_key"], 1)
        result["server_us_per_request"] = server_us
    finally:
        stop(server)
        log.close()
    return result


if __name__ == "__main__":
    print(micro(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
