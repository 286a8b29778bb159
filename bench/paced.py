"""The ``paced`` scenario (issue 17): CPU per relayed event when events trickle in, below saturation.

A real model streams a token at a time, tens of ms apart, so each upstream event arrives alone and
is relayed alone; the burst rows (``throughput``) mostly measure events read and written together.
Here ``streams`` streams of ``deltas`` deltas, each event its own HTTP chunk ``pace_ms`` apart, go
through each target in turn (interleaved, ``repeats`` rounds, each round's order rotated by one,
medians):

* ``bare``: the bare hypercorn ASGI app sending the same paced events with no upstream
  (``bench/ceiling.py --app paced``): the serving stack's own cost, the headline's denominator;
* ``responses`` and ``chat``: codexgw's ``/v1/responses`` and ``/v1/chat/completions`` relaying
  the paced fast upstream; ``responses-ws``: the same Responses turn over the WebSocket, as the
  Codex CLI sends it (``bench.client`` ``--kind ws``: one socket and one ``response.create`` per
  stream, permessage-deflate offered);
* ``floor``: a minimal trio socket-to-socket relay of the same upstream (``bench/floor.py``);
* ``compare-responses``/``compare-chat``: a second codexgw (``--compare-cmd``), for A/B in one run;
* ``responses-tls``/``chat-tls`` (and ``compare-*-tls``): the same codexgw against an HTTPS fast
  upstream (a self-signed certificate trusted through ``SSL_CERT_FILE``), since the real backend is
  HTTPS (skipped when ``openssl`` is missing).

The server under test is pinned to CPU 0, the load client and the fake upstream to CPU 1 (when the
machine has two); CPU is the server's utime+stime from ``/proc`` over the run divided by the events
relayed (completed streams x (deltas + 4)). Also: added TTFB (one request at a time, unpaced, over
direct) and the many-streams row: ``many`` paced streams (20 ms) through ``/v1/responses`` with
their stretch, streams lost and RSS per open stream.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .env import ROOT, Bench, clean_env, free_port, log, stop, wait_port

SERVER_CPU = 0
REST_CPU = 1
IDLE_GAP_S = 6.0
"""The pause before each request of the idle-TTFB row: longer than httpx's default keep-alive expiry (5 s)."""


def pin(pid: int, cpu: int) -> bool:
    """Pin every thread of ``pid`` to ``cpu``; ``False`` when the machine has one CPU or it failed."""
    if (os.cpu_count() or 1) < 2:
        return False
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(task), {cpu})
    except OSError:
        return False
    return True


def _pinned_client(client: Callable[..., dict]) -> Callable[..., dict]:
    """``client`` with the load-client process pinned to :data:`REST_CPU` (the affinity is inherited)."""

    def run(*args: str, **kwargs: float) -> dict:
        if (os.cpu_count() or 1) < 2:
            return client(*args, **kwargs)
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {REST_CPU})
        try:
            return client(*args, **kwargs)
        finally:
            os.sched_setaffinity(0, before)

    return run


def _spawn(args: list[str], port: int, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 30, proc)
    pin(proc.pid, SERVER_CPU)
    return proc


def _per_event(result: dict, pid: int, deltas: int) -> float | None:
    cpu = result.get("cpu_s", {}).get(str(pid))
    events = result["completed"] * (deltas + 4)
    return round(cpu / events * 1e6, 1) if cpu is not None and events else None


def _tls_upstream(bench: Bench, procs: list[subprocess.Popen]) -> tuple[str, Path] | None:
    """Start an HTTPS fast upstream (a self-signed certificate for 127.0.0.1 made with ``openssl``,
    pinned with the load); its ``https://`` base URL and the certificate's path, or ``None`` (logged)
    when ``openssl`` is missing or the upstream did not start."""
    cert, key = bench.work / "tls-cert.pem", bench.work / "tls-key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        log(f"paced TLS rows skipped: no certificate ({exc})")
        return None
    try:
        proc, port = bench.spawn_fast_upstream("tls-upstream", "--certfile", str(cert), "--keyfile", str(key))
    except RuntimeError as exc:
        log(f"paced TLS rows skipped: {exc}")
        return None
    procs.append(proc)  # stopped with the scenario's other processes (and again, harmlessly, by bench)
    pin(proc.pid, REST_CPU)
    return f"https://127.0.0.1:{port}", cert


