"""The bench's Markdown table: direct vs codexgw (Responses pass-through, chat translation) and targets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TARGETS = {
    "added_latency_ms": 1.5,
    "throughput_ratio": 0.4,
    "us_per_event_responses": 30.0,
    "us_per_event_chat": 40.0,
    "hold_open_s": 3.0,
    "hold_rss_kib": 64.0,
    "paced_stretch_pct": 5.0,
    "help_ms": 150.0,
    "serve_ms": 1000.0,
    "key_added_us": 50.0,
}


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ok(cond: bool | None) -> str:
    return "–" if cond is None else ("yes" if cond else "**no**")


def _all(*conds: bool | None) -> bool | None:
    known = [c for c in conds if c is not None]
    return None if not known else all(known)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Bench of {m['date']}: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, server "
        f"`{ {'module': 'python -m codexgw', 'pyz': 'codexgw.pyz'}.get(r.get('server'), r.get('server')) }`"
        f"{', --quick' if r.get('quick') else ''}; loadavg before {r['load_before']}, after {r.get('load_after')}.",
        "",
        "| measure | direct | codexgw /v1/responses | codexgw /v1/chat | target | holds |",
        "|---|---|---|---|---|---|",
    ]
    row = lines.append
    lat = r.get("latency")
    if lat:
        d = lat["direct"]
        for what in ("ttfb", "total"):
            cells = [
                f"{_f(lat[k][f'{what}_p50_ms'])} / {_f(lat[k][f'{what}_p99_ms'])}"
                for k in ("direct", "responses", "chat")
            ]
            row(f"| {what.upper() if what == 'ttfb' else 'total'} p50 / p99, 50 deltas, one at a time (ms) | "
                + " | ".join(cells) + " | | |")  # fmt: skip
        added = {
            k: (lat[k]["ttfb_p50_ms"] - d["ttfb_p50_ms"], lat[k]["total_p50_ms"] - d["total_p50_ms"])
            for k in ("responses", "chat")
            if lat[k]["ttfb_p50_ms"] is not None and d["ttfb_p50_ms"] is not None
        }
        holds = _all(*(max(v) <= TARGETS["added_latency_ms"] for v in added.values()))
        cells = [
            f"{_f(added[k][0])} / {_f(added[k][1])}" if k in added else "–" for k in ("responses", "chat")
        ]
        row(
            f"| added latency p50, TTFB / total (ms) | – | {cells[0]} | {cells[1]} | <= 1.5 ms | {_ok(holds)} |"
        )
    tp = r.get("throughput")
    if tp:
        for c in (16, 64):
            if f"direct@{c}" not in tp:
                continue
            direct = tp[f"direct@{c}"]["rps"]
            cells, conds = [], []
            for k in ("responses", "chat"):
                rps = tp[f"{k}@{c}"]["rps"]
                ratio = rps / direct if direct else None
                conds.append(None if ratio is None else ratio >= TARGETS["throughput_ratio"])
                errors = tp[f"{k}@{c}"]["errors"]
                cells.append(f"{_f(rps, 0)} ({_f(ratio)}x)" + (f", {errors} errors" if errors else ""))
            row(f"| streams/s at concurrency {c}, 50 deltas | {_f(direct, 0)} | {cells[0]} | {cells[1]} | "
                f">= 0.4x direct | {_ok(_all(*conds))} |")  # fmt: skip
        for c in (16, 64):
            if f"responses@{c}" not in tp:
                continue
            a = tp[f"responses@{c}"].get("server_us_per_event")
            b = tp[f"chat@{c}"].get("server_us_per_event")
            holds = None
            if c == 64 and a is not None and b is not None:
                holds = a <= TARGETS["us_per_event_responses"] and b <= TARGETS["us_per_event_chat"]
            row(f"| **burst** (50 deltas in one write, back to back): server CPU per relayed event, concurrency {c} (µs) | – | {_f(a, 1)} | {_f(b, 1)} | "
                f"{'<= 30 / <= 40 µs' if c == 64 else ''} | {_ok(holds)} |")  # fmt: skip
        for c in (16, 64):
            if f"direct@{c}" not in tp:
                continue
            cells = [
                f"{_f(tp[f'{k}@{c}'].get('server_cpu_pct'), 0)} / {_f(tp[f'{k}@{c}'].get('upstream_cpu_pct'), 0)}"
                f" / {_f(tp[f'{k}@{c}'].get('client_window_cpu_pct'), 0)}"
                for k in ("direct", "responses", "chat")
            ]
            row(
                f"| CPU % server / upstream / client, concurrency {c} | {cells[0]} | {cells[1]} | {cells[2]} | | |"
            )
    hold = r.get("hold")
    if hold:
        d, g = hold["direct"], hold["responses"]
        n = g["streams"]
        row(f"| {n} idle streams (1 event/s): all open after (s) | {_f(d['all_open_s'])} | {_f(g['all_open_s'])} | – | "
            f"<= 3 s | {_ok(g['all_open_s'] is not None and g['all_open_s'] <= TARGETS['hold_open_s'])} |")  # fmt: skip
        row(f"| {n} idle streams: lost | {d['lost']} | {g['lost']}"
            f"{' (' + '; '.join(g['error_sample']) + ')' if g['error_sample'] else ''} | – | 0 | {_ok(g['lost'] == 0)} |")  # fmt: skip
        kib = g.get("rss_per_stream_kib")
        row(f"| {n} idle streams: RSS per open stream (KiB) | {_f(d.get('rss_per_stream_kib'), 1)} | {_f(kib, 1)} "
            f"({_f(g.get('rss_base_mib'), 0)} -> {_f(g.get('rss_open_mib'), 0)} MiB) | – | <= 64 KiB | "
            f"{_ok(None if kib is None else kib <= TARGETS['hold_rss_kib'])} |")  # fmt: skip
    paced = r.get("paced")
    if paced:
        from .paced import markdown_rows

        markdown_rows(paced, row, _ok)
    keys = r.get("keys")
    if keys:
        m, srv = keys["micro_us"], keys.get("server_us_per_request") or {}
        holds = _all(
            m["scoped"] <= TARGETS["key_added_us"],
            None if srv.get("added") is None else srv["added"] <= TARGETS["key_added_us"],
        )
        row(f"| teams work per request, `--api-key` / scoped key with limits (µs CPU, in process) | – | "
            f"{_f(m['api_key'], 1)} / {_f(m['scoped'], 1)} | – | scoped <= 50 µs | {_ok(m['scoped'] <= TARGETS['key_added_us'])} |")  # fmt: skip
        row(f"| server CPU per one-delta stream, `--api-key` / scoped key, concurrency 16 (µs) | – | "
            f"{_f(srv.get('api_key'), 1)} / {_f(srv.get('scoped'), 1)} (added {_f(srv.get('added'), 1)}) | – | "
            f"added <= 50 µs | {_ok(holds)} |")  # fmt: skip
    st = r.get("startup")
    if st and "error" not in st:
        row(f"| `codexgw.pyz --help` warm / first run (ms) | – | {_f(st['help_warm_ms'], 0)} / {_f(st['help_first_ms'], 0)} "
            f"| – | <= 150 ms warm | {_ok(st['help_warm_ms'] <= TARGETS['help_ms'])} |")  # fmt: skip
        row(f"| `codexgw.pyz serve` accepting, warm / first run (ms) | – | {_f(st['serve_warm_ms'], 0)} / "
            f"{_f(st['serve_first_ms'], 0)} | – | <= 1 s warm | {_ok(st['serve_warm_ms'] <= TARGETS['serve_ms'])} |")  # fmt: skip
    elif st:
        row(f"| start-up | – | {st['error']} | – | | – |")
    _dashboard_rows(r.get("dashboard"), row)
    notes = []
    ceiling = r.get("ceiling")
    if ceiling:
        names = {"asgi": "a bare ASGI app", "quart": "a one-route QuartTrio app"}
        parts = []
        for app, name in names.items():
            if f"{app}@16" in ceiling:
                lo, hi = ceiling[f"{app}@16"], ceiling[f"{app}@64"]
                parts.append(f"{name} {_f(lo['rps'], 0)} / {_f(hi['rps'], 0)} streams/s at concurrency 16 / 64 "
                             f"({_f(hi.get('server_us_per_request'), 0)} µs server CPU per request)")  # fmt: skip
        direct = (tp or {}).get("direct@64", {}).get("rps")
        target = f"; 0.4x direct is {0.4 * direct:.0f} streams/s" if direct else ""
        notes.append("Stack ceiling, hypercorn's trio worker answering with no upstream and nothing parsed "
                     f"(`bench/ceiling.py`): {'; '.join(parts)}{target}.")  # fmt: skip
    if st and st.get("pyz_older_than"):
        notes.append(f"dist/codexgw.pyz ({st['pyz_mtime']}) is older than {', '.join(st['pyz_older_than'])}: "
                     "start-up measured the built zipapp.")  # fmt: skip
    problems = r.get("server_log_problems") or []
    if problems:
        more = sum(int(p.split()[1]) for p in problems if p.startswith("... ")) + len(
            [p for p in problems if not p.startswith("... ")]
        )
        notes.append(f"server log: {more} warnings/errors, first: `{problems[0][:200]}`")
    for kind, prof in (r.get("profile") or {}).items():
        if "self" in prof:
            top = ", ".join(f"{name} {share}%" for name, share in prof["self"][:6])
            pkgs = ", ".join(f"{name} {share}%" for name, share in prof["self_by_package"][:6])
            notes.append(f"py-spy, {kind}, {r.get('profile_load', 'burst')} at concurrency {r.get('profile_concurrency', 64)} ({prof['samples']} busy samples): self time by package "
                         f"{pkgs}; top frames {top}")  # fmt: skip
        else:
            notes.append(f"py-spy {kind}: {str(prof.get('error'))[:200]}")
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def _dashboard_rows(d: dict | None, row: Callable[[str], None]) -> None:
    """Issue 13's rows: the pool page with 100 accounts, and idle CPU with no dashboard open."""
    if not d:
        return
    if "error" in d:
        row(f"| dashboard | – | {d['error']} | – | | – |")
        return
    row(f"| pool page, {d['accounts']} accounts: navigation to rendered p50 / max (ms) | – | "
        f"{_f(d['load_p50_ms'], 0)} / {_f(d['load_max_ms'], 0)} | – | < 300 ms | {_ok(d['load_p50_ms'] < 300)} |")  # fmt: skip
    on, off = d["idle_cpu_pct"], d["idle_cpu_pct_no_dashboard"]
    row(f"| idle server CPU, no page open, over {d['idle_window_s']:g} s: dashboard on / `--no-dashboard` (%) | – | "
        f"{_f(on)} / {_f(off)} | – | on <= off + 0.2 | {_ok(on <= off + 0.2)} |")  # fmt: skip
