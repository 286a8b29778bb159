"""Per-key rate-limit counters shared by the workers of ``serve --workers`` (a memory-mapped table).

With N workers each process's own :class:`~codexgw.policy.limits.Limiter` would let a key through
N times its ``rpm``, ``tpm`` or ``max_streams``. :class:`SharedLimiter` keeps the counters in one
file, ``<store>/workers/limits.bin``, that every worker maps; each admit or release takes an
exclusive ``fcntl.lockf`` on the file, loads the key's slot into a
:class:`~codexgw.policy.limits.KeyCounters`, runs the same decision as one process
(``policy.limits.admit_on``/``release_on``) and writes the slot back. That costs a few tens of µs
per request of a key with limits (keys without limits never get here); SQLite at one write
transaction per request would cost far more and contend with the store's own writers.

Layout: a header (magic, version, slots) and :data:`SLOTS` fixed slots found by open addressing on
the key name's BLAKE2b digest. A slot holds the digest, two windows of at most 60 one-second
buckets (count, total, then ``second, amount`` pairs oldest first: requests started, tokens of
requests finished, exactly as ``policy.limits.Window`` holds them) and the requests in flight
*per worker*, so a worker that crashed and
starts again zeroes its own column (:meth:`SharedLimiter.open`) and its lost streams stop counting.

The supervisor creates the file afresh at every start (:func:`create_table`). A full table (more
than :data:`SLOTS` keys with limits) counts the extra keys per process, with a warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import mmap
import os
import struct
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codexgw.policy.keys import ApiKey
from codexgw.policy.limits import WINDOW_S, Admission, KeyCounters, Limiter, Window, admit_on, release_on

__all__ = ["SLOTS", "SharedLimiter", "create_table", "table_path"]

log = logging.getLogger("codexgw.store.shared_limits")

SLOTS = 1024
MAX_WORKERS = 64
_MAGIC = b"CGWLIM01"
_HEADER = 64
_DIGEST = 16
_RING = struct.Struct(f"<{2 + 2 * WINDOW_S}q")
_FLIGHT = struct.Struct(f"<{MAX_WORKERS}i")
_SLOT = _DIGEST + 2 * _RING.size + _FLIGHT.size
_SIZE = _HEADER + SLOTS * _SLOT


def table_path(store_dir: Path) -> Path:
    """``<store>/workers/limits.bin``."""
    return Path(store_dir) / "workers" / "limits.bin"


def create_table(store_dir: Path) -> Path:
    """Make an empty table (0600, in a 0700 ``workers`` directory), replacing any old one."""
    path = table_path(store_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, _SIZE)
        os.pwrite(fd, _MAGIC + struct.pack("<ii", 1, SLOTS), 0)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


_COUNTS = [struct.Struct(f"<{2 + 2 * n}q") for n in range(WINDOW_S + 1)]
"""A window as stored: bucket count, total, then ``second, amount`` pairs, oldest first."""


def _load_window(buf: mmap.mmap, at: int) -> Window:
    n = min(WINDOW_S, max(0, struct.unpack_from("<q", buf, at)[0]))
    values = _COUNTS[n].unpack_from(buf, at)
    pairs = iter(values[2:])
    return Window(buckets=deque(map(list, zip(pairs, pairs, strict=True))), total=values[1])


def _save_window(buf: mmap.mmap, at: int, window: Window) -> None:
    buckets = window.buckets
    while len(buckets) > WINDOW_S:  # clocks a hair apart across processes: never more than the ring
        window.total -= buckets.popleft()[1]
    _COUNTS[len(buckets)].pack_into(
        buf, at, len(buckets), window.total, *itertools.chain.from_iterable(buckets)
    )


class SharedLimiter(Limiter):
    """A :class:`~codexgw.policy.limits.Limiter` whose counters live in the shared table.

    Args:
        path: the table (:func:`create_table` made it).
        worker: this process's worker index (0 … 63): its column of requests in flight.
    """

    def __init__(self, path: Path, worker: int) -> None:
        super().__init__()
        if not 0 <= worker < MAX_WORKERS:
            raise ValueError(f"worker index must be 0 to {MAX_WORKERS - 1}, not {worker}")
        self.worker = worker
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, _SIZE)
        if self._map[: len(_MAGIC)] != _MAGIC:
            raise ValueError(f"{path} is not a codexgw limits table")
        self._full_warned = False
        self._offsets: dict[str, int] = {}
        """Key name → its slot (slots are claimed, never moved or freed)."""

    @classmethod
    def open(cls, store_dir: Path, worker: int) -> SharedLimiter:
        """Map the table and zero this worker's in-flight column (a restarted worker's streams died
        with its predecessor)."""
        limiter = cls(table_path(store_dir), worker)
        with limiter._locked():
            offset = _HEADER + _DIGEST + 2 * _RING.size + 4 * worker
            for slot in range(SLOTS):
                limiter._map[slot * _SLOT + offset : slot * _SLOT + offset + 4] = b"\0\0\0\0"
        return limiter

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _slot(self, name: str) -> int | None:
        """The slot offset of ``name`` (claimed when new), or ``None`` when the table is full."""
        known = self._offsets.get(name)
        if known is not None:
            return known
        digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=_DIGEST).digest()
        start = int.from_bytes(digest[:4], "little") % SLOTS
        for probe in range(SLOTS):
            offset = _HEADER + ((start + probe) % SLOTS) * _SLOT
            held = self._map[offset : offset + _DIGEST]
            if held == bytes(_DIGEST):
                self._map[offset : offset + _DIGEST] = digest
                held = digest
            if held == digest:
                self._offsets[name] = offset
                return offset
        return None

    def _load(self, offset: int, now: float) -> tuple[KeyCounters, int, int]:
        """The slot as counters (in flight: every worker's), and this worker's column before."""
        at = offset + _DIGEST
        requests = _load_window(self._map, at)
        tokens = _load_window(self._map, at + _RING.size)
        flights = _FLIGHT.unpack_from(self._map, at + 2 * _RING.size)
        total = sum(flights)
        return KeyCounters(requests=requests, tokens=tokens, in_flight=total), flights[self.worker], total

    def _save(self, offset: int, c: KeyCounters, own: int, total: int) -> None:
        at = offset + _DIGEST
        _save_window(self._map, at, c.requests)
        _save_window(self._map, at + _RING.size, c.tokens)
        mine = max(0, own + c.in_flight - total)
        struct.pack_into("<i", self._map, at + 2 * _RING.size + 4 * self.worker, mine)

    def _local(self, name: str) -> KeyCounters:
        if not self._full_warned:
            self._full_warned = True
            log.warning("the shared limits table is full (%d keys); more keys are counted per worker", SLOTS)
        return self.counters(name)

    def admit(self, key: ApiKey, *, now: float, tokens_today: int = 0) -> Admission:
        """As :meth:`Limiter.admit`, over the counters every worker shares."""
        with self._locked():
            offset = self._slot(key.name)
            if offset is None:
                return admit_on(self._local(key.name), key, now=now, tokens_today=tokens_today)
            c, own, total = self._load(offset, now)
            admission = admit_on(c, key, now=now, tokens_today=tokens_today)
            self._save(offset, c, own, total)
            return admission

    def release(self, name: str, *, tokens: int, now: float) -> None:
        """As :meth:`Limiter.release`, over the shared counters."""
        with self._locked():
            offset = self._slot(name)
            if offset is None:
                super().release(name, tokens=tokens, now=now)
                return
            c, own, total = self._load(offset, now)
            release_on(c, tokens=tokens, now=now)
            self._save(offset, c, own, total)

    def current_headers(self, key: ApiKey, now: float) -> dict[str, str]:
        """As :meth:`Limiter.current_headers`, over the shared counters."""
        with self._locked():
            offset = self._slot(key.name)
            if offset is None:
                return super().current_headers(key, now)
            c, _, _ = self._load(offset, now)
            return self.headers(key, c, now)

    def retain(self, names: object) -> None:
        """Nothing to forget per process: a removed key's slot idles (it is the table's, not ours)."""