def _serve_args(bench: Bench, cmd: list[str], port: int) -> list[str]:
    """The bench server's ``serve`` command line on ``port``, run by ``cmd`` instead."""
    return [*cmd, *bench.server_args(port)[len(bench.server_cmd or bench.codexgw_cmd()) :]]


def _upstream_at(args: list[str], base: str) -> list[str]:
    """``args`` (a ``serve`` command line) with ``--upstream`` pointing at ``base``/backend-api."""
    out = list(args)
    out[out.index("--upstream") + 1] = f"{base}/backend-api"
    return out


def run(
    bench: Bench, client: Callable[..., dict], quick: bool, compare_cmd: list[str] | None = None
) -> dict:
    """Run the scenario (see the module docstring); returns the JSON-able result."""
    streams, deltas, pace, repeats = (50, 100, 20, 1) if quick else (100, 200, 40, 3)
    many, many_deltas = (300, 150) if quick else (1000, 250)
    run_client = _pinned_client(client)
    pinned = pin(bench.upstream.pid, REST_CPU) and pin(bench.server.pid, SERVER_CPU)  # type: ignore[union-attr]
    procs: list[subprocess.Popen] = []
    targets: dict[str, tuple[int, int, str]] = {}  # label -> (port, pid, client kind)
    try:
        port = free_port()
        bare = _spawn([sys.executable, "-m", "bench.ceiling", "--app", "paced", "--port", str(port)], port)
        procs.append(bare)
        targets["bare"] = (port, bare.pid, "responses")
        targets["responses"] = (bench.server_port, bench.server.pid, "responses")  # type: ignore[union-attr]
        targets["chat"] = (bench.server_port, bench.server.pid, "chat")  # type: ignore[union-attr]
        targets["responses-ws"] = (bench.server_port, bench.server.pid, "ws")  # type: ignore[union-attr]
        if compare_cmd:
            port = free_port()
            args = _serve_args(bench, compare_cmd, port)
            # Not from this checkout's directory: ``python -m codexgw`` would import this checkout's
            # package (the working directory comes first on sys.path) instead of the other's.
            other = _spawn(args, port, env={**os.environ, "SHIV_ROOT": str(bench.work / "shiv")}, cwd=bench.work)
            procs.append(other)
            targets["compare-responses"] = (port, other.pid, "responses")
            targets["compare-chat"] = (port, other.pid, "chat")
            targets["compare-responses-ws"] = (port, other.pid, "ws")
        tls = _tls_upstream(bench, procs)
        if tls is not None:  # the real backend is HTTPS: the same codexgw against an HTTPS fast upstream
            url, cert = tls
            env = {**(clean_env() if bench.server_mode == "pyz" else os.environ), "SSL_CERT_FILE": str(cert)}
            env["SHIV_ROOT"] = str(bench.work / "shiv")
            servers = [("", bench.server_cmd or bench.codexgw_cmd(), ROOT)]
            if compare_cmd:
                servers.append(("compare-", compare_cmd, bench.work))
            for prefix, cmd, cwd in servers:
                port = free_port()
                args = _upstream_at(_serve_args(bench, cmd, port), url)
                server = _spawn(args, port, env=env, cwd=cwd)
                procs.append(server)
                targets[f"{prefix}responses-tls"] = (port, server.pid, "responses")
                targets[f"{prefix}chat-tls"] = (port, server.pid, "chat")
        port = free_port()
        floor = _spawn(
            [sys.executable, "-m", "bench.floor", "--port", str(port), "--upstream-port", str(bench.upstream_port)],
            port,
        )  # fmt: skip
        procs.append(floor)
        targets["floor"] = (port, floor.pid, "direct")
        ideal = deltas * pace / 1000
        samples: dict[str, list[dict]] = {label: [] for label in targets}
        order = list(targets.items())
        for round_ in range(repeats):
            # Each round starts one target later (a rotation): the machine's speed drifts over a
            # run, and a fixed order would give the targets measured late in every round its gain.
            shift = round_ % len(order)
            for label, (port, pid, kind) in order[shift:] + order[:shift]:
                result = run_client(
                    "paced", port, kind, "--streams", str(streams), "--deltas", str(deltas), "--pace-ms",
                    str(pace), "--ideal-s", str(ideal), "--timeout-s", str(ideal * 3 + 20), "--pids", str(pid),
                    "--rss-at-s", str(ideal / 2), timeout_s=ideal * 3 + 60,
                )  # fmt: skip
                result["us_per_event"] = _per_event(result, pid, deltas)
                result["server_cpu_pct"] = round(
                    100 * result.get("cpu_s", {}).get(str(pid), 0) / max(result["duration_p50_s"], 1e-9), 1
                )
                samples[label].append(result)
                log(f"paced {label} round {round_ + 1}: {result['us_per_event']} µs/event, "
                    f"server {result['server_cpu_pct']}% of a CPU, stretch p50 {result['stretch_p50_pct']}%, "
                    f"lost {result['lost']}")  # fmt: skip
        rows = {label: _median_row(found) for label, found in samples.items()}
        base = rows["bare"]["us_per_event"]
        for row in rows.values():
            row["ratio_to_bare"] = round(row["us_per_event"] / base, 2) if base and row["us_per_event"] else None
        latency = {}
        ttfb_targets = [
            ("direct", bench.upstream_port, "direct"),
            ("responses", bench.server_port, "responses"),
            ("chat", bench.server_port, "chat"),
        ]
        if compare_cmd:
            ttfb_targets += [(label, targets[label][0], targets[label][2]) for label in ("compare-responses", "compare-chat")]
        for label, port, kind in ttfb_targets:
            latency[label] = run_client(
                "latency", port, kind, "--count", "100" if quick else "300", "--warmup", "30", "--deltas", "50"
            )
        direct = latency["direct"]["ttfb_p50_ms"]
        added = {k: round(v["ttfb_p50_ms"] - direct, 3) for k, v in latency.items() if k != "direct"}
        log(f"paced added TTFB p50 (ms): {added}")
        idle: dict[str, dict[str, float | None]] = {}
        for label in ("responses-tls", "compare-responses-tls"):
            if label not in targets:
                continue
            port = targets[label][0]
            warm = run_client("latency", port, "responses", "--count", "30", "--warmup", "5", "--deltas", "50")
            after = run_client(
                "latency", port, "responses", "--count", "1" if quick else "5", "--warmup", "1", "--deltas", "50",
                "--gap-s", str(IDLE_GAP_S), "--timeout-s", "120", timeout_s=180,
            )  # fmt: skip
            idle[label] = {"back_to_back_ms": warm["ttfb_p50_ms"], "after_idle_ms": after["ttfb_p50_ms"]}
        log(f"paced TTFB p50 over HTTPS, back to back / after {IDLE_GAP_S:g} s idle (ms): {idle}")
        many_ideal = many_deltas * 20 / 1000
        pid = bench.server.pid  # type: ignore[union-attr]
        crowd = run_client(
            "paced", bench.server_port, "responses", "--streams", str(many), "--deltas", str(many_deltas),
            "--pace-ms", "20", "--ideal-s", str(many_ideal), "--timeout-s", str(many_ideal * 3 + 30),
            "--pids", str(pid), "--rss-at-s", str(many_ideal / 2), timeout_s=many_ideal * 3 + 90,
        )  # fmt: skip
        b, o = crowd["rss_base"].get(str(pid)), crowd["rss_open"].get(str(pid))
        if b is not None and o is not None:
            crowd["rss_per_stream_kib"] = round((o - b) / many / 1024, 1)
        crowd["us_per_event"] = _per_event(crowd, pid, many_deltas)
        log(f"paced {many} streams: stretch p50 {crowd['stretch_p50_pct']}%, lost {crowd['lost']}, "
            f"{crowd.get('rss_per_stream_kib')} KiB/stream")  # fmt: skip
    finally:
        for proc in procs:
            stop(proc)
    return {
        "pinned": pinned,
        "streams": streams,
        "deltas": deltas,
        "pace_ms": pace,
        "repeats": repeats,
        "rows": rows,
        "samples": {k: [s["us_per_event"] for s in v] for k, v in samples.items()},
        "added_ttfb_ms": added,
        "idle_ttfb_ms": idle,
        "idle_gap_s": IDLE_GAP_S,
        "latency": latency,
        "many": crowd,
    }


