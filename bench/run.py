"""``python -m bench``: run the scenarios of issue 7 side by side (direct vs codexgw) and write the results.

Processes: the fast upstream (``bench/fast_upstream.py``), one codexgw server, and a load client per
measurement (``bench/client.py``), each its own process. "direct" is the client talking straight to the
fast upstream's ``/backend-api/codex/responses``; "responses" and "chat" go through codexgw's
``/v1/responses`` and ``/v1/chat/completions``.

Results go to ``bench/results/latest.md`` and ``latest.json``; ``--profile`` also records the server
with py-spy under burst load, or with ``--profile-load paced`` under paced streams
(``bench/results/profile-*.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import dashboard, keys, paced, report, soak, startup
from .env import ROOT, Bench, free_port, log, raise_nofile, stop, wait_port
from .procstat import cpu_model, loadavg

SCENARIOS = ("startup", "latency", "throughput", "cpu", "paced", "hold", "ceiling", "dashboard", "keys", "soak")
DEFAULT = tuple(s for s in SCENARIOS if s != "soak")  # the soak runs only when asked (--minutes)
RESULTS = Path(__file__).resolve().parent / "results"
DELTAS = 50
EVENTS_PER_ANSWER = DELTAS + 4  # created, item added, N deltas, item done, completed


def client(scenario: str, port: int, kind: str, *args: str, timeout_s: float = 120.0) -> dict:
    """Run one load-client process and return its JSON result."""
    command = [sys.executable, "-m", "bench.client", scenario, "--port", str(port), "--kind", kind, *args]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"client {scenario} {kind} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def modes(bench: Bench) -> list[tuple[str, int, str]]:
    """(label, port, client kind) of each column: direct, codexgw Responses, codexgw chat."""
    return [
        ("direct", bench.upstream_port, "direct"),
        ("responses", bench.server_port, "responses"),
        ("chat", bench.server_port, "chat"),
    ]


def run_latency(bench: Bench, quick: bool) -> dict:
    count, warmup = ("100", "20") if quick else ("400", "50")
    out = {}
    for label, port, kind in modes(bench):
        out[label] = client(
            "latency", port, kind, "--count", count, "--warmup", warmup, "--deltas", str(DELTAS)
        )
        log(f"latency {label}: {out[label]}")
    return out


def run_throughput(bench: Bench, quick: bool, levels: tuple[int, ...]) -> dict:
    duration = "2" if quick else "4"
    out: dict[str, dict] = {}
    pids = [str(bench.upstream.pid), str(bench.server.pid)]  # type: ignore[union-attr]
    for concurrency in levels:
        for label, port, kind in modes(bench):
            result = client(
                "throughput", port, kind, "--concurrency", str(concurrency), "--duration-s", duration,
                "--warmup-s", "1", "--deltas", str(DELTAS), "--pids", *pids,
            )  # fmt: skip
            cpu = result.get("cpu_s", {})
            window = result["window_s"]
            result["upstream_cpu_pct"] = pct_of(cpu.get(pids[0]), window)
            result["server_cpu_pct"] = pct_of(cpu.get(pids[1]), window)
            result["client_window_cpu_pct"] = pct_of(cpu.get("client"), window)
            events = result["completed"] * EVENTS_PER_ANSWER
            server_cpu = cpu.get(pids[1])
            if label != "direct" and events and server_cpu is not None:
                result["server_us_per_event"] = round(server_cpu / events * 1e6, 2)
            out[f"{label}@{concurrency}"] = result
            log(f"throughput {label} c={concurrency}: {result['rps']} req/s, "
                f"server {result['server_cpu_pct']}% upstream {result['upstream_cpu_pct']}% "
                f"client {result['client_window_cpu_pct']}%, errors {result['errors']}")  # fmt: skip
    return out


def pct_of(seconds: float | None, window_s: float) -> float | None:
    return None if seconds is None else round(100.0 * seconds / window_s, 1)


def run_hold(bench: Bench, quick: bool) -> dict:
    streams, seconds = ("500", 10) if quick else ("2000", 30)
    out = {}
    for label, port, kind in modes(bench)[:2]:
        pid = bench.upstream.pid if label == "direct" else bench.server.pid  # type: ignore[union-attr]
        result = client(
            "hold", port, kind, "--streams", streams, "--deltas", str(seconds), "--pace-ms", "1000",
            "--rss-at-s", str(seconds / 2), "--timeout-s", str(seconds + 30), "--pids", str(pid),
            timeout_s=seconds + 90,
        )  # fmt: skip
        base, held = result["rss_base"].get(str(pid)), result["rss_open"].get(str(pid))
        if base is not None and held is not None:
            result["rss_base_mib"] = round(base / 2**20, 1)
            result["rss_open_mib"] = round(held / 2**20, 1)
            result["rss_per_stream_kib"] = round((held - base) / int(streams) / 1024, 1)
        out[label] = result
        log(f"hold {label}: {result}")
        time.sleep(2)  # let TIME_WAIT sockets and the server's connection pool settle
    return out


def run_ceiling(quick: bool) -> dict:
    """Throughput of the bare serving stack (``bench/ceiling.py``): a bare ASGI app and a one-route
    QuartTrio app on hypercorn's trio worker, answering without any upstream."""
    duration = "2" if quick else "4"
    out: dict[str, dict] = {}
    for app in ("asgi", "quart"):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.ceiling", "--app", app, "--port", str(port), "--deltas", str(DELTAS)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(port, 30, server)
            for concurrency in (16, 64):
                result = client(
                    "throughput", port, "responses", "--concurrency", str(concurrency), "--duration-s", duration,
                    "--warmup-s", "1", "--deltas", str(DELTAS), "--pids", str(server.pid),
                )  # fmt: skip
                server_cpu = result.get("cpu_s", {}).get(str(server.pid))
                result["server_cpu_pct"] = pct_of(server_cpu, result["window_s"])
                if result["completed"] and server_cpu is not None:
                    result["server_us_per_request"] = round(server_cpu / result["completed"] * 1e6, 1)
                out[f"{app}@{concurrency}"] = result
                log(f"ceiling {app} c={concurrency}: {result['rps']} req/s, server {result['server_cpu_pct']}%, "
                    f"{result.get('server_us_per_request')} µs/request, errors {result['errors']}")  # fmt: skip
        finally:
            stop(server)
    return out


