"""``python -m bench.workers``: paced streams through ``serve --workers 1`` and ``--workers 2``.

For each worker count and each route (Responses, chat): start the fast upstream and codexgw, send
``--streams`` streams at once, each its own connection, each answering ``--deltas`` text deltas
``--pace-ms`` apart (below saturation: every event arrives alone), and report

* CPU per relayed event: the server processes' CPU time (supervisor + workers, from ``/proc``)
  over the run, divided by the deltas relayed;
* the split of streams over the workers (from the access log's ``[wN]`` tags);
* stretch (duration over the ideal ``deltas × pace``) and lost streams, from the load client.

The streams' starts are spread over one pace interval (``--phase-locked``: all at once). Started
together, every stream's events arrive in the same instant and one process wakes once for all of
them; two workers each wake for half, so a phase-locked run charges the second worker with the
lost batching (one worker with 25 streams cost 360–411 µs per event against 300–312 with 50, in
the same minutes), which is the benchmark's artefact, not the workers'.

The load client and the fast upstream run on the same machine; the bench prints the CPU count and
the load average next to the numbers. Results: ``bench/results/workers.json`` and ``workers.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from .env import ROOT, Bench, free_port, raise_nofile, wait_port
from .procstat import cpu_model, cpu_seconds, loadavg

RESULTS = Path(__file__).resolve().parent / "results"


def _server_pids(log: Path, supervisor: int, workers: int, timeout_s: float = 30.0) -> list[int]:
    if workers == 1:
        return [supervisor]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"workers serving on \S+ \(pids ([\d, ]+)\)", log.read_text(errors="replace"))
        if found:
            return [supervisor, *(int(p) for p in found.group(1).split(", "))]
        time.sleep(0.05)
    raise RuntimeError("the workers did not start; see server.log")


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def one_run(
    workers: int, kind: str, streams: int, deltas: int, pace_ms: int, pin: bool = False, stagger: bool = True
) -> dict:
    """One server with ``workers``, one paced load of ``kind``; the measured row. ``pin``: the
    server's processes on CPU 0, the fast upstream and the load client on CPU 1."""
    with tempfile.TemporaryDirectory(prefix="codexgw-bench-workers-") as tmp:
        bench = Bench(Path(tmp))
        try:
            bench.import_account()
            bench.start_upstream()
            port = free_port()
            log_path = Path(tmp) / "server.log"
            args = [
                *bench.server_args(port),
                "--workers",
                str(workers),
                "--no-dashboard",
                "--log-level",
                "info",
            ]
            with log_path.open("wb") as log:
                server = subprocess.Popen(
                    args,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_pin({0} if pin else None),
                )
            bench.procs.append(server)
            wait_port(port, 30, server)
            pids = _server_pids(log_path, server.pid, workers)
            if pin and bench.upstream is not None:
                os.sched_setaffinity(bench.upstream.pid, {1})
            time.sleep(1.0)  # the workers settle (first store reads, catalogue)
            idle0 = {p: cpu_seconds(p) or 0.0 for p in pids}
            time.sleep(2.0)  # idle: the background ticks alone (pool state, metrics publication)
            idle_cpu = sum((cpu_seconds(p) or idle0[p]) - idle0[p] for p in pids)
            mark = len(log_path.read_text(errors="replace"))
            before = {p: cpu_seconds(p) or 0.0 for p in pids}
            upstream_before = cpu_seconds(bench.upstream.pid) if bench.upstream else None
            t0 = time.perf_counter()
            ideal = deltas * pace_ms / 1000
            command = [
                sys.executable, "-m", "bench.client", "paced", "--port", str(port), "--kind", kind,
                "--streams", str(streams), "--deltas", str(deltas), "--pace-ms", str(pace_ms),
                "--ideal-s", str(ideal), "--timeout-s", str(ideal * 4 + 30), *(["--stagger"] if stagger else []),
            ]  # fmt: skip
            proc = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=ideal * 4 + 60,
                preexec_fn=_pin({1} if pin else None),
            )  # fmt: skip
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"load client failed: {proc.stderr.strip()[-1500:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            per_pid = {p: round((cpu_seconds(p) or before[p]) - before[p], 3) for p in pids}
            cpu = sum(per_pid.values())
            upstream_cpu = (
                (cpu_seconds(bench.upstream.pid) or 0.0) - upstream_before if bench.upstream else None
            )
            time.sleep(0.3)
            split = Counter(
                re.findall(r"codexgw\.access\[(w\d+)\]", log_path.read_text(errors="replace")[mark:])
            )
            relayed = result["completed"] * deltas
            return {
                "workers": workers,
                "pinned": pin,
                "route": kind,
                "streams": streams,
                "deltas": deltas,
                "pace_ms": pace_ms,
                "staggered": stagger,
                "completed": result["completed"],
                "lost": result["lost"],
                "server_cpu_s": round(cpu, 3),
                "cpu_s_by_process": list(per_pid.values()),
                "idle_cpu_pct": round(100 * idle_cpu / 2.0, 1),
                "server_cpu_pct": round(100 * cpu / wall, 1),
                "cpu_per_event_us": round(1e6 * cpu / max(1, relayed), 1),
                "upstream_cpu_pct": round(100 * upstream_cpu / wall, 1) if upstream_cpu is not None else None,
                "client_cpu_pct": result.get("client_cpu_pct"),
                "stretch_p50_pct": result["stretch_p50_pct"],
                "stretch_p99_pct": result["stretch_p99_pct"],
                "events_per_s": round(relayed / wall, 1),
                "split": {k: split[k] for k in sorted(split)},
            }
        finally:
            bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--deltas", type=int, default=200)
    parser.add_argument("--pace-ms", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs of each row")
    parser.add_argument("--routes", default="responses,chat")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, in order")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0; upstream and client on CPU 1")
    parser.add_argument(
        "--phase-locked", action="store_true",
        help="start every stream at once (their events then arrive in step; default: starts spread over one pace)",
    )  # fmt: skip
    args = parser.parse_args()
    raise_nofile()
    rows = []
    counts = [int(w) for w in args.workers.split(",")]
    for repeat in range(args.repeat):
        for kind in args.routes.split(","):
            for workers in counts if repeat % 2 == 0 else counts[::-1]:  # ABBA: drift hits both alike
                row = one_run(
                    workers, kind, args.streams, args.deltas, args.pace_ms, pin=args.pin, stagger=not args.phase_locked
                )
                print(json.dumps(row), flush=True)
                rows.append(row)
    doc = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "loadavg_end": loadavg(),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "workers.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"# serve --workers, paced ({doc['date']}, {doc['cpus']} CPUs, {doc['cpu_model']})",
        "",
        "| route | workers | streams × deltas @ pace | lost | idle CPU % | server CPU % | CPU per event µs "
        "| stretch p50 % | split |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        split = " / ".join(f"{k} {v}" for k, v in r["split"].items()) or "-"
        lines.append(
            f"| {r['route']} | {r['workers']}{' (pinned)' if r['pinned'] else ''} | {r['streams']} × {r['deltas']} @ {r['pace_ms']} ms"
            f"{', staggered' if r.get('staggered') else ', phase-locked'} | {r['lost']} "
            f"| {r['idle_cpu_pct']} | {r['server_cpu_pct']} | {r['cpu_per_event_us']} | {r['stretch_p50_pct']} | {split} |"
        )
    lines += ["", "Medians of CPU per event (µs) over the runs, and the ratio to one worker:", ""]
    for kind in args.routes.split(","):
        medians = {}
        for workers in counts:
            values = sorted(
                r["cpu_per_event_us"] for r in rows if r["route"] == kind and r["workers"] == workers
            )
            if values:
                medians[workers] = (
                    values[len(values) // 2]
                    if len(values) % 2
                    else sum(values[len(values) // 2 - 1 : len(values) // 2 + 1]) / 2
                )
        base = medians.get(1)
        text = ", ".join(
            f"{w} worker{'s' if w > 1 else ''} {m:.0f}" + (f" ({m / base:.2f}×)" if base and w != 1 else "")
            for w, m in medians.items()
        )
        lines.append(f"- {kind}: {text}")
    (RESULTS / "workers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