def _median_row(found: list[dict]) -> dict:
    """The median of each number over the rounds (the first round's other fields)."""

    def med(key: str) -> float | None:
        values = [f[key] for f in found if f.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "us_per_event": med("us_per_event"),
        "server_cpu_pct": med("server_cpu_pct"),
        "stretch_p50_pct": med("stretch_p50_pct"),
        "first_event_p50_s": med("first_event_p50_s"),
        "lost": sum(f["lost"] for f in found),
        "completed": sum(f["completed"] for f in found),
    }


def markdown_rows(p: dict, row: Callable[[str], None], ok: Callable[[bool | None], str]) -> None:
    """The paced rows of the report table (regime: paced, below saturation, server pinned)."""
    r = p["rows"]

    def cell(label: str) -> str:
        x = r.get(label)
        return "–" if x is None else f"{x['us_per_event']} ({x['ratio_to_bare']}x)"

    ratios = [r[k]["ratio_to_bare"] for k in ("responses", "chat")]
    known = [x for x in ratios if x is not None]
    holds = f"{ok(max(known) <= 1.15 if known else None)} / {ok(max(known) <= 0.6 if known else None)}"
    shape = f"{p['streams']} streams x {p['deltas']} deltas, {p['pace_ms']} ms apart{'' if p['pinned'] else ', not pinned'}"
    row(f"| **paced** ({shape}): server CPU per relayed event, µs (x bare stack); direct column: minimal trio "
        f"relay (floor) | {cell('floor')} | {cell('responses')} | {cell('chat')} | <= 1.15x bare "
        f"({r['bare']['us_per_event']} µs); harder <= 0.6x | {holds} |")  # fmt: skip
    if "compare-responses" in r:
        row(f"| **paced**: the same through `--compare-cmd` | – | {cell('compare-responses')} | "
            f"{cell('compare-chat')} | | |")  # fmt: skip
    if "responses-ws" in r:
        row(f"| **paced**: `/v1/responses` over the WebSocket (the Codex CLI's transport) | – | {cell('responses-ws')} | – "
            f"| | |")  # fmt: skip
    if "compare-responses-ws" in r:
        row(f"| **paced**: the WebSocket through `--compare-cmd` | – | {cell('compare-responses-ws')} | – | | |")
    if "responses-tls" in r:
        row(f"| **paced**: the same with an HTTPS upstream (as the real backend) | – | {cell('responses-tls')} | "
            f"{cell('chat-tls')} | | |")  # fmt: skip
    if "compare-responses-tls" in r:
        row(f"| **paced**: HTTPS upstream through `--compare-cmd` | – | {cell('compare-responses-tls')} | "
            f"{cell('compare-chat-tls')} | | |")  # fmt: skip
    a = p["added_ttfb_ms"]
    worst = max(a.get("responses", 0), a.get("chat", 0)) if a else None
    row(f"| **paced**: added TTFB p50, one request at a time, unpaced (ms) | – | {a.get('responses')} | "
        f"{a.get('chat')} | <= 1.5 ms | {ok(None if worst is None else worst <= 1.5)} |")  # fmt: skip
    if "compare-responses" in a:
        row(f"| **paced**: added TTFB through `--compare-cmd` (ms) | – | {a['compare-responses']} | "
            f"{a['compare-chat']} | | |")  # fmt: skip
    for label, name in (("responses-tls", "HTTPS upstream"), ("compare-responses-tls", "HTTPS upstream through `--compare-cmd`")):
        i = p.get("idle_ttfb_ms", {}).get(label)
        if i:
            row(f"| **paced**: {name}, TTFB p50 back to back / {p['idle_gap_s']:g} s after the last request "
                f"(ms; the upstream connection kept or a new handshake) | – | {i['back_to_back_ms']} / "
                f"{i['after_idle_ms']} | – | | |")  # fmt: skip
    m = p["many"]
    kib = m.get("rss_per_stream_kib")
    good = m["lost"] == 0 and m["stretch_p50_pct"] <= 5 and kib is not None and kib <= 64
    row(f"| **paced**: {m['streams']} streams (20 ms, ideal {m['ideal_s']:g} s): stretch p50 / lost / RSS per "
        f"open stream | – | {m['stretch_p50_pct']} % / {m['lost']} / {kib} KiB | – | <= 5 %, 0, <= 64 KiB | "
        f"{ok(good)} |")  # fmt: skip


if __name__ == "__main__":
    print(Path(__file__).name, "runs from python -m bench --only paced")
