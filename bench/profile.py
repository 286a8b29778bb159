"""Summaries of py-spy ``--format raw`` (collapsed stack) profiles: top frames by self and total time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def _frame(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep function and file:line.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/codexgw/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            if marker == "/codexgw/":
                where = "codexgw/" + where
            break
    return f"{name} ({where})" if where else name


def _idle(frames: list[str]) -> bool:
    """A sample of the server doing nothing that py-spy still counted: trio's idle worker threads
    (``to_thread``'s cache, waiting for work) or the run loop waiting in ``epoll_wait``."""
    return any("_thread_cache.py" in f for f in frames) or frames[-1].startswith("EpollIOManager.get_events ")


def summarize(path: Path, top: int = 15) -> dict:
    """Top ``top`` frames by self samples and by inclusive samples, as percentages of the busy
    samples (the idle ones, see :func:`_idle`, left out)."""
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    files: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames or _idle(frames):
            continue
        samples += n
        self_c[frames[-1]] += n
        for f in set(frames):
            total_c[f] += n
        leaf = frames[-1]
        where = leaf.partition(" (")[2].split(":")[0] or leaf
        files[where.split("/")[0] if "/" in where else where] += n

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100.0 * v / samples, 1)) for k, v in counter.most_common(top)]

    return {"samples": samples, "self": pct(self_c), "total": pct(total_c), "self_by_package": pct(files)}