def machine() -> dict:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def profile(bench: Bench, out_dir: Path, seconds: int = 8, concurrency: int = 64, load: str = "burst") -> dict:
    """Record the server with py-spy while a load runs, for Responses and chat: ``burst``, a
    throughput run at ``concurrency``; ``paced``, ``concurrency`` streams of one event per 40 ms
    (the regime users see, issue 17), the server pinned as in the paced scenario."""
    from .profile import summarize

    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        return {"error": "py-spy is not installed in the venv (pip install py-spy)"}
    found: dict[str, dict] = {}
    for kind in ("responses", "chat"):
        raw = out_dir / f"profile-{kind}.txt"
        rec = subprocess.Popen(
            [str(pyspy), "record", "--pid", str(bench.server.pid), "--format", "raw", "--rate", "250",  # type: ignore[union-attr]
             "--duration", str(seconds), "--output", str(raw), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(0.5)
        try:
            if load == "paced":
                ideal = seconds + 2  # streams outlast the recording
                paced._pinned_client(client)(
                    "paced", bench.server_port, kind, "--streams", str(concurrency), "--deltas", str(ideal * 25),
                    "--pace-ms", "40", "--ideal-s", str(ideal), "--timeout-s", str(ideal * 3 + 20),
                    timeout_s=ideal * 3 + 60,
                )  # fmt: skip
            else:
                client(
                    "throughput", bench.server_port, kind, "--concurrency", str(concurrency), "--warmup-s", "0",
                    "--duration-s", str(seconds - 1), "--deltas", str(DELTAS),
                )  # fmt: skip
            rec.wait(timeout=seconds + 30)
        finally:
            stop(rec)
        found[kind] = (
            summarize(raw) if raw.exists() else {"error": (rec.stderr.read() or b"").decode()[-500:]}
        )  # type: ignore[union-attr]
        log(f"profile {kind}: {raw}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DEFAULT), help=f"comma list of {','.join(SCENARIOS)}")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the soak runs (30)")
    parser.add_argument("--quick", action="store_true", help="short runs, fewer streams (a smoke test)")
    parser.add_argument("--server", choices=["module", "pyz"], default="module",
                        help="serve with `python -m codexgw` (the working tree) or dist/codexgw.pyz")  # fmt: skip
    parser.add_argument("--server-cmd", help="serve with this command instead (to compare a patched build)")
    parser.add_argument("--compare-cmd", help="paced: also measure a second codexgw served by this command (A/B)")
    parser.add_argument(
        "--profile", action="store_true", help="also record the server with py-spy (see --profile-load)"
    )
    parser.add_argument(
        "--profile-load", choices=["burst", "paced"], default="burst",
        help="the load --profile records: a burst, or paced streams (one event per 40 ms)",
    )
    parser.add_argument(
        "--profile-concurrency", type=int, default=64, help="concurrency of the --profile burst (64)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if "soak" in only and len(only) > 1:
        parser.error("run the soak alone: --only soak")
    raise_nofile()
    args.output.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "machine": machine(),
        "load_before": loadavg(),
        "quick": args.quick,
        "server": args.server,
    }
    log(f"machine: {results['machine']}; loadavg before {results['load_before']}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="codexgw-bench-") as tmp:
        server_cmd = shlex.split(args.server_cmd) if args.server_cmd else None
        bench = Bench(Path(tmp), server=args.server, server_cmd=server_cmd)
        try:
            if only == {"soak"}:  # its own fake upstream (with failures) and server
                results["soak"] = soak.run(Path(tmp), args.minutes)
                log(f"soak: {json.dumps(results['soak'])}")
                (args.output / "soak.json").write_text(json.dumps(results["soak"], indent=2) + "\n")
                return
            bench.import_account()
            bench.start_upstream()
            if "startup" in only:
                try:
                    results["startup"] = startup.measure(bench, runs=3 if args.quick else 5)
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    results["startup"] = {"error": f"start-up not measured: {exc}"}
                log(f"startup: {results['startup']}")
            bench.start_server()
            if "latency" in only:
                results["latency"] = run_latency(bench, args.quick)
            if only & {"throughput", "cpu"}:
                levels = (16, 64) if "throughput" in only else (64,)
                results["throughput"] = run_throughput(bench, args.quick, levels)
            if args.profile:
                if args.profile_load == "paced":  # pinned as in the paced scenario (client: the rest)
                    paced.pin(bench.upstream.pid, paced.REST_CPU)  # type: ignore[union-attr]
                    paced.pin(bench.server.pid, paced.SERVER_CPU)  # type: ignore[union-attr]
                results["profile"] = profile(
                    bench, args.output, concurrency=args.profile_concurrency, load=args.profile_load
                )
                results["profile_concurrency"] = args.profile_concurrency
                results["profile_load"] = args.profile_load
            if "paced" in only:
                compare = shlex.split(args.compare_cmd) if args.compare_cmd else None
                results["paced"] = paced.run(bench, client, args.quick, compare)
            if "hold" in only:
                results["hold"] = run_hold(bench, args.quick)
            if "ceiling" in only:
                results["ceiling"] = run_ceiling(args.quick)
            if "dashboard" in only:  # its own server and store
                results["dashboard"] = dashboard.measure(bench, args.quick)
                log(f"dashboard: {results['dashboard']}")
            if "keys" in only:  # last: it stores a key, and then the bench server wants one
                results["keys"] = keys.run(bench, client, args.quick)
                log(f"keys: {results['keys']}")
            results["server_log_problems"] = bench.server_log_problems()
            if bench.server is not None and bench.server.poll() is not None:
                results["server_log_problems"].insert(0, f"server exited early ({bench.server.returncode})")
        finally:
            bench.close()
    results["load_after"] = loadavg()
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    markdown = report.markdown(results)
    (args.output / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "latest.md").write_text(markdown)
    print(markdown)
    log(
        f"loadavg after {results['load_after']}; {results['elapsed_s']} s; wrote {args.output}/latest.{{md,json}}"
    )
